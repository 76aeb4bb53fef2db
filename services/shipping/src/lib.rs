//! The `shipping` service: turns a packed order into shipments with carriers and follows them
//! until they are delivered (or not), and the built-in simulated carrier.
//!
//! - [`settings`]: the `[shipping]` section — carriers and shipping rules, checked at start.
//! - [`registry`]: carriers and rules as stored (seeded from the settings at start).
//! - [`rules`]: which carrier and service level carry a parcel group.
//! - [`valuation`]: how declared value and cash on delivery are shared among shipments.
//! - [`shipment`]: a shipment's status as a state machine.
//! - [`dispatch`]: `shipping.orders` — `order.packed` → `shipment.requested` per parcel group
//!   (or `order.on_hold` when no rule matches); `order.cancel_requested` → cancellations.
//! - [`tracking`]: `shipping.carrier-events` — carriers' labels and tracking events.
//! - [`progress`]: `order.shipped`, `order.delivered`, `order.delivery_failed`, once each.
//! - [`api`]: `GET /v1/shipments`, `GET /v1/shipments/{id}`, `GET /v1/carriers`.
//! - [`carrier_sim`]: the `sim` carrier, speaking only the public carrier protocol (own binary
//!   `carrier-sim`).

pub mod api;
pub mod carrier_sim;
pub mod dispatch;
pub mod progress;
pub mod registry;
pub mod rules;
pub mod settings;
pub mod shipment;
pub mod tracking;
pub mod valuation;

use orderflow_messages::{order, shipment as carrier_protocol};
use orderflow_runtime::topology::QueueSpec;
use orderflow_runtime::{BoundService, CancellationToken, Service, ServiceSpec, Settings};
use sqlx::migrate::Migrator;

pub use settings::ShippingSettings;

/// The service's name: in logs, metrics and as `producer` of its messages.
pub const NAME: &str = "shipping";
/// Its database schema and settings section.
pub const SCHEMA: &str = "shipping";
/// Packed and cancelled orders.
pub const ORDERS_QUEUE: &str = "shipping.orders";
/// Every carrier's replies.
pub const CARRIER_EVENTS_QUEUE: &str = "shipping.carrier-events";

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The service with its default carriers (what `orderflow topology` exports).
pub fn spec() -> ServiceSpec {
    spec_with(&ShippingSettings::default())
}

/// The service's queues, including `carrier.<code>` for every configured carrier: shipping
/// publishes requests with `mandatory`, so a carrier's queue must exist before the first one.
pub fn spec_with(settings: &ShippingSettings) -> ServiceSpec {
    let mut queues = vec![
        QueueSpec::new(ORDERS_QUEUE)
            .bind::<order::Packed>()
            .bind::<order::CancelRequested>(),
        QueueSpec::new(CARRIER_EVENTS_QUEUE)
            .bind::<carrier_protocol::LabelCreated>()
            .bind::<carrier_protocol::TrackingUpdated>(),
    ];
    queues.extend(
        settings
            .carriers
            .iter()
            .map(|c| QueueSpec::carrier(&c.code)),
    );
    ServiceSpec {
        name: NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        queues,
    }
}

/// Starts the service: database, topology, registry, consumers, HTTP.
pub async fn build(settings: &Settings) -> anyhow::Result<BoundService> {
    let shipping: ShippingSettings = settings.section(SCHEMA)?;
    shipping.validate()?;
    let service = Service::start(settings, spec_with(&shipping)).await?;
    // Before consuming: the first packed order needs the rules in place.
    registry::seed(&service.pool, &shipping).await?;
    service.consume(ORDERS_QUEUE, dispatch::Orders)?;
    service.consume(CARRIER_EVENTS_QUEUE, tracking::CarrierEvents)?;
    let api = api::router(service.pool.clone(), settings.api_keys.clone());
    service.bind(api).await
}

/// Runs the service until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}
