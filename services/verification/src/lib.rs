//! verification: the second stage of an order's journey. It owns the catalogue, the warehouses
//! and their stock, and decides whether a placed order can be served.
//!
//! On `order.placed` every line is checked against the catalogue ([`pricing`]) and the stock
//! ([`allocation`]); an order with any failure is rejected with all its reasons, a good one has
//! its stock reserved ([`reservation`]) and goes on as `order.verified`. Later events move the
//! reservations on: `order.cancel_requested` releases them, `order.packed` ships them,
//! `order.delivery_failed` returns the goods to stock ([`order_events`]).
//!
//! Layout:
//! - [`catalogue`], [`warehouse`], [`stock`]: the records and their ledger;
//! - [`pricing`], [`allocation`]: the decisions, as pure functions;
//! - [`reservation`], [`order_record`]: what is held for each order and what was decided;
//! - [`order_events`]: the consumer of `verification.orders`;
//! - [`api`]: the `/v1` HTTP API; [`settings`]: the `[verification]` section.

pub mod allocation;
pub mod api;
pub mod catalogue;
pub mod order_events;
pub mod order_record;
pub mod pricing;
pub mod reservation;
pub mod settings;
pub mod stock;
pub mod warehouse;

use anyhow::Context;
use orderflow_messages::order;
use orderflow_runtime::topology::QueueSpec;
use orderflow_runtime::{BoundService, CancellationToken, Service, ServiceSpec, Settings};
use sqlx::migrate::Migrator;

use crate::settings::VerificationSettings;

/// The service's name: `producer` of its messages, and its label in logs and metrics.
pub const NAME: &str = "verification";
/// Its PostgreSQL schema and its settings section.
pub const SCHEMA: &str = "verification";
/// The one queue it consumes.
pub const ORDERS_QUEUE: &str = "verification.orders";

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        queues: vec![
            QueueSpec::new(ORDERS_QUEUE)
                .bind::<order::Placed>()
                .bind::<order::CancelRequested>()
                .bind::<order::Packed>()
                .bind::<order::DeliveryFailed>(),
        ],
    }
}

/// Connects, migrates, starts consuming and binds the HTTP port; [`BoundService::run_until_stopped`]
/// then serves.
pub async fn build(settings: &Settings) -> anyhow::Result<BoundService> {
    let own: VerificationSettings = settings
        .section(SCHEMA)
        .context("settings of section [verification]")?;
    let service = Service::start(settings, spec()).await?;
    service.consume(ORDERS_QUEUE, order_events::OrderEvents { settings: own })?;
    let api = api::router(service.pool.clone(), settings.api_keys.clone());
    service.bind(api).await
}

/// Runs the service until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}
