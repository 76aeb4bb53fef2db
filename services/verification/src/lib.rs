//! verification: the second stage of an order's journey. It owns the catalogue, the warehouses
//! and their stock, and decides whether a placed order can be served.
//!
//! On `order.placed` every line is checked against the catalogue ([`pricing`]), the order as a
//! whole against the customer's record and the delivery and payment rules ([`order_policy`]),
//! then the stock ([`allocation`]); an order with any failure is rejected with all its reasons,
//! one short of stock that may be backordered waits ([`backorder`]), a good one has its stock
//! reserved ([`reservation`]) and goes on as `order.verified` ([`decision`]). Later events move
//! the reservations on: `order.cancelled` releases them, `order.packed` ships them,
//! `order.fulfilment_failed` re-reserves what a warehouse did not find ([`short_pick`]),
//! `order.unpacked` and `order.delivery_failed` put the goods back ([`order_events`]).
//!
//! Layout:
//! - [`catalogue`], [`customer`], [`warehouse`], [`stock`], [`low_stock`]: the records and their
//!   ledger;
//! - [`pricing`], [`order_policy`], [`allocation`]: the decisions, as pure functions;
//! - [`decision`], [`reservation`], [`order_record`], [`backorder`], [`short_pick`]: what is
//!   decided and held for each order;
//! - [`order_events`]: the consumer of `verification.orders`;
//! - [`api`]: the `/v1` HTTP API; [`settings`]: the `[verification]` section.

pub mod allocation;
pub mod api;
pub mod backorder;
pub mod catalogue;
pub mod customer;
pub mod decision;
pub mod low_stock;
pub mod openapi;
pub mod order_events;
pub mod order_policy;
pub mod order_record;
pub mod pricing;
pub mod reservation;
pub mod settings;
pub mod short_pick;
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
                .bind::<order::Cancelled>()
                .bind::<order::Packed>()
                .bind::<order::FulfilmentFailed>()
                .bind::<order::Unpacked>()
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
    service.consume(
        ORDERS_QUEUE,
        order_events::OrderEvents {
            settings: own.clone(),
        },
    )?;
    let api = api::router(service.pool.clone(), settings.api_keys.clone(), own.clone());
    let bound = service.bind(api).await?;
    backorder::spawn_sweeper(bound.pool().clone(), own);
    Ok(bound)
}

/// Runs the service until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}
