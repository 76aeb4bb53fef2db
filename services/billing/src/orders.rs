//! Orders as billing knows them: what `order.verified` said (customer, addresses, payment,
//! shipping method) with the priced draft, and the milestones of the order's journey that
//! billing reacts to (delivered, cancel requested, delivery failed, shipped).
//!
//! Milestones are stored whether or not the order itself is known yet: messages between
//! services can arrive in any order, and an `order.delivered` seen before `order.verified` is
//! kept and acted on when the order arrives.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::Context;
use chrono::{DateTime, Utc};
use orderflow_messages::order::Verified;
use orderflow_messages::types::{Currency, PaymentMethod};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::connector::ProviderToken;
use crate::draft::{Draft, DraftLine, LineKind};
use crate::payment::method_from_str;
use crate::pricing::Amounts;

/// Key space of billing's advisory locks (any constant; it keeps ours apart from others').
const LOCK_SPACE: i32 = 0x0B11;

/// Serialises everything billing does for one order until the transaction ends, so messages
/// of the same order handled at once (by two replicas, or the re-check loop) see each other's
/// writes instead of racing past them.
pub async fn lock(conn: &mut PgConnection, order_id: Uuid) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_SPACE)
        .bind(order_id.to_string())
        .execute(&mut *conn)
        .await
        .context("locking the order")?;
    Ok(())
}

/// An order as stored from `order.verified`.
#[derive(Debug, Clone)]
pub struct BillingOrder {
    pub order_id: Uuid,
    pub correlation_id: Uuid,
    pub verified_message_id: Uuid,
    pub currency: Currency,
    pub payment_method: PaymentMethod,
    /// The card's provider token, kept to repeat an authorisation of unknown outcome.
    pub payment_token: Option<ProviderToken>,
    pub customer_email: String,
    pub customer_name: String,
    pub billing_address: serde_json::Value,
    pub total: Amounts,
    /// Why the order's coupon was not applied, if it was not.
    pub coupon_refused: Option<String>,
    /// The payment attempt due: raised by each change of payment method.
    pub payment_revision: i32,
    /// Whether billing already asked to cancel the order for an unresolved hold.
    pub hold_cancel_requested: bool,
}

/// Stores `order` with its `draft`. Returns false if it was already stored.
pub async fn insert(
    conn: &mut PgConnection,
    message_id: Uuid,
    correlation_id: Uuid,
    order_id: Uuid,
    order: &Verified,
    draft: &Draft,
) -> anyhow::Result<bool> {
    let billing_address = order
        .billing_address
        .as_ref()
        .unwrap_or(&order.shipping_address);
    let inserted = sqlx::query(
        "INSERT INTO billing_orders (order_id, correlation_id, verified_message_id, currency, \
         country, payment_method, payment_token, shipping_method, customer_email, customer_name, \
         billing_address, shipping_address, net, tax, gross, coupon_code, coupon_refused) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(correlation_id)
    .bind(message_id)
    .bind(order.currency.as_str())
    .bind(crate::draft::tax_country(order).as_str())
    .bind(order.payment.method.as_str())
    .bind(&order.payment.token)
    .bind(&order.delivery.shipping_method)
    .bind(order.customer.email.as_str())
    .bind(&order.customer.name)
    .bind(serde_json::to_value(billing_address)?)
    .bind(serde_json::to_value(&order.shipping_address)?)
    .bind(draft.total.net)
    .bind(draft.total.tax)
    .bind(draft.total.gross)
    .bind(&draft.coupon_code)
    .bind(draft.coupon_refused.as_ref().map(ToString::to_string))
    .execute(&mut *conn)
    .await
    .context("storing the order")?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(false);
    }
    for line in &draft.lines {
        sqlx::query(
            "INSERT INTO draft_lines (order_id, position, kind, sku, description, quantity, \
             unit_price, tax_class, tax_rate, net, tax, gross) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::numeric, $10, $11, $12)",
        )
        .bind(order_id)
        .bind(line.position)
        .bind(line.kind.as_str())
        .bind(&line.sku)
        .bind(&line.description)
        .bind(i64::from(line.quantity))
        .bind(line.unit_price)
        .bind(&line.tax_class)
        .bind(line.tax_rate.to_string())
        .bind(line.amounts.net)
        .bind(line.amounts.tax)
        .bind(line.amounts.gross)
        .execute(&mut *conn)
        .await
        .context("storing the draft")?;
    }
    Ok(true)
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    correlation_id: Uuid,
    verified_message_id: Uuid,
    currency: String,
    payment_method: String,
    payment_token: Option<String>,
    customer_email: String,
    customer_name: String,
    billing_address: serde_json::Value,
    net: i64,
    tax: i64,
    gross: i64,
    coupon_refused: Option<String>,
    payment_revision: i32,
    hold_cancel_requested: bool,
}

pub async fn load(conn: &mut PgConnection, order_id: Uuid) -> anyhow::Result<Option<BillingOrder>> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT order_id, correlation_id, verified_message_id, currency, payment_method, \
         payment_token, customer_email, customer_name, billing_address, net, tax, gross, \
         coupon_refused, payment_revision, \
         hold_cancel_requested_at IS NOT NULL AS hold_cancel_requested \
         FROM billing_orders WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(BillingOrder {
        order_id: r.order_id,
        correlation_id: r.correlation_id,
        verified_message_id: r.verified_message_id,
        currency: Currency::parse(&r.currency).map_err(anyhow::Error::msg)?,
        payment_method: method_from_str(&r.payment_method)?,
        payment_token: r.payment_token.map(ProviderToken::new),
        customer_email: r.customer_email,
        customer_name: r.customer_name,
        billing_address: r.billing_address,
        total: Amounts {
            net: r.net,
            tax: r.tax,
            gross: r.gross,
        },
        coupon_refused: r.coupon_refused,
        payment_revision: r.payment_revision,
        hold_cancel_requested: r.hold_cancel_requested,
    }))
}

/// Records the customer's new payment method: the next attempt is due. False if the order is
/// unknown.
pub async fn change_payment_method(
    conn: &mut PgConnection,
    order_id: Uuid,
    payment: &orderflow_messages::types::Payment,
) -> anyhow::Result<bool> {
    let updated = sqlx::query(
        "UPDATE billing_orders SET payment_method = $2, payment_token = $3, \
         payment_revision = payment_revision + 1, updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(payment.method.as_str())
    .bind(&payment.token)
    .execute(&mut *conn)
    .await
    .context("recording the new payment method")?
    .rows_affected();
    Ok(updated == 1)
}

#[derive(sqlx::FromRow)]
pub(crate) struct LineRow {
    pub position: i32,
    pub kind: String,
    pub sku: Option<String>,
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub tax_class: String,
    pub tax_rate: String,
    pub net: i64,
    pub tax: i64,
    pub gross: i64,
    pub corrects_position: Option<i32>,
}

impl TryFrom<LineRow> for DraftLine {
    type Error = anyhow::Error;

    fn try_from(r: LineRow) -> anyhow::Result<DraftLine> {
        Ok(DraftLine {
            position: r.position,
            kind: match r.kind.as_str() {
                "shipping" => LineKind::Shipping,
                "discount" => LineKind::Discount,
                _ => LineKind::Product,
            },
            sku: r.sku,
            description: r.description,
            quantity: u32::try_from(r.quantity).context("line quantity")?,
            unit_price: r.unit_price,
            tax_class: r.tax_class,
            tax_rate: Decimal::from_str(&r.tax_rate).context("line tax rate")?,
            amounts: Amounts {
                net: r.net,
                tax: r.tax,
                gross: r.gross,
            },
            corrects: r.corrects_position,
        })
    }
}

/// The draft's lines of `order_id`, in position order.
pub async fn draft_lines(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Vec<DraftLine>> {
    let rows: Vec<LineRow> = sqlx::query_as(
        "SELECT position, kind, sku, description, quantity, unit_price, tax_class, \
         tax_rate::text AS tax_rate, net, tax, gross, NULL::int AS corrects_position \
         FROM draft_lines \
         WHERE order_id = $1 ORDER BY position",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(DraftLine::try_from).collect()
}

/// A point of the order's journey that billing acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Milestone {
    Shipped,
    Delivered,
    CancelRequested,
    DeliveryFailed,
    /// Decided by shipping: compensate (void or refund).
    Cancelled,
}

impl Milestone {
    pub const ALL: [Milestone; 5] = [
        Milestone::Shipped,
        Milestone::Delivered,
        Milestone::CancelRequested,
        Milestone::DeliveryFailed,
        Milestone::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Shipped => "shipped",
            Milestone::Delivered => "delivered",
            Milestone::CancelRequested => "cancel_requested",
            Milestone::DeliveryFailed => "delivery_failed",
            Milestone::Cancelled => "cancelled",
        }
    }
}

/// When a milestone was reached, which message said so, and why (for cancellations, failures).
#[derive(Debug, Clone)]
pub struct Reached {
    pub message_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub detail: Option<String>,
}

/// Records that `order_id` reached `milestone`; the first message to say so is kept.
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    milestone: Milestone,
    reached: &Reached,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO milestones (order_id, milestone, message_id, occurred_at, detail) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, milestone) DO NOTHING",
    )
    .bind(order_id)
    .bind(milestone.as_str())
    .bind(reached.message_id)
    .bind(reached.occurred_at)
    .bind(&reached.detail)
    .execute(&mut *conn)
    .await
    .context("recording the milestone")?;
    Ok(())
}

/// Every milestone `order_id` has reached.
pub async fn milestones(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<HashMap<Milestone, Reached>> {
    let rows: Vec<(String, Uuid, DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "SELECT milestone, message_id, occurred_at, detail FROM milestones WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, message_id, occurred_at, detail)| {
            let milestone = Milestone::ALL.into_iter().find(|m| m.as_str() == name)?;
            Some((
                milestone,
                Reached {
                    message_id,
                    occurred_at,
                    detail,
                },
            ))
        })
        .collect())
}
