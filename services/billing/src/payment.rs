//! Payments: one per order, and the state machine they move through.
//!
//! ```text
//! authorization_pending ─┬─> authorized ─┬─> captured            (delivered)
//!                        │               ├─> capture_pending ─┬─> captured
//!                        │               │                    └─> capture_failed
//!                        │               ├─> capture_failed
//!                        │               ├─> voided             (cancelled, delivery failed)
//!                        │               ├─> void_pending ───┬─> voided
//!                        │               │                   └─> void_failed
//!                        │               └─> void_failed
//!                        └─> failed
//! ```
//! A payment is created in `authorized`, `failed` or `authorization_pending` depending on the
//! provider's first answer. An order has one payment per attempt: after a decline, a new
//! payment method makes a new attempt (`attempt` 1, 2, …); the latest attempt is the order's
//! payment. Refunds do not change the status: `refunded` counts what went back. Every change goes through [`transition`], which checks the table
//! below and updates only if the row is still in the state it was read in.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use orderflow_messages::types::{Currency, Money, PaymentMethod};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    AuthorizationPending,
    Authorized,
    Failed,
    CapturePending,
    Captured,
    CaptureFailed,
    VoidPending,
    Voided,
    VoidFailed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 9] = [
        PaymentStatus::AuthorizationPending,
        PaymentStatus::Authorized,
        PaymentStatus::Failed,
        PaymentStatus::CapturePending,
        PaymentStatus::Captured,
        PaymentStatus::CaptureFailed,
        PaymentStatus::VoidPending,
        PaymentStatus::Voided,
        PaymentStatus::VoidFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::AuthorizationPending => "authorization_pending",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Failed => "failed",
            PaymentStatus::CapturePending => "capture_pending",
            PaymentStatus::Captured => "captured",
            PaymentStatus::CaptureFailed => "capture_failed",
            PaymentStatus::VoidPending => "void_pending",
            PaymentStatus::Voided => "voided",
            PaymentStatus::VoidFailed => "void_failed",
        }
    }

    pub fn parse(raw: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The allowed transitions, as data.
    pub fn can_become(self, next: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, next),
            (AuthorizationPending, Authorized | Failed)
                | (
                    Authorized,
                    CapturePending | Captured | CaptureFailed | VoidPending | Voided | VoidFailed
                )
                | (CapturePending, Captured | CaptureFailed)
                | (VoidPending, Voided | VoidFailed)
        )
    }

    /// Waiting for a provider's answer, which the re-check loop asks for again.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            PaymentStatus::AuthorizationPending
                | PaymentStatus::CapturePending
                | PaymentStatus::VoidPending
        )
    }

    /// Money is held or will be: an invoice for it will be paid through this payment.
    pub fn may_still_be_paid(self) -> bool {
        matches!(
            self,
            PaymentStatus::AuthorizationPending
                | PaymentStatus::Authorized
                | PaymentStatus::CapturePending
                | PaymentStatus::Captured
        )
    }
}

/// The statuses of pending operations, as SQL text values.
pub const PENDING_STATUSES: [&str; 3] =
    ["authorization_pending", "capture_pending", "void_pending"];

/// A payment as stored.
#[derive(Debug, Clone)]
pub struct Payment {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub method: PaymentMethod,
    pub amount: Money,
    pub status: PaymentStatus,
    /// The connector that handles it (`sim_card`, `none`, …).
    pub provider: String,
    pub authorization_reference: Option<String>,
    pub settlement_reference: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// The message that started the operation now pending, as causation of what follows.
    pub pending_cause: Option<Uuid>,
    /// 0 for the first payment of the order, then one more per change of payment method.
    pub attempt: i32,
    /// Minor units given back so far (refunds with credit notes).
    pub refunded: i64,
}

/// What a transition records besides the status.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub authorization_reference: Option<String>,
    pub settlement_reference: Option<String>,
    pub failure: Option<(String, String)>,
    pub pending_cause: Option<Uuid>,
}

pub fn method_from_str(raw: &str) -> anyhow::Result<PaymentMethod> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .with_context(|| format!("unknown payment method `{raw}` in the database"))
}

pub async fn insert(conn: &mut PgConnection, p: &Payment) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO payments (payment_id, order_id, method, amount, currency, status, provider, \
         authorization_reference, failure_code, failure_message, pending_cause, attempt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(p.payment_id)
    .bind(p.order_id)
    .bind(p.method.as_str())
    .bind(p.amount.amount)
    .bind(p.amount.currency.as_str())
    .bind(p.status.as_str())
    .bind(&p.provider)
    .bind(&p.authorization_reference)
    .bind(&p.failure_code)
    .bind(&p.failure_message)
    .bind(p.pending_cause)
    .bind(p.attempt)
    .execute(&mut *conn)
    .await
    .context("storing the payment")?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    payment_id: Uuid,
    order_id: Uuid,
    method: String,
    amount: i64,
    currency: String,
    status: String,
    provider: String,
    authorization_reference: Option<String>,
    settlement_reference: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    pending_cause: Option<Uuid>,
    attempt: i32,
    refunded: i64,
}

const COLUMNS: &str = "payment_id, order_id, method, amount, currency, status, provider, \
     authorization_reference, settlement_reference, failure_code, failure_message, pending_cause, \
     attempt, refunded";

impl TryFrom<Row> for Payment {
    type Error = anyhow::Error;

    fn try_from(r: Row) -> anyhow::Result<Payment> {
        Ok(Payment {
            payment_id: r.payment_id,
            order_id: r.order_id,
            method: method_from_str(&r.method)?,
            amount: Money::new(
                r.amount,
                Currency::parse(&r.currency).map_err(anyhow::Error::msg)?,
            ),
            status: PaymentStatus::parse(&r.status)
                .with_context(|| format!("unknown payment status `{}`", r.status))?,
            provider: r.provider,
            authorization_reference: r.authorization_reference,
            settlement_reference: r.settlement_reference,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            pending_cause: r.pending_cause,
            attempt: r.attempt,
            refunded: r.refunded,
        })
    }
}

/// The payment of `order_id` (its latest attempt), if one was made.
pub async fn of_order(conn: &mut PgConnection, order_id: Uuid) -> anyhow::Result<Option<Payment>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1 ORDER BY attempt DESC LIMIT 1"
    )))
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Payment::try_from).transpose()
}

/// Every attempt of `order_id`, or every payment with `reference` (a prepaid shop reference or
/// a provider's), oldest first.
pub async fn list(
    conn: &mut PgConnection,
    order_id: Option<Uuid>,
    reference: Option<&str>,
) -> anyhow::Result<Vec<(Payment, DateTime<Utc>, DateTime<Utc>)>> {
    let rows: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT payment_id, created_at, updated_at FROM payments \
         WHERE ($1::uuid IS NULL OR order_id = $1) \
         AND ($2::text IS NULL OR authorization_reference = $2 OR settlement_reference = $2) \
         ORDER BY created_at, attempt LIMIT 100",
    )
    .bind(order_id)
    .bind(reference)
    .fetch_all(&mut *conn)
    .await?;
    let mut payments = Vec::with_capacity(rows.len());
    for (payment_id, created_at, updated_at) in rows {
        let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE payment_id = $1"
        )))
        .bind(payment_id)
        .fetch_one(&mut *conn)
        .await?;
        payments.push((Payment::try_from(row)?, created_at, updated_at));
    }
    Ok(payments)
}

/// Adds `amount` to what was given back, never beyond what was taken.
pub async fn add_refunded(
    conn: &mut PgConnection,
    payment: &mut Payment,
    amount: i64,
) -> anyhow::Result<()> {
    let updated = sqlx::query(
        "UPDATE payments SET refunded = refunded + $2, updated_at = now() \
         WHERE payment_id = $1 AND refunded + $2 <= amount",
    )
    .bind(payment.payment_id)
    .bind(amount)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != 1 {
        bail!(
            "refunding {amount} would give back more than payment {} took",
            payment.payment_id
        );
    }
    payment.refunded += amount;
    Ok(())
}

/// Moves `payment` to `next`, if the table allows it and the row is still where it was read.
pub async fn transition(
    conn: &mut PgConnection,
    payment: &mut Payment,
    next: PaymentStatus,
    change: Change,
) -> anyhow::Result<()> {
    if !payment.status.can_become(next) {
        bail!(
            "payment {} cannot go from {} to {}",
            payment.payment_id,
            payment.status.as_str(),
            next.as_str()
        );
    }
    let (code, message) = change.failure.clone().unzip();
    let updated = sqlx::query(
        "UPDATE payments SET status = $3, \
         authorization_reference = COALESCE($4, authorization_reference), \
         settlement_reference = COALESCE($5, settlement_reference), \
         failure_code = COALESCE($6, failure_code), failure_message = COALESCE($7, failure_message), \
         pending_cause = $8, updated_at = now() \
         WHERE payment_id = $1 AND status = $2",
    )
    .bind(payment.payment_id)
    .bind(payment.status.as_str())
    .bind(next.as_str())
    .bind(&change.authorization_reference)
    .bind(&change.settlement_reference)
    .bind(&code)
    .bind(&message)
    .bind(change.pending_cause)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != 1 {
        // Someone else moved it: the caller's view is stale; handling again re-reads it.
        bail!(
            "payment {} was no longer {} when moving it to {}",
            payment.payment_id,
            payment.status.as_str(),
            next.as_str()
        );
    }
    payment.status = next;
    if change.authorization_reference.is_some() {
        payment.authorization_reference = change.authorization_reference;
    }
    if change.settlement_reference.is_some() {
        payment.settlement_reference = change.settlement_reference;
    }
    if let Some((code, message)) = change.failure {
        payment.failure_code = Some(code);
        payment.failure_message = Some(message);
    }
    payment.pending_cause = change.pending_cause;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    #[test]
    fn only_the_drawn_transitions_are_allowed() {
        let allowed = [
            (AuthorizationPending, Authorized),
            (AuthorizationPending, Failed),
            (Authorized, CapturePending),
            (Authorized, Captured),
            (Authorized, CaptureFailed),
            (Authorized, VoidPending),
            (Authorized, Voided),
            (Authorized, VoidFailed),
            (CapturePending, Captured),
            (CapturePending, CaptureFailed),
            (VoidPending, Voided),
            (VoidPending, VoidFailed),
        ];
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{} -> {}",
                    from.as_str(),
                    to.as_str()
                );
            }
        }
    }

    #[test]
    fn statuses_read_back_as_written_and_pending_ones_are_listed() {
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                status.is_pending(),
                PENDING_STATUSES.contains(&status.as_str())
            );
        }
    }
}
