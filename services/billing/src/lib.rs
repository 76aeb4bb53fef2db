//! billing: prices verified orders, authorises and captures their payments, and issues their
//! invoices.
//!
//! - [`settings`]: the `[billing]` section (tax rates, shipping tariff, series, deadlines).
//! - [`pricing`]: net, tax and gross in integer minor units, tax per rate group, rounded half
//!   away from zero; [`draft`] applies it to a verified order (products, the [`coupon`]'s
//!   discount lines, a shipping line).
//! - [`connector`]: the payment-provider interface, the simulated card provider, prepaid and
//!   the methods that need no provider.
//! - [`payment`]: the payment state machine, one payment per attempt; [`authorization`]:
//!   holding the money on verification (again after a change of method).
//! - [`invoice`]: gapless numbers, invoices and credit notes; [`invoice_view`] and
//!   [`invoice_print`] show them as JSON and HTML, [`accounting`] exports them as CSV.
//! - [`received`]: transfers received for invoices; [`refund`]: credit notes and refunds.
//! - [`orders`]: the orders and journey milestones billing knows.
//! - [`settlement`]: decides what is due for an order from everything stored about it;
//!   [`handler`] feeds it the messages of `billing.orders`, [`recheck`] the payments whose
//!   outcome was unknown; [`deadlines`] reminds overdue invoices and ends unresolved holds.
//! - [`api`]: the HTTP API.

pub mod accounting;
pub mod api;
pub mod authorization;
pub mod connector;
pub mod coupon;
pub mod deadlines;
pub mod draft;
pub mod handler;
pub mod invoice;
pub mod invoice_print;
pub mod invoice_view;
pub mod openapi;
pub mod orders;
pub mod payment;
pub mod pricing;
pub mod received;
pub mod recheck;
pub mod refund;
pub mod settings;
pub mod settlement;

use std::sync::Arc;

use anyhow::Context;
use orderflow_messages::order::{
    Cancelled, Delivered, DeliveryFailed, PaymentMethodChanged, Shipped, Verified,
};
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
                .bind::<Cancelled>()
                .bind::<DeliveryFailed>()
                .bind::<PaymentMethodChanged>(),
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
    recheck::spawn(service.pool.clone(), billing.clone());
    deadlines::spawn(service.pool.clone(), billing.clone());
    let api = api::router(service.pool.clone(), billing, settings.api_keys.clone());
    service.bind(api).await
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}
