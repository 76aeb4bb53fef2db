//! Reading orders back: one order with its lines and timeline, a newest-first list, and the
//! count per status.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orderflow_messages::order::Delivery;
use orderflow_messages::types::Address;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::lifecycle::Status;
use crate::timeline::{self, Entry};

/// An order as `GET /v1/orders/{id}` shows it. The payment token is never stored, so it cannot
/// show up here.
#[derive(Debug, Serialize)]
pub struct OrderView {
    pub id: Uuid,
    pub status: String,
    pub channel: String,
    pub external_reference: Option<String>,
    pub customer: CustomerView,
    pub currency: String,
    pub lines: Vec<LineView>,
    /// Sum of the lines at the prices the customer saw.
    pub subtotal: MoneyView,
    pub shipping_address: Address,
    pub billing_address: Option<Address>,
    pub delivery: Delivery,
    pub payment: PaymentView,
    pub coupon_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timeline: Vec<Entry>,
}

#[derive(Debug, Serialize)]
pub struct CustomerView {
    pub customer_id: Option<String>,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct LineView {
    pub line_no: i32,
    pub sku: String,
    pub quantity: i32,
    pub unit_price: i64,
    pub customisations: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MoneyView {
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Serialize)]
pub struct PaymentView {
    pub method: String,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    status: String,
    channel: String,
    external_reference: Option<String>,
    customer_id: Option<String>,
    customer_email: String,
    customer_name: String,
    currency: String,
    shipping_address: Json<Address>,
    billing_address: Option<Json<Address>>,
    delivery: Json<Delivery>,
    payment_method: String,
    coupon_code: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The order `id` with its lines and timeline, or `None` if there is no such order.
pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<OrderView>, sqlx::Error> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT id, status, channel, external_reference, customer_id, customer_email, \
         customer_name, currency, shipping_address, billing_address, delivery, payment_method, \
         coupon_code, created_at, updated_at FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let lines: Vec<LineView> = sqlx::query_as(
        "SELECT line_no, sku, quantity, unit_price, customisations FROM order_lines \
         WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let timeline = timeline::of_order(conn, id).await?;
    let amount = lines
        .iter()
        .map(|l| i64::from(l.quantity).saturating_mul(l.unit_price))
        .fold(0, i64::saturating_add);
    Ok(Some(OrderView {
        id: row.id,
        status: row.status,
        channel: row.channel,
        external_reference: row.external_reference,
        customer: CustomerView {
            customer_id: row.customer_id,
            email: row.customer_email,
            name: row.customer_name,
        },
        subtotal: MoneyView {
            amount,
            currency: row.currency.clone(),
        },
        currency: row.currency,
        lines,
        shipping_address: row.shipping_address.0,
        billing_address: row.billing_address.map(|a| a.0),
        delivery: row.delivery.0,
        payment: PaymentView {
            method: row.payment_method,
        },
        coupon_code: row.coupon_code,
        created_at: row.created_at,
        updated_at: row.updated_at,
        timeline,
    }))
}

/// One row of `GET /v1/orders`.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct OrderSummary {
    pub id: Uuid,
    pub status: String,
    pub channel: String,
    pub external_reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The newest `limit` orders, only those in `status` if given.
pub async fn newest(
    pool: &PgPool,
    status: Option<Status>,
    limit: i64,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status, channel, external_reference, created_at FROM orders \
         WHERE $1::text IS NULL OR status = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(status.map(Status::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How many orders are in each status (every status listed, zero included), and in all.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub by_status: BTreeMap<&'static str, i64>,
    pub total: i64,
}

pub async fn stats(pool: &PgPool) -> Result<Stats, sqlx::Error> {
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status")
            .fetch_all(pool)
            .await?;
    let by_status: BTreeMap<&'static str, i64> = Status::ALL
        .iter()
        .map(|status| {
            let n = counts
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            (status.as_str(), n)
        })
        .collect();
    let total = by_status.values().sum();
    Ok(Stats { by_status, total })
}
