//! A running order-intake in its own test environment, and the requests the tests send it.

use std::net::SocketAddr;
use std::time::Duration;

use orderflow_messages::{Envelope, Event, Exchange, order};
use orderflow_runtime::auth::ApiKeys;
use orderflow_runtime::config::DEVELOPMENT_API_KEYS;
use orderflow_runtime::testing::{Probe, TestEnv, eventually};
use orderflow_runtime::{CancellationToken, Settings};
use serde_json::{Value, json};
use sqlx::PgConnection;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const SHOP: &str = "dev-shop-key";
pub const STAFF: &str = "dev-staff-key";
pub const CARRIER: &str = "dev-carrier-key";
pub const WAIT: Duration = Duration::from_secs(20);
/// Two named shop keys, configured by [`App::spawn_with_shops`].
pub const ACME: &str = "acme-shop-key";
pub const GLOBEX: &str = "globex-shop-key";

pub struct App {
    pub env: TestEnv,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl App {
    pub async fn spawn() -> App {
        App::start(TestEnv::new()).await
    }

    /// With the development keys plus `shop:acme:…` and `shop:globex:…`.
    pub async fn spawn_with_shops() -> App {
        App::spawn_with_shops_and(&[]).await
    }

    /// Like [`App::spawn_with_shops`], with `[order_intake]` settings of its own.
    pub async fn spawn_with_shops_and(own: &[(&str, i64)]) -> App {
        App::spawn_with_shops_configured(|mut settings| {
            for (key, value) in own {
                settings = settings.with(&format!("order_intake.{key}"), *value)?;
            }
            Ok(settings)
        })
        .await
    }

    /// Like [`App::spawn_with_shops`], with the settings `configure` makes.
    pub async fn spawn_with_shops_configured(
        configure: impl FnOnce(Settings) -> anyhow::Result<Settings>,
    ) -> App {
        let mut env = TestEnv::new();
        env.settings = configure(env.settings.clone()).expect("settings");
        env.settings.api_keys = ApiKeys::parse(&format!(
            "{DEVELOPMENT_API_KEYS},shop:acme:{ACME},shop:globex:{GLOBEX}"
        ))
        .expect("keys");
        App::start(env).await
    }

    async fn start(env: TestEnv) -> App {
        let bound = order_intake::build(&env.settings)
            .await
            .expect("order-intake starts");
        let addr = bound.local_addr();
        let stop = CancellationToken::new();
        let task = tokio::spawn(bound.run_until_stopped(stop.clone()));
        App {
            env,
            addr,
            client: reqwest::Client::new(),
            stop,
            task,
        }
    }

    /// Stops the service and waits for it, before the environment is cleaned up.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("service task")
            .expect("service stopped cleanly");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /v1/orders` with the shop key and an optional `Idempotency-Key`.
    pub async fn place(&self, body: &Value, key: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/v1/orders"))
            .bearer_auth(SHOP)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("POST /v1/orders")
    }

    /// Places `body` and returns the new order's id.
    pub async fn place_ok(&self, body: &Value) -> Uuid {
        let response = self.place(body, None).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("order id")
    }

    /// `method` on `path` with `key` and a JSON body: status and JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: &Value,
    ) -> (u16, Value) {
        let response = self
            .client
            .request(method, self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /v1/webhooks` as `shop` with `{"url", "secret"}`: status and JSON body.
    pub async fn subscribe_webhook(&self, shop: &str, url: &str, secret: &str) -> (u16, Value) {
        let body = json!({"url": url, "secret": secret});
        self.send(reqwest::Method::POST, "/v1/webhooks", shop, &body)
            .await
    }

    /// `GET` with `key`: status and JSON body.
    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn order_as(&self, id: &str, key: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/orders/{id}"), key).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn order(&self, id: Uuid) -> Value {
        let (status, body) = self.get(&format!("/v1/orders/{id}"), SHOP).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the order's timeline holds `message_id`, i.e. the event was handled.
    pub async fn wait_for_entry(&self, id: Uuid, message_id: Uuid) -> Value {
        eventually(
            &format!("{message_id} in the timeline of {id}"),
            WAIT,
            || async move { timeline_has(&self.order(id).await, message_id) },
        )
        .await;
        self.order(id).await
    }

    pub async fn db(&self) -> PgConnection {
        self.env.connect_db("order_intake").await
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        let mut db = self.db().await;
        sqlx::query_scalar(sql).fetch_one(&mut db).await.expect(sql)
    }

    /// Waits until the relay has published everything the service wrote to its outbox.
    pub async fn outbox_drained(&self) {
        eventually("the outbox is empty", WAIT, || async {
            self.count("SELECT count(*) FROM outbox").await == 0
        })
        .await;
    }

    pub async fn probe(&self, events: &[&str]) -> Probe {
        let bindings: Vec<(Exchange, &str)> =
            events.iter().map(|e| (Exchange::Events, *e)).collect();
        self.env.probe(&bindings).await
    }

    /// Publishes `envelope` on orderflow.events as another service would.
    pub async fn publish<E: Event>(&self, envelope: &Envelope<E>) {
        let (_conn, publisher) = self.env.publisher().await;
        publisher.publish(envelope, None).await.expect("published");
    }
}

pub fn timeline_has(order: &Value, message_id: Uuid) -> bool {
    order["timeline"]
        .as_array()
        .is_some_and(|t| t.iter().any(|e| e["message_id"] == message_id.to_string()))
}

pub fn timeline_types(order: &Value) -> Vec<String> {
    order["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|e| e["type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The order of the brief, with its own external reference.
pub fn an_order(reference: &str) -> Value {
    json!({
        "channel": "web", "external_reference": reference,
        "customer": {"email": "ann@example.com", "name": "Ann Example", "customer_id": null},
        "currency": "EUR",
        "lines": [{"sku": "MUG-BLUE", "quantity": 2, "unit_price": 1250, "customisations": []}],
        "shipping_address": {"name": "Ann Example", "line1": "Hauptstr. 1",
            "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "billing_address": null, "delivery": {"shipping_method": "standard"},
        "payment": {"method": "card", "token": "tok_visa"}, "coupon_code": null
    })
}

/// Places an order and returns its `order.placed` message, the cause of everything after.
pub async fn placed_order(app: &App, reference: &str) -> Envelope<order::Placed> {
    let mut probe = app.probe(&["order.placed"]).await;
    let id = app.place_ok(&an_order(reference)).await;
    let placed = probe.next_of::<order::Placed>(WAIT).await;
    assert_eq!(placed.order_id, id);
    placed
}

/// Places an order as `shop` and publishes its `order.verified` as verification would, so the
/// order's status changes once: the order's id.
pub async fn verified_order_of(app: &App, shop: &str, reference: &str) -> Uuid {
    let mut probe = app.probe(&["order.placed"]).await;
    let (status, placed) = app
        .send(
            reqwest::Method::POST,
            "/v1/orders",
            shop,
            &an_order(reference),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let placed = probe.next_of::<order::Placed>(WAIT).await;
    let verifying = Envelope::caused_by(
        "verification",
        &placed,
        crate::following::verified(&placed.payload),
    );
    app.publish(&verifying).await;
    placed.order_id
}
