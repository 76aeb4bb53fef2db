//! A running verification service (or several replicas of it) in a private test environment,
//! and the calls the tests make to it.

use std::time::Duration;

use orderflow_messages::order::{Cancelled, Placed};
use orderflow_messages::{Envelope, Event, Exchange};
use orderflow_runtime::amqp::Publisher;
use orderflow_runtime::testing::{Probe, TestEnv};
use orderflow_runtime::{CancellationToken, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

pub const ADMIN: &str = "dev-admin-key";
pub const STAFF: &str = "dev-staff-key";
pub const WAIT: Duration = Duration::from_secs(20);

pub struct App {
    pub env: TestEnv,
    /// Base URL of the first replica.
    pub base: String,
    http: reqwest::Client,
    publisher: Publisher,
    _broker: lapin::Connection,
    stop: CancellationToken,
    replicas: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl App {
    pub async fn spawn() -> App {
        App::spawn_replicas(1, |s| s).await
    }

    /// `count` instances of the service on the same database and queues, as replicas run;
    /// `tune` adjusts the settings they share.
    pub async fn spawn_replicas(count: usize, tune: impl FnOnce(Settings) -> Settings) -> App {
        let mut env = TestEnv::new();
        env.settings = tune(env.settings.clone());
        let stop = CancellationToken::new();
        let mut base = String::new();
        let mut replicas = Vec::new();
        for _ in 0..count {
            let bound = verification::build(&env.settings)
                .await
                .expect("the service starts");
            if base.is_empty() {
                base = format!("http://{}", bound.local_addr());
            }
            replicas.push(tokio::spawn(bound.run_until_stopped(stop.clone())));
        }
        let (broker, publisher) = env.publisher().await;
        App {
            env,
            base,
            http: reqwest::Client::new(),
            publisher,
            _broker: broker,
            stop,
            replicas,
        }
    }

    /// Stops every replica and waits for them to finish cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        for replica in self.replicas {
            replica
                .await
                .expect("replica task")
                .expect("replica stopped cleanly");
        }
    }

    pub async fn probe(&self, types: &[&str]) -> Probe {
        let bindings: Vec<(Exchange, &str)> =
            types.iter().map(|t| (Exchange::Events, *t)).collect();
        self.env.probe(&bindings).await
    }

    pub async fn publish<E: Event>(&self, envelope: &Envelope<E>) {
        self.publisher
            .publish(envelope, None)
            .await
            .expect("published");
    }

    /// Publishes `order.placed` for a new order; its id.
    pub async fn place(&self, placed: Placed) -> Uuid {
        let order_id = Uuid::now_v7();
        self.publish(&Envelope::new("order-intake", order_id, placed))
            .await;
        order_id
    }

    /// Publishes `order.cancelled`, as shipping does once it accepted a cancellation.
    pub async fn cancel(&self, order_id: Uuid) {
        let cancel = Cancelled {
            reason: "changed my mind".into(),
        };
        self.publish(&Envelope::new("shipping", order_id, cancel))
            .await;
    }

    /// Creates or replaces a product from a full JSON body.
    pub async fn product_with(&self, sku: &str, body: Value) {
        let (status, answer) = self
            .call(
                Method::PUT,
                &format!("/v1/products/{sku}"),
                Some(ADMIN),
                Some(body),
            )
            .await;
        assert!(status.is_success(), "{status}: {answer}");
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status();
        let text = response.text().await.expect("response body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn product(&self, sku: &str, unit_price: i64, currency: &str) {
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/v1/products/{sku}"),
                Some(ADMIN),
                Some(json!({
                    "name": format!("Product {sku}"), "unit_price": unit_price,
                    "currency": currency, "tax_class": "standard", "weight_grams": 250,
                    "dimensions": {"length_mm": 100, "width_mm": 80, "height_mm": 60}
                })),
            )
            .await;
        assert!(status.is_success(), "{status}: {body}");
    }

    pub async fn warehouse(&self, code: &str) {
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/v1/warehouses/{code}"),
                Some(ADMIN),
                Some(json!({"name": format!("Warehouse {code}")})),
            )
            .await;
        assert!(status.is_success(), "{status}: {body}");
    }

    pub async fn receive(&self, warehouse: &str, sku: &str, quantity: i64) {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/v1/warehouses/{warehouse}/receipts"),
                Some(ADMIN),
                Some(json!({"lines": [{"sku": sku, "quantity": quantity}]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// (warehouse, on hand, reserved, available) of `sku`, by warehouse.
    pub async fn stock(&self, sku: &str) -> Vec<(String, i64, i64, i64)> {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/v1/stock?sku={sku}"),
                Some(STAFF),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|row| {
                (
                    row["warehouse"].as_str().expect("warehouse").to_owned(),
                    row["on_hand"].as_i64().expect("on_hand"),
                    row["reserved"].as_i64().expect("reserved"),
                    row["available"].as_i64().expect("available"),
                )
            })
            .collect()
    }
}

/// An order in `currency` with `lines` of (SKU, quantity, unit price).
pub fn order(currency: &str, lines: &[(&str, u32, i64)]) -> Placed {
    serde_json::from_value(json!({
        "channel": "web",
        "customer": {"email": "ann@example.com", "name": "Ann Example"},
        "currency": currency,
        "lines": lines.iter().enumerate().map(|(i, (sku, quantity, price))| json!({
            "line_no": i + 1, "sku": sku, "quantity": quantity, "unit_price": price
        })).collect::<Vec<_>>(),
        "shipping_address": {"name": "Ann Example", "line1": "Main St 1", "postal_code": "10115",
            "city": "Berlin", "country": "DE"},
        "delivery": {"shipping_method": "standard"},
        "payment": {"method": "card", "token": "tok_visa"},
        "coupon_code": "WELCOME"
    }))
    .expect("a valid order.placed")
}
