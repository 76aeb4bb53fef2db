//! Reading orders back: one order with its lines, shipments and timeline, a filtered
//! newest-first list paged by a keyset cursor, and the count per status. [`Reader`] decides
//! whose orders a caller may see.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orderflow_messages::order::Delivery;
use orderflow_messages::types::Address;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use orderflow_runtime::auth::{Caller, Role};

use crate::lifecycle::Status;
use crate::order_request::{AddressRequest, DeliveryRequest};
use crate::timeline::{self, Entry};

/// Whose orders a caller may see: staff and admin every order, a shop key only the orders placed
/// with its own name (a key without a name: the orders placed by such keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    Everyone,
    Shop(Option<String>),
}

impl Reader {
    pub fn of(caller: &Caller) -> Reader {
        if caller.role >= Role::Staff {
            Reader::Everyone
        } else {
            Reader::Shop(caller.key_name.clone())
        }
    }

    pub fn can_see(&self, shop: Option<&str>) -> bool {
        match self {
            Reader::Everyone => true,
            Reader::Shop(own) => own.as_deref() == shop,
        }
    }
}

/// An order as `GET /v1/orders/{id}` shows it. The payment token is never stored, so it cannot
/// show up here.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub status: String,
    pub channel: String,
    pub external_reference: Option<String>,
    /// The shop (API key name) that placed it, if any.
    pub shop: Option<String>,
    pub customer: CustomerView,
    pub currency: String,
    pub lines: Vec<LineView>,
    /// Sum of the lines at the prices the customer saw.
    pub subtotal: MoneyView,
    #[schema(value_type = AddressRequest)]
    pub shipping_address: Address,
    #[schema(value_type = Option<AddressRequest>)]
    pub billing_address: Option<Address>,
    #[schema(value_type = DeliveryRequest)]
    pub delivery: Delivery,
    pub payment: PaymentView,
    pub coupon_code: Option<String>,
    /// From `order.shipped`.
    pub shipments: Vec<ShipmentView>,
    /// From `order.invoiced`.
    pub invoice_number: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timeline: Vec<Entry>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ShipmentView {
    pub shipment_id: Uuid,
    pub carrier: String,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub customer_id: Option<String>,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct LineView {
    pub line_no: i32,
    pub sku: String,
    pub quantity: i32,
    pub unit_price: i64,
    pub customisations: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyView {
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub method: String,
    /// `pending`, `authorized`, `failed`, `captured`, `voided` or `refunded`.
    pub state: String,
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
    payment_state: String,
    coupon_code: Option<String>,
    shop: Option<String>,
    invoice_number: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The order `id` with its lines and timeline, or `None` if there is no such order.
pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<OrderView>, sqlx::Error> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT id, status, channel, external_reference, customer_id, customer_email, \
         customer_name, currency, shipping_address, billing_address, delivery, payment_method, \
         payment_state, coupon_code, shop, invoice_number, created_at, updated_at \
         FROM orders WHERE id = $1",
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
    let shipments: Vec<ShipmentView> = sqlx::query_as(
        "SELECT shipment_id, carrier, tracking_number, tracking_url FROM order_shipments \
         WHERE order_id = $1 ORDER BY created_at, shipment_id",
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
        shop: row.shop,
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
            state: row.payment_state,
        },
        coupon_code: row.coupon_code,
        shipments,
        invoice_number: row.invoice_number,
        created_at: row.created_at,
        updated_at: row.updated_at,
        timeline,
    }))
}

impl OrderView {
    /// The order exactly as [`find`] reads it back right after `placement` stored it: placed,
    /// nothing paid, shipped or invoiced yet, and `first` as its only timeline entry. Answering
    /// with it saves four reads on the hottest path; a test compares it with `find`.
    pub fn placed(
        id: Uuid,
        order: &orderflow_messages::order::Placed,
        at: DateTime<Utc>,
        shop: Option<&str>,
        first: Entry,
    ) -> OrderView {
        let lines: Vec<LineView> = order
            .lines
            .iter()
            .map(|l| LineView {
                line_no: i32::try_from(l.line_no).unwrap_or(i32::MAX),
                sku: l.sku.as_str().to_owned(),
                quantity: i32::try_from(l.quantity).unwrap_or(i32::MAX),
                unit_price: l.unit_price,
                customisations: l.customisations.clone(),
            })
            .collect();
        let amount = lines
            .iter()
            .map(|l| i64::from(l.quantity).saturating_mul(l.unit_price))
            .fold(0, i64::saturating_add);
        let currency = order.currency.as_str().to_owned();
        OrderView {
            id,
            status: Status::Placed.as_str().to_owned(),
            channel: order.channel.as_str().to_owned(),
            external_reference: order.external_reference.clone(),
            shop: shop.map(str::to_owned),
            customer: CustomerView {
                customer_id: order.customer.customer_id.clone(),
                email: order.customer.email.as_str().to_owned(),
                name: order.customer.name.clone(),
            },
            subtotal: MoneyView {
                amount,
                currency: currency.clone(),
            },
            currency,
            lines,
            shipping_address: order.shipping_address.clone(),
            billing_address: order.billing_address.clone(),
            delivery: order.delivery.clone(),
            payment: PaymentView {
                method: order.payment.method.as_str().to_owned(),
                state: "pending".to_owned(),
            },
            coupon_code: order.coupon_code.clone(),
            shipments: Vec::new(),
            invoice_number: None,
            created_at: at,
            updated_at: at,
            timeline: vec![first],
        }
    }
}

/// One row of `GET /v1/orders`.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct OrderSummary {
    pub id: Uuid,
    pub status: String,
    pub channel: String,
    pub external_reference: Option<String>,
    pub customer_email: String,
    pub shop: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What `GET /v1/orders` asks for; every filter is optional.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub channel: Option<String>,
    pub customer_email: Option<String>,
    pub placed_after: Option<DateTime<Utc>>,
    pub placed_before: Option<DateTime<Utc>>,
    pub reader: Reader,
    /// Continue after this order (from the previous page's cursor).
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// Where a page ended: the last order's `(created_at, id)`, the key the list is sorted by. Sent
/// to clients as an opaque hex string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        hex::encode(format!(
            "{}|{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    pub fn decode(raw: &str) -> Option<Cursor> {
        let text = String::from_utf8(hex::decode(raw).ok()?).ok()?;
        let (micros, id) = text.split_once('|')?;
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// One page of orders, newest first, and the cursor of the next page if there is one.
pub async fn list(
    pool: &PgPool,
    filter: &ListFilter,
) -> Result<(Vec<OrderSummary>, Option<Cursor>), sqlx::Error> {
    let (only_shop, shop) = match &filter.reader {
        Reader::Everyone => (false, None),
        Reader::Shop(name) => (true, name.clone()),
    };
    let mut orders: Vec<OrderSummary> = sqlx::query_as(
        "SELECT id, status, channel, external_reference, customer_email, shop, created_at \
         FROM orders WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::text IS NULL OR channel = $2) \
         AND ($3::text IS NULL OR customer_email = $3) \
         AND ($4::timestamptz IS NULL OR created_at >= $4) \
         AND ($5::timestamptz IS NULL OR created_at < $5) \
         AND (NOT $6 OR shop IS NOT DISTINCT FROM $7) \
         AND ($8::timestamptz IS NULL OR (created_at, id) < ($8, $9)) \
         ORDER BY created_at DESC, id DESC LIMIT $10",
    )
    .bind(filter.status.map(Status::as_str))
    .bind(&filter.channel)
    .bind(&filter.customer_email)
    .bind(filter.placed_after)
    .bind(filter.placed_before)
    .bind(only_shop)
    .bind(shop)
    .bind(filter.after.map(|c| c.created_at))
    .bind(filter.after.map(|c| c.id))
    .bind(filter.limit + 1)
    .fetch_all(pool)
    .await?;
    let more = orders.len() as i64 > filter.limit;
    orders.truncate(usize::try_from(filter.limit).unwrap_or(0));
    let next = more.then(|| orders.last()).flatten().map(|last| Cursor {
        created_at: last.created_at,
        id: last.id,
    });
    Ok((orders, next))
}

/// How many orders are in each status (every status listed, zero included), and in all.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    #[schema(value_type = BTreeMap<String, i64>)]
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
