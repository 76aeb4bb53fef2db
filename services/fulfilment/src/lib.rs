//! `fulfilment`: turns a verified order into pick lists, one per warehouse that serves it, and
//! packs what was picked into parcels.
//!
//! - [`pick_list`]: opening pick lists and customisation tasks, confirming picks (a short pick
//!   publishes `order.fulfilment_failed`); the per-order lock every change takes. [`task`]:
//!   customisation tasks, done before packing.
//! - [`parcel`]: closing parcels within the [`packing`] rules and publishing `order.packed`, its
//!   parcels grouped by warehouse, once every pick list of the order is packed.
//! - [`warehouse`]: settings and each warehouse's mode — `automatic`, worked by the
//!   [`simulator`] (the default, what demos and benchmarks use), or `manual`, worked by staff
//!   through the [`api`].
//! - [`cancellation`]: `order.cancelled` stops the work or unpacks (`order.unpacked`);
//!   `order.reallocated` opens pick lists for units re-reserved after a short pick.
//! - [`orders`]: the consumer that dispatches the events above; [`openapi`]: `/openapi.json`.

mod api;
mod cancellation;
pub mod openapi;
mod orders;
mod packing;
mod parcel;
mod pick_list;
mod simulator;
mod task;
mod views;
mod warehouse;

use std::sync::Arc;

use anyhow::Context;
use orderflow_messages::order;
use orderflow_runtime::topology::QueueSpec;
use orderflow_runtime::{BoundService, CancellationToken, Service, ServiceSpec, Settings};
use sqlx::migrate::Migrator;

pub use packing::PackingRules;
pub use warehouse::{FulfilmentSettings, Mode};

pub const NAME: &str = "fulfilment";
/// Its PostgreSQL schema and config section.
pub const SCHEMA: &str = "fulfilment";
pub const QUEUE: &str = "fulfilment.orders";
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        queues: vec![
            QueueSpec::new(QUEUE)
                .bind::<order::Verified>()
                .bind::<order::Reallocated>()
                .bind::<order::Cancelled>(),
        ],
    }
}

pub async fn build(settings: &Settings) -> anyhow::Result<BoundService> {
    let own: FulfilmentSettings = settings.section("fulfilment")?;
    let floor = Arc::new(pick_list::Floor {
        rules: own.packing_rules(),
        delays: own.delays(),
        modes: warehouse::Modes {
            default_mode: own.default_mode,
            configured: own.warehouses.clone(),
        },
    });
    let service = Service::start(settings, spec()).await?;
    service.consume(
        QUEUE,
        orders::Orders {
            floor: floor.clone(),
        },
    )?;
    simulator::spawn(service.pool.clone(), floor.clone());
    let (api, document) = api::operations()
        .with_state(api::Api {
            pool: service.pool.clone(),
            floor,
        })
        .split_for_parts();
    let api = orderflow_runtime::auth::protect(api, settings.api_keys.clone())
        .merge(orderflow_runtime::openapi::route(document));
    service.bind(api).await.context("fulfilment HTTP")
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}
