//! The `shipping` service: turns a packed order into shipments with carriers and follows them
//! until they are delivered (or not), and the built-in simulated carrier.
//!
//! - [`settings`]: the `[shipping]` section — carriers, shipping rules, label deadline, webhook
//!   secrets, checked at start.
//! - [`registry`]: carriers and rules as stored (seeded from the settings at start).
//! - [`carriers`]: `PUT /v1/carriers/{code}` — registering a carrier (and its queue) at runtime.
//! - [`rules`]: which carrier and service level carry a parcel group.
//! - [`valuation`]: how declared value and cash on delivery are shared among shipments.
//! - [`shipment`]: a shipment's status as a state machine.
//! - [`dispatch`]: `shipping.orders` — `order.packed` → `shipment.requested` per parcel group
//!   (or `order.on_hold` when no rule matches).
//! - [`cancellation`]: the arbiter — `order.cancel_requested` → `order.cancelled` or
//!   `order.cancel_refused`.
//! - [`tracking`]: `shipping.carrier-events` — carriers' labels and tracking events.
//! - [`label_deadline`]: a label that does not come → the request again, then `order.on_hold`.
//! - [`pickup`]: the built-in `pickup` carrier (collection in store), handled in-process.
//! - [`webhook`]: `POST /v1/carriers/{code}/webhook`, signed carrier callbacks.
//! - [`progress`]: `order.shipped`, `order.delivered`, `order.delivery_failed`, once each.
//! - [`api`]: `GET /v1/shipments`, `GET /v1/shipments/{id}`, `POST /v1/shipments/{id}/collected`,
//!   `GET /v1/carriers`.
//! - [`carrier_sim`]: the `sim` carrier, speaking only the public carrier protocol (own binary
//!   `carrier-sim`).
//!
//! The carrier protocol, for integrators: `shared/messages/CARRIERS.md`.

pub mod api;
pub mod cancellation;
pub mod carrier_sim;
pub mod carriers;
pub mod dispatch;
pub mod label_deadline;
pub mod openapi;
pub mod pickup;
pub mod progress;
pub mod registry;
pub mod rules;
pub mod settings;
pub mod shipment;
pub mod tracking;
pub mod valuation;
pub mod webhook;

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

/// The service's queues, including `carrier.<code>` for every configured carrier (but the
/// in-process `pickup`): shipping publishes requests with `mandatory`, so a carrier's queue must
/// exist before the first one.
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
            .filter(|c| c.code != settings::PICKUP)
            .map(|c| QueueSpec::carrier(&c.code)),
    );
    ServiceSpec {
        name: NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        queues,
    }
}

/// Starts the service: database, topology, registry, consumers, label deadlines, HTTP.
pub async fn build(settings: &Settings) -> anyhow::Result<BoundService> {
    let shipping: ShippingSettings = settings.section(SCHEMA)?;
    shipping.validate()?;
    let service = Service::start(settings, spec_with(&shipping)).await?;
    // Before consuming: the first packed order needs the rules in place.
    registry::seed(&service.pool, &shipping).await?;
    let registrar = carriers::Registrar {
        pool: service.pool.clone(),
        broker: service.broker.clone(),
        delivery_limit: settings.amqp.delivery_limit,
    };
    // Carriers registered through the API are not in the spec; their queues must exist too.
    registrar.declare_stored().await?;
    service.consume(
        ORDERS_QUEUE,
        dispatch::Orders {
            label_timeout: shipping.label_timeout(),
        },
    )?;
    service.consume(CARRIER_EVENTS_QUEUE, tracking::CarrierEvents)?;
    label_deadline::spawn(
        service.pool.clone(),
        label_deadline::Deadline {
            timeout: shipping.label_timeout(),
            attempts: shipping.label_attempts,
            interval: shipping.label_check_interval(),
        },
    );
    let api = api::router(registrar, &shipping, settings.api_keys.clone());
    service.bind(api).await
}

/// Runs the service until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}
