//! The order's timeline: one entry per event of its journey, with a line of text that says what
//! happened in words a support agent can read out to the customer.

use chrono::{DateTime, Utc};
use orderflow_messages::types::Money;
use orderflow_messages::{Event, order, payment, stock};
use orderflow_runtime::{HandleError, Incoming};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::lifecycle::Status;

/// One entry as `GET /v1/orders/{id}` and its timeline show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Entry {
    #[sqlx(rename = "occurred_at")]
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    #[sqlx(rename = "kind")]
    pub kind: String,
    pub status: String,
    pub producer: String,
    pub message_id: Uuid,
    pub detail: String,
    /// The message that led to this one, if any.
    pub causation_id: Option<Uuid>,
    /// Its type, when that message is in this timeline too.
    #[sqlx(default)]
    pub cause: Option<String>,
    /// Who asked, for what a person or a key started (placing, cancelling, …).
    pub requested_by: Option<String>,
}

impl Entry {
    pub fn new(
        message_id: Uuid,
        kind: &str,
        producer: &str,
        at: DateTime<Utc>,
        status: Status,
        detail: String,
    ) -> Entry {
        Entry {
            at,
            kind: kind.to_owned(),
            status: status.as_str().to_owned(),
            producer: producer.to_owned(),
            message_id,
            detail,
            causation_id: None,
            cause: None,
            requested_by: None,
        }
    }

    pub fn caused_by(mut self, causation_id: Option<Uuid>) -> Entry {
        self.causation_id = causation_id;
        self
    }

    pub fn requested_by(mut self, who: Option<String>) -> Entry {
        self.requested_by = who;
        self
    }
}

/// Appends `entry`; `false` when its message is already recorded.
pub async fn append(
    conn: &mut PgConnection,
    order_id: Uuid,
    entry: &Entry,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO timeline (order_id, message_id, kind, status, producer, detail, occurred_at, \
         causation_id, requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(entry.message_id)
    .bind(&entry.kind)
    .bind(&entry.status)
    .bind(&entry.producer)
    .bind(&entry.detail)
    .bind(entry.at)
    .bind(entry.causation_id)
    .bind(&entry.requested_by)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether the message is already in some order's timeline.
pub async fn contains(conn: &mut PgConnection, message_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM timeline WHERE message_id = $1)")
        .bind(message_id)
        .fetch_one(conn)
        .await
}

/// The whole timeline of an order, oldest first.
pub async fn of_order(conn: &mut PgConnection, order_id: Uuid) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.occurred_at, t.kind, t.status, t.producer, t.message_id, t.detail, \
         t.causation_id, c.kind AS cause, t.requested_by FROM timeline t \
         LEFT JOIN timeline c ON c.message_id = t.causation_id \
         WHERE t.order_id = $1 ORDER BY t.occurred_at, t.id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// What the event says, in a line; `None` for a type the timeline does not follow. A payload
/// that does not match its type is a permanent error.
pub fn describe(msg: &Incoming) -> Result<Option<String>, HandleError> {
    let kind = msg.envelope.kind.as_str();
    let text = match kind {
        order::Placed::TYPE => placed(&msg.decode()?),
        order::Verified::TYPE => {
            let v: order::Verified = msg.decode()?;
            let mut warehouses: Vec<&str> = v
                .reservations
                .iter()
                .map(|r| r.warehouse.as_str())
                .collect();
            warehouses.sort_unstable();
            warehouses.dedup();
            format!(
                "verified: {} line(s), subtotal {}, stock reserved in {}",
                v.lines.len(),
                v.subtotal,
                list(&warehouses)
            )
        }
        order::Rejected::TYPE => {
            let r: order::Rejected = msg.decode()?;
            let reasons: Vec<String> = r.reasons.iter().map(reason).collect();
            format!("rejected: {}", reasons.join("; "))
        }
        order::Backordered::TYPE => {
            let b: order::Backordered = msg.decode()?;
            let short: Vec<String> = b
                .lines
                .iter()
                .map(|l| format!("line {} {} short by {}", l.line_no, l.sku, l.missing))
                .collect();
            format!("waiting for stock: {}", short.join(", "))
        }
        // A manual stock adjustment reports low stock without an order (nil id): no timeline.
        stock::Low::TYPE if msg.envelope.order_id.is_nil() => return Ok(None),
        stock::Low::TYPE => {
            let l: stock::Low = msg.decode()?;
            format!(
                "this order brought {} in {} to its reorder point: {} available \
                 (reorder point {}, suggested reorder {})",
                l.sku.as_str(),
                l.warehouse,
                l.available,
                l.reorder_point,
                l.reorder_quantity
            )
        }
        stock::Released::TYPE => {
            let r: stock::Released = msg.decode()?;
            let units: u32 = r.reservations.iter().map(|r| r.quantity).sum();
            format!("{units} reserved unit(s) released: {}", r.reason)
        }
        order::Packed::TYPE => {
            let p: order::Packed = msg.decode()?;
            let parcels: usize = p.groups.iter().map(|g| g.parcels.len()).sum();
            let warehouses: Vec<&str> = p.groups.iter().map(|g| g.warehouse.as_str()).collect();
            format!("packed: {parcels} parcel(s) from {}", list(&warehouses))
        }
        order::FulfilmentFailed::TYPE => {
            let f: order::FulfilmentFailed = msg.decode()?;
            let short: Vec<String> = f
                .missing
                .iter()
                .map(|l| format!("{} short by {}", l.sku, l.missing))
                .collect();
            format!("picking in {} failed: {}", f.warehouse, short.join(", "))
        }
        order::Shipped::TYPE => {
            let s: order::Shipped = msg.decode()?;
            let tracking: Vec<String> = s
                .shipments
                .iter()
                .map(|t| format!("{} {}", t.carrier, t.tracking_number))
                .collect();
            format!(
                "shipped ({}): tracking {}",
                s.shipping_method,
                tracking.join(", ")
            )
        }
        order::Delivered::TYPE => {
            let d: order::Delivered = msg.decode()?;
            format!("delivered at {}", d.delivered_at.to_rfc3339())
        }
        order::DeliveryFailed::TYPE => {
            let d: order::DeliveryFailed = msg.decode()?;
            format!("delivery failed ({}): {}", d.status, d.reason)
        }
        payment::Authorized::TYPE => {
            let a: payment::Authorized = msg.decode()?;
            format!(
                "payment of {} authorized ({}, reference {})",
                a.amount,
                a.method.as_str(),
                a.provider_reference
            )
        }
        payment::Failed::TYPE => {
            let f: payment::Failed = msg.decode()?;
            format!(
                "payment of {} failed ({}, {}): {}",
                f.amount,
                f.method.as_str(),
                f.code,
                f.message
            )
        }
        payment::Refunded::TYPE => {
            let r: payment::Refunded = msg.decode()?;
            let note = r
                .credit_note_number
                .map(|n| format!(" (credit note {n})"))
                .unwrap_or_default();
            format!("refunded {}{note}: {}", r.amount, r.reason)
        }
        order::Invoiced::TYPE => {
            let i: order::Invoiced = msg.decode()?;
            format!(
                "invoice {}: {} (net {}, tax {})",
                i.invoice_number, i.gross, i.net, i.tax
            )
        }
        order::Paid::TYPE => {
            let p: order::Paid = msg.decode()?;
            format!("paid {} against invoice {}", p.amount, p.invoice_number)
        }
        order::Completed::TYPE => completed(&msg.decode()?),
        order::CancelRequested::TYPE => {
            let c: order::CancelRequested = msg.decode()?;
            let by = c
                .requested_by
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            format!("cancellation requested{by}: {}", c.reason)
        }
        order::Cancelled::TYPE => {
            let c: order::Cancelled = msg.decode()?;
            format!("cancelled: {}", c.reason)
        }
        order::CancelRefused::TYPE => {
            let r: order::CancelRefused = msg.decode()?;
            format!("cancellation refused: {}", r.reason)
        }
        order::Unpacked::TYPE => {
            let u: order::Unpacked = msg.decode()?;
            let parcels: usize = u.groups.iter().map(|g| g.parcels.len()).sum();
            format!(
                "{parcels} parcel(s) unpacked, goods back on the shelf: {}",
                u.reason
            )
        }
        order::Reallocated::TYPE => {
            let r: order::Reallocated = msg.decode()?;
            let units: u32 = r.reservations.iter().map(|r| r.quantity).sum();
            format!(
                "{units} unit(s) missing in {} reserved elsewhere",
                r.warehouse
            )
        }
        order::PaymentMethodChanged::TYPE => {
            let c: order::PaymentMethodChanged = msg.decode()?;
            format!("payment method changed to {}", c.payment.method.as_str())
        }
        payment::Voided::TYPE => {
            let v: payment::Voided = msg.decode()?;
            format!("authorisation of {} voided: {}", v.amount, v.reason)
        }
        order::OnHold::TYPE => {
            let h: order::OnHold = msg.decode()?;
            format!("on hold at {}: {}", h.stage, reason(&h.reason))
        }
        order::Stalled::TYPE => {
            let s: order::Stalled = msg.decode()?;
            format!(
                "stalled in {} since {} (limit {} s)",
                s.status,
                s.since.to_rfc3339(),
                s.limit_seconds
            )
        }
        order::FeedbackReceived::TYPE => feedback(&msg.decode()?),
        _ => return Ok(None),
    };
    Ok(Some(text))
}

/// The line for the order's first entry.
pub fn placed(p: &order::Placed) -> String {
    let subtotal: i64 = p
        .lines
        .iter()
        .map(|l| i64::from(l.quantity).saturating_mul(l.unit_price))
        .fold(0, i64::saturating_add);
    format!(
        "placed via {}: {} line(s), {}",
        p.channel.as_str(),
        p.lines.len(),
        Money::new(subtotal, p.currency.clone())
    )
}

pub fn feedback(f: &order::FeedbackReceived) -> String {
    let comment = f
        .comment
        .as_ref()
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    format!("rated {}/5{comment}", f.rating)
}

pub fn completed(c: &order::Completed) -> String {
    format!("confirmation sent to {}", c.confirmation_sent_to)
}

fn reason(r: &order::Reason) -> String {
    match r.line_no {
        Some(line) => format!("{} (line {line}): {}", r.code, r.message),
        None => format!("{}: {}", r.code, r.message),
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}
