//! A fulfilment service on the real broker and database, and what tests feed it.

use std::net::SocketAddr;
use std::time::Duration;

use orderflow_messages::order::{self, Customer, Delivery, Reservation, VerifiedLine};
use orderflow_messages::types::*;
use orderflow_messages::{Envelope, Event, Exchange};
use orderflow_runtime::amqp::Publisher;
use orderflow_runtime::testing::{Probe, TestEnv};
use orderflow_runtime::{CancellationToken, Settings};
use serde_json::Value;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(20);
pub const STAFF: &str = "dev-staff-key";
pub const ADMIN: &str = "dev-admin-key";

pub struct Fulfilment {
    pub addr: SocketAddr,
    pub probe: Probe,
    pub publisher: Publisher,
    /// The publisher's broker connection, kept open for the test's length.
    _connection: Box<dyn std::any::Any + Send>,
    stop: CancellationToken,
    running: JoinHandle<anyhow::Result<()>>,
}

/// Settings of the test environment with `overrides` in section `[fulfilment]`.
pub fn settings(env: &TestEnv, overrides: &[(&str, &str)]) -> Settings {
    let mut settings = env.settings.clone();
    for (key, value) in overrides {
        settings = settings
            .with(&format!("fulfilment.{key}"), *value)
            .expect("setting");
    }
    settings
}

impl Fulfilment {
    /// Starts the service and a probe on everything it publishes.
    pub async fn start(env: &TestEnv, settings: &Settings) -> Fulfilment {
        let bound = fulfilment::build(settings)
            .await
            .expect("fulfilment starts");
        let addr = bound.local_addr();
        let stop = CancellationToken::new();
        let running = tokio::spawn(bound.run_until_stopped(stop.clone()));
        let probe = env
            .probe(&[
                (Exchange::Events, "order.packed"),
                (Exchange::Events, "order.fulfilment_failed"),
                (Exchange::Events, "order.unpacked"),
            ])
            .await;
        let (connection, publisher) = env.publisher().await;
        Fulfilment {
            addr,
            probe,
            publisher,
            _connection: Box::new(connection),
            stop,
            running,
        }
    }

    pub async fn publish<E: Event>(&self, envelope: &Envelope<E>) {
        self.publisher
            .publish(envelope, None)
            .await
            .expect("published");
    }

    /// Publishes `order.verified` for a new order and returns its envelope.
    pub async fn verify(&self, verified: order::Verified) -> Envelope<order::Verified> {
        let envelope = Envelope::new("verification", Uuid::now_v7(), verified);
        self.publish(&envelope).await;
        envelope
    }

    pub async fn cancel(&self, order_id: Uuid) {
        let cancelled = order::Cancelled {
            reason: "customer changed their mind".into(),
        };
        self.publish(&Envelope::new("shipping", order_id, cancelled))
            .await;
    }

    /// Calls the API; returns the status and the JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("http://{}{path}", self.addr))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, STAFF, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, STAFF, Some(body))
            .await
    }

    /// Waits until the warehouse lists an unfinished pick list of `order_id`, and returns it.
    pub async fn open_pick_list(&self, warehouse: &str, order_id: Uuid) -> Value {
        let path = format!("/v1/warehouses/{warehouse}/pick-lists");
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let lists = self.get(&path).await;
            let found = lists["pick_lists"].as_array().and_then(|lists| {
                lists
                    .iter()
                    .find(|l| l["order_id"] == order_id.to_string())
                    .cloned()
            });
            if let Some(list) = found {
                return list;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "no open pick list for {order_id} in {warehouse}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The order's fulfilment status once it is `wanted`.
    pub async fn wait_for_status(&self, order_id: Uuid, wanted: &str) -> Value {
        let path = format!("/v1/fulfilments/{order_id}");
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, body) = self.call(reqwest::Method::GET, &path, STAFF, None).await;
            if status == 200 && body["status"] == wanted {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "order {order_id} never became {wanted}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts that nothing more is published for a moment.
    pub async fn assert_quiet(&mut self, what: &str) {
        let extra = tokio::time::timeout(
            Duration::from_millis(700),
            self.probe.next(Duration::from_secs(2)),
        )
        .await;
        assert!(extra.is_err(), "{what}: {:?}", extra.map(|(key, _)| key));
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.running.await.expect("joined").expect("clean stop");
    }
}

/// A line: (line_no, sku, quantity, weight in grams, customisations).
pub type Line<'a> = (u32, &'a str, u32, u32, &'a [&'a str]);

/// `order.verified` with `lines` reserved as `reservations` (warehouse, line_no, quantity).
pub fn verified(lines: &[Line<'_>], reservations: &[(&str, u32, u32)]) -> order::Verified {
    let eur = Currency::parse("EUR").expect("EUR");
    let sku_of = |line_no: u32| {
        let (_, sku, ..) = lines
            .iter()
            .find(|l| l.0 == line_no)
            .expect("reserved line exists");
        Sku::parse(sku).expect("sku")
    };
    order::Verified {
        customer: Customer {
            customer_id: None,
            email: EmailAddress::parse("ann@example.com").expect("email"),
            name: "Ann".into(),
        },
        currency: eur.clone(),
        lines: lines
            .iter()
            .map(
                |&(line_no, sku, quantity, weight_grams, customisations)| VerifiedLine {
                    line_no,
                    sku: Sku::parse(sku).expect("sku"),
                    name: sku.to_lowercase(),
                    quantity,
                    unit_price: 1000,
                    tax_class: "standard".into(),
                    weight_grams,
                    dimensions: None,
                    customisations: customisations.iter().map(|c| c.to_string()).collect(),
                },
            )
            .collect(),
        subtotal: Money::new(5000, eur),
        reservations: reservations
            .iter()
            .map(|&(warehouse, line_no, quantity)| Reservation {
                warehouse: warehouse.into(),
                line_no,
                sku: sku_of(line_no),
                quantity,
            })
            .collect(),
        shipping_address: Address {
            name: "Ann".into(),
            line1: "Hauptstr. 1".into(),
            line2: None,
            postal_code: "10115".into(),
            city: "Berlin".into(),
            country: CountryCode::parse("DE").expect("DE"),
            phone: None,
        },
        billing_address: None,
        delivery: Delivery {
            shipping_method: "standard".into(),
            ..Default::default()
        },
        payment: Payment {
            method: PaymentMethod::Card,
            token: Some("tok_visa".into()),
        },
        coupon_code: None,
    }
}

/// (warehouse, units) per parcel group of an `order.packed` or `order.unpacked`.
pub fn units_per_group(groups: &[order::ParcelGroup]) -> Vec<(String, u32)> {
    groups
        .iter()
        .map(|g| {
            let units = g
                .parcels
                .iter()
                .flat_map(|p| &p.lines)
                .map(|l| l.quantity)
                .sum();
            (g.warehouse.clone(), units)
        })
        .collect()
}
