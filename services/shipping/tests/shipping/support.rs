//! What the shipping tests share: a running service (and optionally the simulated carrier) in
//! its own test environment, order fixtures, a way to know a probe has seen everything, and
//! readers for the database and the dead-letter queue.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;
use orderflow_messages::order::{Delivery, Packed, Parcel, ParcelGroup, ParcelLine};
use orderflow_messages::types::{Address, CountryCode, Currency, Dimensions, Money, Sku};
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::CancellationToken;
use orderflow_runtime::amqp::Publisher;
use orderflow_runtime::testing::{Probe, TestEnv, eventually};
use serde_json::Value;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(30);
pub const SHOP_KEY: &str = "Bearer dev-shop-key";
pub const STAFF_KEY: &str = "Bearer dev-staff-key";
pub const ADMIN_KEY: &str = "Bearer dev-admin-key";
/// A routing key no service uses; tests publish it last to know a probe has seen everything
/// published before it.
pub const SENTINEL: &str = "test.sentinel";

/// Shipping (and maybe the carrier simulator) running in a private environment.
pub struct Running {
    pub base: String,
    pub publisher: Publisher,
    _publisher_connection: lapin::Connection,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// Dropped last: it deletes the database and the queues.
    pub env: TestEnv,
}

impl Running {
    /// Shipping alone; the test plays the carrier.
    pub async fn shipping(env: TestEnv) -> Running {
        Running::start(env, false).await
    }

    /// Shipping and the simulated carrier `sim`.
    pub async fn with_carrier_sim(env: TestEnv) -> Running {
        Running::start(env, true).await
    }

    async fn start(env: TestEnv, carrier_sim: bool) -> Running {
        let stop = CancellationToken::new();
        let bound = shipping::build(&env.settings)
            .await
            .expect("shipping starts");
        let base = format!("http://{}", bound.local_addr());
        let mut tasks = vec![tokio::spawn(bound.run_until_stopped(stop.clone()))];
        if carrier_sim {
            tasks.push(tokio::spawn(shipping::carrier_sim::run(
                env.settings.clone(),
                stop.clone(),
            )));
        }
        let (connection, publisher) = env.publisher().await;
        Running {
            base,
            publisher,
            _publisher_connection: connection,
            stop,
            tasks,
            env,
        }
    }

    /// Stops everything and checks nothing failed on the way.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.await
                .expect("task did not panic")
                .expect("stopped cleanly");
        }
    }

    /// A connection to shipping's schema.
    pub async fn db(&self) -> sqlx::PgConnection {
        self.env.connect_db("shipping").await
    }

    /// A count from shipping's schema, `$1` bound to `id`.
    pub async fn count(&self, sql: &'static str, id: Uuid) -> i64 {
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut self.db().await)
            .await
            .expect("query shipping's schema")
    }

    /// A count from shipping's schema.
    pub async fn total(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&mut self.db().await)
            .await
            .expect("query shipping's schema")
    }

    /// Waits until shipping's outbox is empty: everything it decided is on the broker.
    pub async fn outbox_flushed(&self) {
        eventually("shipping's outbox is flushed", WAIT, || async {
            self.total("SELECT count(*) FROM outbox").await == 0
        })
        .await;
    }

    /// Publishes a sentinel and returns what the probe received before it.
    pub async fn drain(&self, probe: &mut Probe, exchange: Exchange) -> Vec<Envelope<Value>> {
        let sentinel = serde_json::json!({
            "message_id": Uuid::now_v7(), "type": SENTINEL, "schema_version": 1,
            "occurred_at": chrono::Utc::now(), "order_id": Uuid::nil(),
            "correlation_id": Uuid::nil(), "causation_id": null, "producer": "test",
            "payload": {}
        });
        let body = serde_json::to_vec(&sentinel).expect("sentinel");
        self.publisher
            .publish_raw(
                &self.env.names().exchange(exchange),
                SENTINEL,
                &body,
                BasicProperties::default(),
            )
            .await
            .expect("sentinel published (bind the probe to it)");
        let mut seen = Vec::new();
        loop {
            let (key, envelope) = probe.next(WAIT).await;
            if key == SENTINEL {
                return seen;
            }
            seen.push(envelope);
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("Authorization", key)
            .send()
            .await
            .expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `method` `path` with a JSON body (or none) and the given headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Sets `key` in the environment's settings to `value` (lists and tables included).
pub fn configure(env: &mut TestEnv, key: &str, value: Value) {
    env.settings = env.settings.with(key, to_config(value)).expect("settings");
}

fn to_config(value: Value) -> config::Value {
    let kind = match value {
        Value::Null => config::ValueKind::Nil,
        Value::Bool(b) => config::ValueKind::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => config::ValueKind::I64(i),
            None => config::ValueKind::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => config::ValueKind::String(s),
        Value::Array(items) => config::ValueKind::Array(items.into_iter().map(to_config).collect()),
        Value::Object(fields) => {
            config::ValueKind::Table(fields.into_iter().map(|(k, v)| (k, to_config(v))).collect())
        }
    };
    config::Value::new(None, kind)
}

/// The carriers `[shipping] carriers` holds by default, plus `extra`.
pub fn carriers_with(extra: Value) -> Value {
    let mut all = serde_json::json!([
        {"code": "sim", "name": "Simulated carrier",
         "service_levels": ["standard", "express", "pickup"],
         "tracking_url_template": "https://track.example/sim/{tracking_number}",
         "cash_on_delivery": true},
        {"code": "pickup", "name": "Collection in store", "service_levels": ["pickup"],
         "tracking_url_template": "https://shop.example/pickup/{tracking_number}",
         "cash_on_delivery": true}
    ]);
    if let (Some(list), Value::Array(more)) = (all.as_array_mut(), extra) {
        list.extend(more);
    }
    all
}

/// Everything on `queue` (of this environment) right now, taken off it.
pub async fn take_all(env: &TestEnv, queue: &str) -> Vec<Envelope<Value>> {
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    let name = env.names().queue(queue);
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(name.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get (does the queue exist?)")
    {
        taken.push(serde_json::from_slice(&message.delivery.data).expect("an envelope"));
    }
    let _ = connection.close(200, "done".into()).await;
    taken
}

/// An `order.packed` to Berlin with one parcel group per `(warehouse, parcel weights)`.
pub fn packed(method: &str, groups: &[(&str, &[u32])]) -> Envelope<Packed> {
    packed_to("DE", method, groups)
}

/// An `order.packed` to `country`.
pub fn packed_to(country: &str, method: &str, groups: &[(&str, &[u32])]) -> Envelope<Packed> {
    let sku = Sku::parse("MUG-001").expect("sku");
    let groups = groups
        .iter()
        .map(|(warehouse, weights)| ParcelGroup {
            warehouse: (*warehouse).to_owned(),
            parcels: weights
                .iter()
                .map(|grams| Parcel {
                    parcel_id: Uuid::now_v7(),
                    weight_grams: *grams,
                    dimensions: Dimensions {
                        length_mm: 300,
                        width_mm: 200,
                        height_mm: 100,
                    },
                    lines: vec![ParcelLine {
                        line_no: 1,
                        sku: sku.clone(),
                        quantity: 1,
                    }],
                })
                .collect(),
        })
        .collect();
    let eur = Currency::parse("EUR").expect("EUR");
    let payload = Packed {
        groups,
        ship_to: Address {
            name: "Ada Lovelace".into(),
            line1: "1 Analytical Way".into(),
            line2: None,
            postal_code: "10115".into(),
            city: "Berlin".into(),
            country: CountryCode::parse(country).expect("country"),
            phone: None,
        },
        delivery: Delivery {
            shipping_method: method.into(),
            ..Delivery::default()
        },
        declared_value: Money::new(10_000, eur),
        cash_on_delivery: None,
    };
    Envelope::new("fulfilment", Uuid::now_v7(), payload)
}

/// The same order packed again, as a new message.
pub fn repeated(first: &Envelope<Packed>) -> Envelope<Packed> {
    let mut again = Envelope::new("fulfilment", first.order_id, first.payload.clone());
    again.correlation_id = first.correlation_id;
    again
}

/// The reason of the next dead letter in `<queue>.dead`.
pub async fn next_dead_letter(env: &TestEnv, queue: &str) -> (String, Envelope<Value>) {
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    let dead = env.names().queue(&format!("{queue}.dead"));
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let got = channel
            .basic_get(dead.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get");
        if let Some(message) = got {
            let reason = message
                .delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-orderflow-reason").cloned());
            let reason = match reason {
                Some(AMQPValue::LongString(s)) => s.to_string(),
                other => panic!("dead letter without a reason header: {other:?}"),
            };
            let envelope = serde_json::from_slice(&message.delivery.data).expect("an envelope");
            let _ = connection.close(200, "done".into()).await;
            return (reason, envelope);
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no dead letter in {dead} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
