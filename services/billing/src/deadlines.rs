//! Deadlines billing watches, every `billing.deadline_check_secs`:
//!
//! - an invoice paid by transfer still not fully paid after its due date gets a reminder (a
//!   `payment_reminders` row and a log line), then one more every
//!   `billing.reminder_interval_days`, up to `billing.max_reminders`;
//! - an order whose payment was declined and not given a new method within
//!   `billing.hold_timeout_secs` is asked to be cancelled: `order.cancel_requested
//!   {requested_by: "billing"}` (shipping decides; billing voids nothing until
//!   `order.cancelled`).
//!
//! Replicas can run it side by side: a reminder level is a primary key, and the cancellation
//! request is guarded by a column set once under the order's lock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use orderflow_messages::order::CancelRequested;
use sqlx::PgPool;
use uuid::Uuid;

use crate::orders::{self, Milestone};
use crate::payment::{self, PaymentStatus};
use crate::settlement::{Billing, Cause};

/// Most invoices or holds looked at per round.
const ROUND: i64 = 100;

/// Runs until the service's pool is closed (the service stopped).
pub fn spawn(pool: PgPool, billing: Arc<Billing>) {
    tokio::spawn(async move {
        let every = billing.rules().deadline_check;
        loop {
            tokio::time::sleep(every).await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = remind(&pool, &billing).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "looking for overdue invoices failed; will retry"
                );
            }
            if let Err(e) = expire_holds(&pool, &billing).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "looking for expired payment holds failed; will retry"
                );
            }
        }
    });
}

async fn remind(pool: &PgPool, billing: &Billing) -> anyhow::Result<()> {
    let rules = billing.rules();
    let overdue: Vec<(String, i64, String, DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT i.invoice_number, i.gross, i.currency, i.due_at, \
         COALESCE((SELECT SUM(r.amount) FROM received_payments r \
                   WHERE r.invoice_number = i.invoice_number), 0)::bigint AS received \
         FROM invoices i \
         WHERE i.kind = 'invoice' AND i.due_at < now() \
         AND (SELECT COUNT(*) FROM payment_reminders m WHERE m.invoice_number = i.invoice_number) < $1 \
         AND i.gross > COALESCE((SELECT SUM(r.amount) FROM received_payments r \
                   WHERE r.invoice_number = i.invoice_number), 0) \
         ORDER BY i.due_at LIMIT $2",
    )
    .bind(i64::from(rules.max_reminders))
    .bind(ROUND)
    .fetch_all(pool)
    .await?;
    let interval = i64::from(rules.reminder_interval_days);
    for (number, gross, currency, due_at, received) in overdue {
        let days_late = (Utc::now() - due_at).num_days();
        let level = (1 + days_late / interval).min(i64::from(rules.max_reminders));
        let level = i32::try_from(level)?;
        let inserted = sqlx::query(
            "INSERT INTO payment_reminders (invoice_number, level, outstanding, currency) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (invoice_number, level) DO NOTHING",
        )
        .bind(&number)
        .bind(level)
        .bind(gross - received)
        .bind(&currency)
        .execute(pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            tracing::warn!(invoice = %number, level, outstanding = gross - received, %currency, "invoice overdue: payment reminder");
        }
    }
    Ok(())
}

async fn expire_holds(pool: &PgPool, billing: &Billing) -> anyhow::Result<()> {
    let timeout = chrono::Duration::from_std(billing.rules().hold_timeout)?;
    let held: Vec<Uuid> = sqlx::query_scalar(
        "SELECT o.order_id FROM billing_orders o \
         JOIN LATERAL (SELECT status, updated_at FROM payments p WHERE p.order_id = o.order_id \
                       ORDER BY attempt DESC LIMIT 1) latest ON true \
         WHERE o.hold_cancel_requested_at IS NULL AND latest.status = 'failed' \
         AND latest.updated_at < now() - $1::interval LIMIT $2",
    )
    .bind(format!("{} seconds", timeout.num_seconds()))
    .bind(ROUND)
    .fetch_all(pool)
    .await?;
    for order_id in held {
        let mut tx = pool.begin().await?;
        orders::lock(&mut tx, order_id).await?;
        let Some(order) = orders::load(&mut tx, order_id).await? else {
            continue;
        };
        let latest = payment::of_order(&mut tx, order_id).await?;
        let milestones = orders::milestones(&mut tx, order_id).await?;
        let still_held = latest.is_some_and(|p| {
            p.status == PaymentStatus::Failed && p.attempt >= order.payment_revision
        }) && !order.hold_cancel_requested
            && !milestones.contains_key(&Milestone::Cancelled);
        if !still_held {
            continue;
        }
        sqlx::query(
            "UPDATE billing_orders SET hold_cancel_requested_at = now(), updated_at = now() \
             WHERE order_id = $1 AND hold_cancel_requested_at IS NULL",
        )
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        let cause = Cause {
            order_id,
            correlation_id: order.correlation_id,
            message_id: order.verified_message_id,
        };
        let request = CancelRequested {
            reason: format!(
                "payment declined and not resolved within {} s",
                timeout.num_seconds()
            ),
            requested_by: Some(crate::NAME.to_owned()),
        };
        cause.publish(&mut tx, request).await?;
        orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
        tracing::info!(%order_id, "payment hold expired; cancellation requested");
    }
    Ok(())
}
