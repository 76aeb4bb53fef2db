//! Following the order's journey: every event about an order that reaches `order-intake.events`
//! becomes a timeline entry, and moves the order's status when [`lifecycle`](crate::lifecycle)
//! allows it. `order.paid` completes the order (see [`confirmation`](crate::confirmation)).

use anyhow::anyhow;
use orderflow_messages::order;
use orderflow_runtime::{HandleError, Handler, Incoming};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::lifecycle::{self, Stage, Status};
use crate::timeline::{self, Entry};
use crate::{confirmation, notification, stage_facts};

/// The handler of `order-intake.events`.
#[derive(Debug, Clone)]
pub struct Journey {
    /// Signs the customer's confirmation.
    pub shop_name: String,
}

impl Handler for Journey {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        let Some(detail) = timeline::describe(msg)? else {
            return Ok(());
        };
        let envelope = &msg.envelope;
        let order_id = envelope.order_id;
        // Intake announces an order only after committing it, so every event names a known one;
        // anything else is a message for another deployment or a broken producer.
        let stage = lock(conn, order_id).await?.ok_or_else(|| {
            HandleError::Permanent(format!(
                "unknown order {order_id} in {} {}",
                envelope.kind, envelope.message_id
            ))
        })?;
        // The order's own messages (`order.placed`, `order.completed`) were recorded when they
        // were written; other duplicates are already stopped by the inbox.
        if timeline::contains(conn, envelope.message_id).await? {
            return Ok(());
        }
        let now = match lifecycle::target_of(&envelope.kind).and_then(|t| stage.advance(t)) {
            Some(next) => {
                move_to(conn, order_id, stage, next).await?;
                tracing::debug!(%order_id, from = %stage.status, to = %next.status, "status moved");
                next
            }
            None => stage,
        };
        let requested_by = if msg.is::<order::CancelRequested>() {
            msg.decode::<order::CancelRequested>()?.requested_by
        } else {
            None
        };
        let entry = Entry::new(
            envelope.message_id,
            &envelope.kind,
            &envelope.producer,
            envelope.occurred_at,
            now.status,
            detail,
        )
        .caused_by(envelope.causation_id)
        .requested_by(requested_by);
        timeline::append(conn, order_id, &entry).await?;
        stage_facts::record(conn, order_id, msg).await?;
        if now.status != stage.status {
            notification::status_changed(conn, order_id, now.status, envelope.message_id).await?;
        }
        if now.status == Status::Paid && msg.is::<order::Paid>() {
            let paid: order::Paid = msg.decode()?;
            confirmation::complete(conn, envelope, &paid, now, &self.shop_name).await?;
        }
        Ok(())
    }
}

/// The order's stage, locked until the transaction ends so that replicas handling events of
/// the same order take turns.
async fn lock(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<Stage>, HandleError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT status, progress FROM orders WHERE id = $1 FOR UPDATE")
            .bind(order_id)
            .fetch_optional(conn)
            .await?;
    let Some((status, progress)) = row else {
        return Ok(None);
    };
    match (Status::parse(&status), Status::parse(&progress)) {
        (Some(status), Some(progress)) => Ok(Some(Stage { status, progress })),
        _ => Err(HandleError::Permanent(format!(
            "order {order_id} has an unknown status `{status}`/`{progress}`"
        ))),
    }
}

/// Moves the order from `from` to `to`, only if it is still in `from`.
pub async fn move_to(
    conn: &mut PgConnection,
    order_id: Uuid,
    from: Stage,
    to: Stage,
) -> Result<(), HandleError> {
    let moved = sqlx::query(
        "UPDATE orders SET status = $2, progress = $3, updated_at = now() \
         WHERE id = $1 AND status = $4 AND progress = $5",
    )
    .bind(order_id)
    .bind(to.status.as_str())
    .bind(to.progress.as_str())
    .bind(from.status.as_str())
    .bind(from.progress.as_str())
    .execute(conn)
    .await?
    .rows_affected();
    if moved == 1 {
        Ok(())
    } else {
        Err(HandleError::Transient(anyhow!(
            "order {order_id} left {} before it could move to {}; retrying",
            from.status,
            to.status
        )))
    }
}
