//! `order-intake`: where an order enters orderflow, and where its customer-facing status lives.
//!
//! - [`api`]: `POST /v1/orders` takes an order ([`order_request`] parses and checks the body,
//!   [`field_rules`] holds the rules), [`placement`] stores it and its `order.placed` message in
//!   one transaction; `GET /v1/orders…` reads orders back ([`orders`]).
//! - [`journey`]: consumes every event about an order from `order-intake.events`, appends it to
//!   the order's [`timeline`] and moves the status as the [`lifecycle`] allows.
//! - [`confirmation`]: on `order.paid`, records the customer's confirmation, completes the order
//!   and publishes `order.completed`.

use orderflow_messages::{Event, order, payment, stock};
use orderflow_runtime::topology::QueueSpec;
use orderflow_runtime::{BoundService, CancellationToken, Service, ServiceSpec, Settings};
use serde::Deserialize;
use sqlx::migrate::Migrator;

pub mod api;
pub mod confirmation;
pub mod console;
pub mod delivery;
pub mod field_rules;
pub mod import;
pub mod journey;
pub mod lifecycle;
pub mod notification;
pub mod openapi;
pub mod order_request;
pub mod orders;
pub mod placement;
pub mod stage_facts;
pub mod timeline;

pub const NAME: &str = "order-intake";
/// Its PostgreSQL schema and config section.
pub const SCHEMA: &str = "order_intake";
/// The queue of every event about an order.
pub const EVENTS_QUEUE: &str = "order-intake.events";

#[cfg(not(feature = "upgrade-rehearsal"))]
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// With the `upgrade-rehearsal` feature, for the compose test's "next release" image only: the
/// same migrations and one more, the expand step a real release would ship (a nullable column
/// the previous release's queries do not name), numbered after the last real one.
#[cfg(feature = "upgrade-rehearsal")]
static MIGRATOR: std::sync::LazyLock<Migrator> = std::sync::LazyLock::new(|| {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType};
    let released = sqlx::migrate!("./migrations");
    let next = released.iter().map(|m| m.version).max().unwrap_or(0) + 1;
    let mut migrations = released.migrations.to_vec();
    migrations.push(Migration::new(
        next,
        "upgrade rehearsal".into(),
        MigrationType::Simple,
        "ALTER TABLE orders ADD COLUMN upgrade_rehearsal text".into_sql_str(),
        false,
    ));
    Migrator {
        migrations: migrations.into(),
        ..released
    }
});

/// The `[order_intake]` section (besides `host` and `port`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OrderIntakeSettings {
    /// Signs the customers' confirmations.
    pub shop_name: String,
    /// How long an `Idempotency-Key` of `POST /v1/orders` is remembered; older keys are new.
    pub idempotency_key_lifetime_seconds: u64,
    /// Notifications: attempts per delivery, the first retry's wait (doubled after each further
    /// failure), how often the worker looks for due ones, and a webhook call's timeout.
    pub notification_max_attempts: i32,
    pub notification_first_backoff_ms: u64,
    pub notification_poll_ms: u64,
    pub webhook_timeout_ms: u64,
    /// A PEM file of CA certificates trusted for webhook URLs besides the system's roots (a
    /// shop's private CA); empty for none.
    pub webhook_ca_file: String,
    /// Lets subscriptions use plain `http://` to any host, production included. Off,
    /// development accepts `http://` to this machine only and production refuses it.
    pub webhook_allow_http: bool,
}

impl Default for OrderIntakeSettings {
    fn default() -> Self {
        OrderIntakeSettings {
            shop_name: "orderflow".to_owned(),
            idempotency_key_lifetime_seconds: 24 * 60 * 60,
            notification_max_attempts: 8,
            notification_first_backoff_ms: 1000,
            notification_poll_ms: 500,
            webhook_timeout_ms: 10_000,
            webhook_ca_file: String::new(),
            webhook_allow_http: false,
        }
    }
}

/// The service as data. The queue follows the whole journey of an order on `orderflow.events`;
/// shipment events travel on the carrier exchanges and reach intake as `order.shipped` and co.
/// What intake publishes is recorded in the timeline in the transaction that writes it, so
/// hearing it again only costs a delivery: [`OWN_EVENTS`] are not bound. `order.completed` and
/// `order.feedback_received` still are, as no other stage reads them and a message no queue
/// receives is refused (publishing is mandatory); `order.cancel_requested`, because billing asks
/// for cancellations too. `stock.low` goes into the timeline of the order that caused it (and
/// has no other reader yet).
pub fn spec() -> ServiceSpec {
    let events = QueueSpec::new(EVENTS_QUEUE)
        .bind::<order::Verified>()
        .bind::<order::Rejected>()
        .bind::<order::Backordered>()
        .bind::<stock::Released>()
        .bind::<stock::Low>()
        .bind::<order::Packed>()
        .bind::<order::Reallocated>()
        .bind::<order::FulfilmentFailed>()
        .bind::<order::Shipped>()
        .bind::<order::Delivered>()
        .bind::<order::DeliveryFailed>()
        .bind::<payment::Authorized>()
        .bind::<payment::Failed>()
        .bind::<order::Invoiced>()
        .bind::<order::Paid>()
        .bind::<payment::Voided>()
        .bind::<payment::Refunded>()
        .bind::<order::Completed>()
        .bind::<order::CancelRequested>()
        .bind::<order::Cancelled>()
        .bind::<order::CancelRefused>()
        .bind::<order::Unpacked>()
        .bind::<order::OnHold>()
        .bind::<order::Stalled>()
        .bind::<order::FeedbackReceived>();
    ServiceSpec {
        name: NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        queues: vec![events],
    }
}

/// Events only intake publishes, each written to the timeline with its outbox row, that
/// another stage reads (so they stay routable without intake's queue).
pub const OWN_EVENTS: [&str; 2] = [order::Placed::TYPE, order::PaymentMethodChanged::TYPE];

/// Starts the service: database, topology, consumer and HTTP port.
pub async fn build(settings: &Settings) -> anyhow::Result<BoundService> {
    let own: OrderIntakeSettings = settings.section(SCHEMA)?;
    // Refused before connecting to anything: development credentials in production.
    console::settings(settings)?;
    let service = Service::start(settings, spec()).await?;
    service.consume(
        EVENTS_QUEUE,
        journey::Journey {
            shop_name: own.shop_name,
        },
    )?;
    let plain_http = delivery::PlainHttp::of(settings.env, own.webhook_allow_http);
    let ca_file = Some(own.webhook_ca_file.trim())
        .filter(|path| !path.is_empty())
        .map(std::path::Path::new);
    let client = delivery::webhook_client(
        std::time::Duration::from_millis(own.webhook_timeout_ms),
        ca_file,
        plain_http,
    )?;
    delivery::spawn(
        service.pool.clone(),
        delivery::Retries {
            max_attempts: own.notification_max_attempts.max(1),
            first_backoff: std::time::Duration::from_millis(own.notification_first_backoff_ms),
            poll: std::time::Duration::from_millis(own.notification_poll_ms.max(10)),
        },
        delivery::WebhookSink { client },
    );
    let api = api::Api {
        pool: service.pool.clone(),
        key_lifetime: std::time::Duration::from_secs(own.idempotency_key_lifetime_seconds),
        plain_http,
    };
    let router = api::router(api, settings.api_keys.clone())
        .merge(console::router(service.pool.clone(), settings)?);
    service.bind(router).await
}

/// Runs until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}

#[cfg(test)]
mod tests {
    use orderflow_messages::Exchange;
    use orderflow_messages::catalogue;

    #[test]
    fn the_queue_hears_every_order_payment_and_stock_event_but_no_shipment_event_nor_its_own() {
        let spec = super::spec();
        let keys: Vec<&str> = spec.queues[0]
            .bindings
            .iter()
            .inspect(|b| assert_eq!(b.exchange, Exchange::Events))
            .map(|b| b.key.as_str())
            .collect();
        for event in catalogue::all() {
            let wanted = (event.name.starts_with("order.")
                || event.name.starts_with("payment.")
                || event.name.starts_with("stock."))
                && !super::OWN_EVENTS.contains(&event.name);
            assert_eq!(keys.contains(&event.name), wanted, "{}", event.name);
        }
    }
}
