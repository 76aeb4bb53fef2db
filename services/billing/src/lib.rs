//! billing: prices verified orders, authorises and captures their payments, and issues their
//! invoices.
//!
//! - [`settings`]: the `[billing]` section (tax rates, shipping tariff, invoice series).
//! - [`pricing`]: net, tax and gross in integer minor units, tax per rate group, rounded half
//!   away from zero; [`draft`] applies it to a verified order (products plus a shipping line).
//! - [`connector`]: the payment-provider interface, the simulated card provider and the
//!   methods that need no provider.
//! - [`payment`]: the payment state machine; [`authorization`]: holding the money on verification; [`invoice`]: gapless invoice numbers and the
//!   invoices themselves; [`orders`]: the orders and journey milestones billing knows.
//! - [`settlement`]: decides what is due for an order from everything stored about it;
//!   [`handler`] feeds it the messages of `billing.orders`, [`recheck`] the payments whose
//!   outcome was unknown.
//! - [`api`]: `GET /v1/invoices/{number}`, `GET /v1/payments?order_id=`.

pub mod api;
pub mod authorization;
pub mod connector;
pub mod draft;
pub mod handler;
pub mod invoice;
pub mod orders;
pub mod payment;
pub mod pricing;
pub mod recheck;
pub mod settings;
pub mod settlement;

use std::sync::Arc;

use anyhow::Context;
use orderflow_messages::order::{CancelRequested, Delivered, DeliveryFailed, Shipped, Verified};
use orderflow_runtime::topology::QueueSpec;
use orderflow_runtime::{BoundService, CancellationToken, Service, ServiceSpec, Settings};
use sqlx::migrate::Migrator;

use crate::connector::Connectors;
use crate::settings::{BillingRules, BillingSettings};
use crate::settlement::Billing;

pub const NAME: &str = "billing";
/// The PostgreSQL schema and the settings section.
pub const SCHEMA: &str = "billing";
/// The one queue: every order event billing acts on.
pub const ORDERS_QUEUE: &str = "billing.orders";

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        queues: vec![
            QueueSpec::new(ORDERS_QUEUE)
                .bind::<Verified>()
                .bind::<Shipped>()
                .bind::<Delivered>()
                .bind::<CancelRequested>()
                .bind::<DeliveryFailed>(),
        ],
    }
}

/// Starts billing with the built-in payment connectors.
pub async fn build(settings: &Settings) -> anyhow::Result<BoundService> {
    build_with(settings, Connectors::builtin()).await
}

/// Starts billing with the given payment connectors (another provider per method).
pub async fn build_with(
    settings: &Settings,
    connectors: Connectors,
) -> anyhow::Result<BoundService> {
    let section: BillingSettings = settings.section(SCHEMA)?;
    let rules = BillingRules::resolve(&section).context("invalid [billing] settings")?;
    let service = Service::start(settings, spec()).await?;
    let billing = Arc::new(Billing::new(rules, connectors));
    service.consume(
        ORDERS_QUEUE,
        handler::OrdersHandler {
            billing: billing.clone(),
        },
    )?;
    recheck::spawn(service.pool.clone(), billing);
    let api = api::router(service.pool.clone(), settings.api_keys.clone());
    service.bind(api).await
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}
