//! A billing service on the real broker and database, and the orders the tests send it.

use std::net::SocketAddr;
use std::time::Duration;

use billing::connector::Connectors;
use chrono::Utc;
use orderflow_messages::order::{Customer, Delivered, Delivery, Verified, VerifiedLine};
use orderflow_messages::types::{
    Address, CountryCode, Currency, EmailAddress, Money, Payment, PaymentMethod, Sku,
};
use orderflow_messages::{Envelope, Event, Exchange};
use orderflow_runtime::amqp::Publisher;
use orderflow_runtime::testing::{Probe, TestEnv};
use orderflow_runtime::{CancellationToken, Settings};
use serde_json::Value;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(20);
pub const STAFF_KEY: &str = "Bearer dev-staff-key";
pub const ADMIN_KEY: &str = "Bearer dev-admin-key";

/// One or more billing replicas, a publisher and a probe on everything billing publishes.
pub struct App {
    pub env: TestEnv,
    pub addr: SocketAddr,
    pub publisher: Publisher,
    _broker: lapin::Connection,
    probe: Probe,
    /// Messages taken from the probe, in arrival order.
    seen: Vec<Envelope<Value>>,
    token: CancellationToken,
    replicas: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> App {
    spawn_with(1, |s| s, Connectors::builtin).await
}

/// `replicas` instances of billing on `settings` (tuned by `tune`), each with `connectors()`.
pub async fn spawn_with(
    replicas: usize,
    tune: impl Fn(Settings) -> Settings,
    connectors: impl Fn() -> Connectors,
) -> App {
    let mut env = TestEnv::new();
    env.settings = tune(env.settings.clone());
    let probe = env
        .probe(&[
            (Exchange::Events, "payment.#"),
            (Exchange::Events, "order.#"),
        ])
        .await;
    let token = CancellationToken::new();
    let mut addr = None;
    let mut tasks = Vec::new();
    for _ in 0..replicas {
        let bound = billing::build_with(&env.settings, connectors())
            .await
            .expect("billing starts");
        addr.get_or_insert(bound.local_addr());
        tasks.push(tokio::spawn(bound.run_until_stopped(token.clone())));
    }
    let (broker, publisher) = env.publisher().await;
    App {
        addr: addr.expect("at least one replica"),
        env,
        publisher,
        _broker: broker,
        probe,
        seen: Vec::new(),
        token,
        replicas: tasks,
    }
}

impl App {
    pub async fn publish<E: Event>(&self, envelope: &Envelope<E>) {
        self.publisher
            .publish(envelope, None)
            .await
            .expect("published");
    }

    /// The first `E` billing published about `order_id`, waiting for it if need be.
    pub async fn wait_for<E: Event>(&mut self, order_id: Uuid) -> E {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = self.published::<E>(order_id).into_iter().next() {
                return found;
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "billing published no {} for order {order_id}",
                E::TYPE
            );
            let (_, envelope) = self.probe.next(left).await;
            self.seen.push(envelope);
        }
    }

    /// Every `E` billing has published about `order_id` so far (as far as the probe has read).
    pub fn published<E: Event>(&self, order_id: Uuid) -> Vec<E> {
        self.seen
            .iter()
            .filter(|e| e.is::<E>() && e.order_id == order_id && e.producer == billing::NAME)
            .map(|e| e.decode::<E>().expect("payload of its type"))
            .collect()
    }

    /// Runs a fresh card order through verification and delivery to its `order.paid`. Billing
    /// publishes in order from one outbox, so once this is seen, everything billing published
    /// about earlier orders has been seen too.
    pub async fn drain_with_a_marker_order(&mut self) {
        let marker = Uuid::now_v7();
        self.publish(&verified(marker, &eur_card_order("tok_visa")))
            .await;
        self.wait_for::<orderflow_messages::payment::Authorized>(marker)
            .await;
        self.publish(&delivered(marker)).await;
        self.wait_for::<orderflow_messages::order::Paid>(marker)
            .await;
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("http://{}{path}", self.addr))
            .header("Authorization", key)
            .send()
            .await
            .expect("HTTP request")
    }

    /// `method` `path` with a JSON `body` and the staff key (or `key`).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: &Value,
    ) -> reqwest::Response {
        reqwest::Client::new()
            .request(method, format!("http://{}{path}", self.addr))
            .header("Authorization", key)
            .json(body)
            .send()
            .await
            .expect("HTTP request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, STAFF_KEY, body)
            .await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path, STAFF_KEY).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }

    pub async fn db(&self) -> sqlx::PgConnection {
        self.env.connect_db(billing::SCHEMA).await
    }

    pub async fn stop(self) {
        self.token.cancel();
        for task in self.replicas {
            task.await
                .expect("joined")
                .expect("billing stopped cleanly");
        }
    }
}

fn address(country: &str) -> Address {
    Address {
        name: "Ann Example".into(),
        line1: "Hauptstraße 1".into(),
        line2: None,
        postal_code: "10115".into(),
        city: "Berlin".into(),
        country: CountryCode::parse(country).expect("country"),
        phone: None,
    }
}

/// A verified order of `lines` (sku, name, quantity, unit price, tax class), shipped to
/// `country` with the standard method.
pub fn order(
    currency: &str,
    country: &str,
    payment: PaymentMethod,
    token: Option<&str>,
    lines: &[(&str, &str, u32, i64, &str)],
) -> Verified {
    let currency = Currency::parse(currency).expect("currency");
    let lines: Vec<VerifiedLine> = lines
        .iter()
        .enumerate()
        .map(
            |(i, (sku, name, quantity, unit_price, class))| VerifiedLine {
                line_no: i as u32 + 1,
                sku: Sku::parse(sku).expect("sku"),
                name: (*name).into(),
                quantity: *quantity,
                unit_price: *unit_price,
                tax_class: (*class).into(),
                weight_grams: 500,
                dimensions: None,
                customisations: vec![],
            },
        )
        .collect();
    let subtotal = lines
        .iter()
        .map(|l| l.unit_price * i64::from(l.quantity))
        .sum();
    Verified {
        customer: Customer {
            customer_id: None,
            email: EmailAddress::parse("ann@example.com").expect("email"),
            name: "Ann Example".into(),
        },
        subtotal: Money::new(subtotal, currency.clone()),
        currency,
        lines,
        reservations: vec![],
        shipping_address: address(country),
        billing_address: None,
        delivery: Delivery {
            shipping_method: "standard".into(),
            ..Delivery::default()
        },
        payment: Payment {
            method: payment,
            token: token.map(str::to_owned),
        },
        coupon_code: None,
    }
}

/// Two books and a mug to Germany, paid by card with `token`.
pub fn eur_card_order(token: &str) -> Verified {
    order(
        "EUR",
        "DE",
        PaymentMethod::Card,
        Some(token),
        &[
            ("BOOK-1", "Paperback", 1, 950, "reduced"),
            ("BOOK-2", "Hardcover", 1, 1450, "reduced"),
            ("MUG-1", "Mug", 2, 1230, "standard"),
        ],
    )
}

pub fn verified(order_id: Uuid, order: &Verified) -> Envelope<Verified> {
    Envelope::new("verification", order_id, order.clone())
}

pub fn delivered(order_id: Uuid) -> Envelope<Delivered> {
    Envelope::new(
        "shipping",
        order_id,
        Delivered {
            delivered_at: Utc::now(),
        },
    )
}

/// The amount of a `Money` JSON object, checking its currency.
pub fn amount(money: &Value, currency: &str) -> i64 {
    assert_eq!(money["currency"], currency, "{money}");
    money["amount"].as_i64().expect("amount in minor units")
}

/// A card order verified, authorised, delivered and paid: its id and its invoice number.
pub async fn paid_card_order(app: &mut App) -> (Uuid, String) {
    let order_id = Uuid::now_v7();
    app.publish(&verified(order_id, &eur_card_order("tok_visa")))
        .await;
    app.wait_for::<orderflow_messages::payment::Authorized>(order_id)
        .await;
    app.publish(&delivered(order_id)).await;
    let paid = app
        .wait_for::<orderflow_messages::order::Paid>(order_id)
        .await;
    (order_id, paid.invoice_number)
}
