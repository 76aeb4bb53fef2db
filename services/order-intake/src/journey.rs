//! Following the order's journey: every event about an order that reaches `order-intake.events`
//! becomes a timeline entry, and moves the order's status when [`lifecycle`](crate::lifecycle)
//! allows it. `order.paid` completes the order (see [`confirmation`](crate::confirmation)).

use anyhow::anyhow;
use orderflow_messages::order;
use orderflow_runtime::{HandleError, Handler, Incoming};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::lifecycle::{self, Stage, Status};
use crate::stage_facts::{self, Facts};
use crate::timeline::{self, Entry};
use crate::{confirmation, notification};

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
        let locked = lock(conn, order_id, envelope.message_id)
            .await?
            .ok_or_else(|| {
                HandleError::Permanent(format!(
                    "unknown order {order_id} in {} {}",
                    envelope.kind, envelope.message_id
                ))
            })?;
        // The order's own messages (`order.placed`, `order.completed`) were recorded when they
        // were written; other duplicates are already stopped by the inbox.
        if locked.recorded {
            return Ok(());
        }
        let stage = locked.stage;
        let now = lifecycle::target_of(&envelope.kind)
            .and_then(|t| stage.advance(t))
            .unwrap_or(stage);
        let requested_by = if msg.is::<order::CancelRequested>() {
            msg.decode::<order::CancelRequested>()?.requested_by
        } else {
            None
        };
        let invoiced = if msg.is::<order::Invoiced>() {
            Some(msg.decode::<order::Invoiced>()?)
        } else {
            None
        };
        if msg.is::<order::Shipped>() {
            stage_facts::record_shipments(conn, order_id, &msg.decode()?).await?;
        }
        let facts = Facts {
            payment_state: stage_facts::payment_state(&envelope.kind, &locked.payment_state),
            invoice_number: invoiced.as_ref().map(|i| i.invoice_number.as_str()),
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
        record(conn, order_id, stage, now, &entry, facts).await?;
        if now != stage {
            tracing::debug!(%order_id, from = %stage.status, to = %now.status, "status moved");
        }
        if now.status == Status::Paid && msg.is::<order::Paid>() {
            let paid: order::Paid = msg.decode()?;
            confirmation::complete(conn, envelope, &paid, now, &self.shop_name).await?;
        }
        Ok(())
    }
}

/// The order as its event handler finds it.
struct Locked {
    stage: Stage,
    payment_state: String,
    /// Whether the message is already in the order's timeline.
    recorded: bool,
}

/// The order's stage, locked until the transaction ends so that replicas handling events of
/// the same order take turns; and whether `message_id` is already recorded.
async fn lock(
    conn: &mut PgConnection,
    order_id: Uuid,
    message_id: Uuid,
) -> Result<Option<Locked>, HandleError> {
    let row: Option<(String, String, String, bool)> = sqlx::query_as(
        "SELECT status, progress, payment_state, \
         EXISTS (SELECT 1 FROM timeline WHERE message_id = $2) FROM orders WHERE id = $1 \
         FOR UPDATE",
    )
    .bind(order_id)
    .bind(message_id)
    .fetch_optional(conn)
    .await?;
    let Some((status, progress, payment_state, recorded)) = row else {
        return Ok(None);
    };
    match (Status::parse(&status), Status::parse(&progress)) {
        (Some(status), Some(progress)) => Ok(Some(Locked {
            stage: Stage { status, progress },
            payment_state,
            recorded,
        })),
        _ => Err(HandleError::Permanent(format!(
            "order {order_id} has an unknown status `{status}`/`{progress}`"
        ))),
    }
}

/// Records one step of the order's journey in one statement: the move from `from` to `to`
/// (only if it is still in `from`), the `facts`, the timeline `entry`, and, when the status
/// changed, its announcement to the log sink and to every webhook of the order's shop (see
/// [`notification`]). The caller holds the order's lock (see `lock`).
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    from: Stage,
    to: Stage,
    entry: &Entry,
    facts: Facts<'_>,
) -> Result<(), HandleError> {
    let moving = from != to;
    let writes_order = moving || facts.any();
    let announcement =
        moving.then(|| notification::status_changed(order_id, to.status, entry.message_id));
    let moved: i64 = sqlx::query_scalar(
        "WITH moved AS ( \
             UPDATE orders SET status = $2, progress = $3, \
             payment_state = COALESCE($6, payment_state), \
             invoice_number = COALESCE($7, invoice_number), updated_at = now() \
             WHERE id = $1 AND $8 AND status = $4 AND progress = $5 RETURNING shop), \
         entry AS ( \
             INSERT INTO timeline (order_id, message_id, kind, status, producer, detail, \
             occurred_at, causation_id, requested_by) \
             VALUES ($1, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (message_id) DO NOTHING), \
         announced AS ( \
             INSERT INTO deliveries (order_id, sink, webhook_id, url, message_id, body) \
             SELECT $1, 'log', NULL, NULL, $9, $17 WHERE $17::jsonb IS NOT NULL \
             UNION ALL \
             SELECT $1, 'webhook', w.id, w.url, $9, $17 FROM moved m \
             JOIN webhooks w ON w.shop IS NOT DISTINCT FROM m.shop \
             WHERE $17::jsonb IS NOT NULL \
             ON CONFLICT DO NOTHING) \
         SELECT count(*) FROM moved",
    )
    .bind(order_id)
    .bind(to.status.as_str())
    .bind(to.progress.as_str())
    .bind(from.status.as_str())
    .bind(from.progress.as_str())
    .bind(facts.payment_state)
    .bind(facts.invoice_number)
    .bind(writes_order)
    .bind(entry.message_id)
    .bind(&entry.kind)
    .bind(&entry.status)
    .bind(&entry.producer)
    .bind(&entry.detail)
    .bind(entry.at)
    .bind(entry.causation_id)
    .bind(&entry.requested_by)
    .bind(&announcement)
    .fetch_one(conn)
    .await?;
    if !writes_order || moved == 1 {
        Ok(())
    } else {
        Err(HandleError::Transient(anyhow!(
            "order {order_id} left {} before it could move to {}; retrying",
            from.status,
            to.status
        )))
    }
}
