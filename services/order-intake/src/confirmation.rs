//! The customer's confirmation: once an order is paid, intake writes the confirmation to the
//! `notifications` table (recording it is sending it; a mailer would deliver from there), marks
//! the order `completed` and announces `order.completed`, all in the handler's transaction.
//!
//! The unique `(order_id, kind)` of `notifications` makes this happen once per order, even if
//! billing reports the payment twice under different message ids.

use std::fmt::Write as _;

use orderflow_messages::order::{Completed, Paid};
use orderflow_messages::types::{Currency, EmailAddress, Money};
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::{HandleError, outbox};
use serde_json::Value;
use sqlx::PgConnection;

use crate::NAME;
use crate::journey::record;
use crate::lifecycle::{Stage, Status};
use crate::stage_facts::Facts;
use crate::timeline::{self, Entry};

/// The `kind` of the confirmation in `notifications`.
pub const ORDER_CONFIRMATION: &str = "order_confirmation";

/// Confirms the paid order to its customer and completes it. `stage` is the order's stage
/// (`paid`); `cause` is the `order.paid` message.
pub async fn complete(
    conn: &mut PgConnection,
    cause: &Envelope<Value>,
    paid: &Paid,
    stage: Stage,
    shop_name: &str,
) -> Result<(), HandleError> {
    let order_id = cause.order_id;
    let Some(done) = stage.advance(Status::Completed) else {
        return Ok(());
    };
    // The customer and the lines in one round trip.
    let (email, name, currency, skus, quantities, unit_prices): (
        String,
        String,
        String,
        Vec<String>,
        Vec<i32>,
        Vec<i64>,
    ) = sqlx::query_as(
        "SELECT o.customer_email, o.customer_name, o.currency, \
         array_agg(l.sku ORDER BY l.line_no), array_agg(l.quantity ORDER BY l.line_no), \
         array_agg(l.unit_price ORDER BY l.line_no) \
         FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.id = $1 GROUP BY o.id",
    )
    .bind(order_id)
    .fetch_one(&mut *conn)
    .await?;
    let lines = skus.into_iter().zip(quantities).zip(unit_prices);
    let recipient = EmailAddress::parse(&email)
        .map_err(|e| HandleError::Permanent(format!("order {order_id}: stored e-mail: {e}")))?;
    let currency = Currency::parse(&currency)
        .map_err(|e| HandleError::Permanent(format!("order {order_id}: stored currency: {e}")))?;

    let subject = format!("{shop_name}: your order {order_id} is complete");
    let mut body = format!(
        "Hello {name},\n\nthank you for your order {order_id}. We received your payment of {} \
         (invoice {}).\n\n",
        paid.amount, paid.invoice_number
    );
    for ((sku, quantity), unit_price) in lines {
        let total = i64::from(quantity).saturating_mul(unit_price);
        let _ = writeln!(
            body,
            "  {quantity} x {sku}  {}",
            Money::new(total, currency.clone())
        );
    }
    let _ = write!(body, "\nKind regards,\n{shop_name}\n");

    let sent = sqlx::query(
        "INSERT INTO notifications (order_id, recipient, kind, subject, body) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, kind) DO NOTHING",
    )
    .bind(order_id)
    .bind(recipient.as_str())
    .bind(ORDER_CONFIRMATION)
    .bind(&subject)
    .bind(&body)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !sent {
        return Ok(());
    }

    let completed = Envelope::caused_by(
        NAME,
        cause,
        Completed {
            confirmation_sent_to: recipient,
        },
    );
    outbox::enqueue(conn, &completed, None).await?;
    let entry = Entry::new(
        completed.message_id,
        Completed::TYPE,
        NAME,
        completed.occurred_at,
        done.status,
        timeline::completed(&completed.payload),
    )
    .caused_by(Some(cause.message_id));
    record(conn, order_id, stage, done, &entry, Facts::default()).await
}
