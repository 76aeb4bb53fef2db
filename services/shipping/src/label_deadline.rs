//! Labels that do not come. Every shipment requested from a carrier has a due time for its
//! label (`shipping.label_timeout_ms`). A background worker — one per replica, all side by side —
//! claims overdue shipments with `FOR UPDATE SKIP LOCKED` (so no two replicas act on the same
//! one, and the worker never waits on a handler), and either sends the request again, unchanged
//! and with the same idempotency key (a carrier that did get it creates no second label), or,
//! after `shipping.label_attempts` requests, gives up: the order goes `on_hold` with the reason,
//! once. A label that still arrives later is recorded as usual and the order carries on.

use std::time::Duration;

use orderflow_messages::Envelope;
use orderflow_messages::order::{OnHold, Reason};
use orderflow_messages::shipment::Requested;
use orderflow_runtime::outbox;
use sqlx::PgPool;
use uuid::Uuid;

use crate::NAME;

/// Overdue shipments handled per transaction.
const BATCH: i64 = 100;

/// The worker's settings.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub timeout: Duration,
    pub attempts: u32,
    pub interval: Duration,
}

/// Runs the worker until the pool is closed (the service's shutdown closes it last).
pub fn spawn(pool: PgPool, deadline: Deadline) {
    tokio::spawn(async move {
        let closed = pool.close_event();
        tokio::pin!(closed);
        loop {
            loop {
                match sweep(&pool, deadline).await {
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        if !pool.is_closed() {
                            tracing::warn!(
                                error = format!("{e:#}"),
                                "label deadline sweep failed; retrying"
                            );
                        }
                        break;
                    }
                }
            }
            tokio::select! {
                _ = &mut closed => return,
                _ = tokio::time::sleep(deadline.interval) => {}
            }
        }
    });
}

#[derive(sqlx::FromRow)]
struct Overdue {
    shipment_id: Uuid,
    order_id: Uuid,
    carrier: String,
    label_attempts: i32,
    request: serde_json::Value,
    correlation_id: Option<Uuid>,
    request_message_id: Option<Uuid>,
}

/// One round: claims overdue shipments and re-requests or gives up on each. Returns how many
/// it handled.
pub async fn sweep(pool: &PgPool, deadline: Deadline) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let overdue: Vec<Overdue> = sqlx::query_as(
        "SELECT s.shipment_id, s.order_id, s.carrier, s.label_attempts, s.request, \
                s.correlation_id, s.request_message_id \
         FROM shipments s JOIN shipping_orders o ON o.order_id = s.order_id \
         WHERE s.status = 'requested' AND s.label_given_up_at IS NULL \
           AND s.label_due_at <= now() AND s.request IS NOT NULL AND o.status = 'shipping' \
         ORDER BY s.label_due_at LIMIT $1 \
         FOR UPDATE OF s, o SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let max_attempts = i32::try_from(deadline.attempts).unwrap_or(i32::MAX);
    for shipment in &overdue {
        let correlation_id = shipment.correlation_id.unwrap_or(shipment.order_id);
        if shipment.label_attempts < max_attempts {
            let request: Requested = serde_json::from_value(shipment.request.clone())?;
            let mut envelope = Envelope::new(NAME, shipment.order_id, request);
            envelope.correlation_id = correlation_id;
            envelope.causation_id = shipment.request_message_id;
            outbox::enqueue(&mut tx, &envelope, Some(&shipment.carrier)).await?;
            sqlx::query(
                "UPDATE shipments SET label_attempts = label_attempts + 1, \
                   label_due_at = now() + make_interval(secs => $2), updated_at = now() \
                 WHERE shipment_id = $1",
            )
            .bind(shipment.shipment_id)
            .bind(deadline.timeout.as_secs_f64())
            .execute(&mut *tx)
            .await?;
            tracing::warn!(shipment_id = %shipment.shipment_id, carrier = %shipment.carrier,
                attempt = shipment.label_attempts + 1, "no label in time; shipment requested again");
            continue;
        }
        sqlx::query(
            "UPDATE shipments SET label_given_up_at = now(), updated_at = now() WHERE shipment_id = $1",
        )
        .bind(shipment.shipment_id)
        .execute(&mut *tx)
        .await?;
        let why = format!(
            "carrier `{}` created no label for shipment {} after {} requests, {:?} apart; check the carrier's adapter, then cancel the order or wait for the label",
            shipment.carrier, shipment.shipment_id, shipment.label_attempts, deadline.timeout
        );
        tracing::warn!(order_id = %shipment.order_id, reason = %why, "order on hold: no label");
        let first = sqlx::query(
            "UPDATE shipping_orders SET label_hold_published_at = now(), hold_reason = $2, \
               updated_at = now() WHERE order_id = $1 AND label_hold_published_at IS NULL",
        )
        .bind(shipment.order_id)
        .bind(&why)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if first {
            let held = OnHold {
                stage: NAME.to_owned(),
                reason: Reason {
                    code: "carrier_no_label".into(),
                    line_no: None,
                    field: None,
                    message: why,
                },
            };
            let mut envelope = Envelope::new(NAME, shipment.order_id, held);
            envelope.correlation_id = correlation_id;
            outbox::enqueue(&mut tx, &envelope, None).await?;
        }
    }
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok(overdue.len())
}
