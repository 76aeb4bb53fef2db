//! Test environments: each test gets its own database and its own exchange/queue-name prefix on
//! the real PostgreSQL and RabbitMQ, so tests run in parallel and leave nothing behind (the
//! database is dropped and the queues and exchanges deleted when the environment is dropped,
//! even if the test panicked).
//!
//! `DATABASE_URL` and `AMQP_URL` point the tests at another server; the defaults are local. For
//! a broker that is not the machine's own (RabbitMQ 4 in a container), `RABBITMQCTL` is the
//! command line that runs its `rabbitmqctl` (e.g. `docker exec NAME rabbitmqctl`) and
//! `RABBITMQ_MANAGEMENT_URL` its management API.

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use orderflow_messages::Exchange;
use sqlx::Connection as _;

use crate::config::Settings;
use crate::topology::Names;

/// `rabbitmqctl` of the broker under test: the command line in `RABBITMQCTL`, else the
/// machine's own.
pub fn rabbitmqctl() -> tokio::process::Command {
    let line = std::env::var("RABBITMQCTL").unwrap_or_default();
    let mut words = line.split_whitespace();
    let mut command = tokio::process::Command::new(words.next().unwrap_or("rabbitmqctl"));
    command.args(words);
    command
}

/// The management API of the broker under test: `RABBITMQ_MANAGEMENT_URL`, else the local one.
pub fn management_url() -> String {
    std::env::var("RABBITMQ_MANAGEMENT_URL").unwrap_or_else(|_| "http://127.0.0.1:15672".to_owned())
}

/// `host:port` of the broker `settings` point at, for URLs with other credentials or vhosts.
pub fn broker_address(settings: &Settings) -> String {
    let uri: lapin::uri::AMQPUri = settings
        .amqp
        .url
        .expose()
        .parse()
        .expect("AMQP_URL is an AMQP URL");
    format!("{}:{}", uri.authority.host, uri.authority.port)
}

/// A private corner of the real broker and database.
pub struct TestEnv {
    /// Settings for services under test: own database, own prefix, HTTP ports 0.
    pub settings: Settings,
    pub database: String,
    pub prefix: String,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let base = Settings::load_with(None, std::env::vars()).expect("test settings");
        TestEnv::isolated(&base, "test", 4).expect("test settings")
    }

    /// A fresh database `orderflow_<label>_<id>` and prefix `<label>-<id>.` derived from `base`,
    /// with every service on a free loopback port. `orderflow bench` uses this too.
    pub fn isolated(base: &Settings, label: &str, max_connections: u32) -> anyhow::Result<TestEnv> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("orderflow_{label}_{}", &id[..16]);
        let prefix = format!("{label}-{}.", &id[..12]);
        let url = replace_database(base.database.url.expose(), &database);
        let mut settings = base
            .with("database.url", url)?
            .with("database.max_connections", max_connections)?
            .with("amqp.prefix", prefix.clone())?;
        for section in [
            "order_intake",
            "verification",
            "fulfilment",
            "shipping",
            "billing",
        ] {
            settings = settings
                .with(&format!("{section}.port"), 0)?
                .with(&format!("{section}.host"), "127.0.0.1")?;
        }
        Ok(TestEnv {
            settings,
            database,
            prefix,
        })
    }

    /// Names as the services under test see them.
    pub fn names(&self) -> Names {
        Names {
            prefix: self.prefix.clone(),
        }
    }

    /// A connection to the test database's server, in the test database (once created).
    pub async fn connect_db(&self, schema: &str) -> sqlx::PgConnection {
        let options = crate::database::connect_options(self.settings.database.url.expose())
            .expect("database url")
            .options([("search_path", schema)]);
        sqlx::PgConnection::connect_with(&options)
            .await
            .expect("connect to the test database")
    }

    /// A small pool on the test database in `schema`, for assertions inside `eventually`.
    pub async fn pool(&self, schema: &str) -> sqlx::PgPool {
        let options = crate::database::connect_options(self.settings.database.url.expose())
            .expect("database url")
            .options([("search_path", schema)]);
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("connect to the test database")
    }

    /// A broker connection for the test itself.
    pub async fn connect_broker(&self) -> Connection {
        Connection::connect(
            self.settings.amqp.url.expose(),
            ConnectionProperties::default(),
        )
        .await
        .expect("connect to RabbitMQ")
    }

    async fn cleanup(settings: Settings, database: String, prefix: String) {
        if let Ok(conn) =
            Connection::connect(settings.amqp.url.expose(), ConnectionProperties::default()).await
            && let Ok(channel) = conn.create_channel().await
        {
            for queue in crate::topology::declared_with_prefix(&prefix) {
                let _ = channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            let names = Names { prefix };
            for exchange in Exchange::ALL {
                let _ = channel
                    .exchange_delete(
                        names.exchange(exchange).as_str().into(),
                        ExchangeDeleteOptions::default(),
                    )
                    .await;
            }
            let _ = conn.close(200, "test done".into()).await;
        }
        if let Ok(options) = crate::database::connect_options(settings.database.url.expose())
            && let Ok(mut admin) =
                sqlx::PgConnection::connect_with(&options.database("postgres")).await
        {
            let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut admin)
                .await;
            let _ = admin.close().await;
        }
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let (settings, database, prefix) = (
            self.settings.clone(),
            self.database.clone(),
            self.prefix.clone(),
        );
        // Drop cannot await, and may run inside a runtime: clean up on a thread of our own.
        let cleanup = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(TestEnv::cleanup(settings, database, prefix));
            }
        });
        let _ = cleanup.join();
    }
}

/// `url` with its database path replaced by `database`.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[after_scheme..].find('/').map(|i| i + after_scheme);
    let host_part = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{database}?{q}"),
        None => format!("{host_part}/{database}"),
    }
}

/// Waits for `condition` to hold, polling every 50 ms, failing the test after `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: std::time::Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A temporary queue bound to some routing keys, for a test to watch what a service publishes.
pub struct Probe {
    _connection: Connection,
    consumer: lapin::Consumer,
}

impl TestEnv {
    /// Binds a private, exclusive queue to `bindings` (exchange, key pattern) under this
    /// environment's prefix. It disappears with the probe.
    pub async fn probe(&self, bindings: &[(Exchange, &str)]) -> Probe {
        use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        let connection = self.connect_broker().await;
        let channel = connection.create_channel().await.expect("channel");
        crate::topology::declare_exchanges(&channel, &self.names())
            .await
            .expect("exchanges");
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("probe queue");
        for (exchange, key) in bindings {
            channel
                .queue_bind(
                    queue.name().clone(),
                    self.names().exchange(*exchange).as_str().into(),
                    (*key).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("probe binding");
        }
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "probe".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("probe consumer");
        Probe {
            _connection: connection,
            consumer,
        }
    }

    /// A confirmed publisher into this environment's exchanges.
    pub async fn publisher(&self) -> (Connection, crate::amqp::Publisher) {
        use lapin::options::ConfirmSelectOptions;
        let connection = self.connect_broker().await;
        let channel = connection.create_channel().await.expect("channel");
        crate::topology::declare_exchanges(&channel, &self.names())
            .await
            .expect("exchanges");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let publisher = crate::amqp::Publisher::from_channel(channel, self.names());
        (connection, publisher)
    }
}

impl Probe {
    /// The next message, or a test failure after `deadline`.
    pub async fn next(
        &mut self,
        deadline: std::time::Duration,
    ) -> (String, orderflow_messages::Envelope<serde_json::Value>) {
        use futures::StreamExt;
        let delivery = tokio::time::timeout(deadline, self.consumer.next())
            .await
            .unwrap_or_else(|_| panic!("no message within {deadline:?}"))
            .expect("probe consumer ended")
            .expect("delivery");
        let envelope = serde_json::from_slice(&delivery.data).expect("an envelope");
        (delivery.routing_key.to_string(), envelope)
    }

    /// The next message of type `E` (others are skipped), or a test failure after `deadline`.
    pub async fn next_of<E: orderflow_messages::Event>(
        &mut self,
        deadline: std::time::Duration,
    ) -> orderflow_messages::Envelope<E> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let (_, envelope) = self.next(left).await;
            if envelope.is::<E>() {
                let payload = envelope
                    .decode::<E>()
                    .expect("payload of the expected type");
                return orderflow_messages::Envelope {
                    message_id: envelope.message_id,
                    kind: envelope.kind,
                    schema_version: envelope.schema_version,
                    occurred_at: envelope.occurred_at,
                    order_id: envelope.order_id,
                    correlation_id: envelope.correlation_id,
                    causation_id: envelope.causation_id,
                    producer: envelope.producer,
                    payload,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            replace_database("postgres://u@h:5432/orderflow?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "t1"), "postgres://h/t1");
    }
}
