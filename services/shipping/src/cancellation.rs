//! The cancellation arbiter. Shipping owns the point of no return — the hand-over to a carrier —
//! so it decides every `order.cancel_requested`, whoever sent it:
//!
//! - nothing handed over yet (no shipment picked up, `order.shipped` not published): the order
//!   is remembered as cancelled (a later `order.packed` ships nothing), shipments still in the
//!   warehouse are cancelled with their carriers (`shipment.cancel_requested`) and
//!   `order.cancelled {reason}` tells every stage to compensate;
//! - otherwise `order.cancel_refused {reason}` names the shipment that is already on its way.
//!
//! The order's record is locked first, as in every handler, so a cancellation racing a packed
//! order or a carrier's pick-up scan is decided on one consistent state.

use orderflow_messages::Envelope;
use orderflow_messages::order::{CancelRefused, CancelRequested, Cancelled};
use orderflow_messages::shipment;
use orderflow_runtime::{HandleError, Incoming, outbox};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::NAME;
use crate::dispatch::{created_concurrently, lock_order};
use crate::settings::PICKUP;
use crate::shipment::ShipmentStatus;

/// Decides `order.cancel_requested`.
pub async fn requested(
    conn: &mut PgConnection,
    msg: &Incoming,
    cancel: CancelRequested,
) -> Result<(), HandleError> {
    let order_id = msg.envelope.order_id;
    match lock_order(conn, order_id).await?.as_deref() {
        None => {
            // Before the order reached shipping: remember it, so its `order.packed` ships nothing.
            let created = sqlx::query(
                "INSERT INTO shipping_orders (order_id, status, cancel_reason) \
                 VALUES ($1, 'cancelled', $2) ON CONFLICT (order_id) DO NOTHING",
            )
            .bind(order_id)
            .bind(&cancel.reason)
            .execute(&mut *conn)
            .await?;
            if created.rows_affected() == 0 {
                return Err(created_concurrently(order_id));
            }
            cancelled(conn, msg, &cancel).await
        }
        Some("on_hold") => {
            sqlx::query(
                "UPDATE shipping_orders SET status = 'cancelled', cancel_reason = $2, updated_at = now() \
                 WHERE order_id = $1 AND status = 'on_hold'",
            )
            .bind(order_id)
            .bind(&cancel.reason)
            .execute(&mut *conn)
            .await?;
            cancelled(conn, msg, &cancel).await
        }
        Some("shipping") => shipping(conn, msg, &cancel).await,
        Some(status) => {
            tracing::info!(%order_id, status, "cancellation requested again; the order is already cancelled");
            Ok(())
        }
    }
}

/// The order has shipments: cancel them if none has left, refuse otherwise.
async fn shipping(
    conn: &mut PgConnection,
    msg: &Incoming,
    cancel: &CancelRequested,
) -> Result<(), HandleError> {
    let order_id = msg.envelope.order_id;
    let shipped: bool = sqlx::query_scalar(
        "SELECT shipped_published_at IS NOT NULL FROM shipping_orders WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one(&mut *conn)
    .await?;
    let shipments: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT shipment_id, carrier, status FROM shipments WHERE order_id = $1 \
         ORDER BY warehouse FOR UPDATE",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let gone = shipments.iter().find(|(_, _, status)| {
        ShipmentStatus::parse(status)
            .is_none_or(|s| !s.is_cancellable() && s != ShipmentStatus::Cancelled)
    });
    if shipped || gone.is_some() {
        let reason = match gone {
            Some((id, carrier, status)) => format!(
                "too late to cancel: shipment {id} is already with carrier `{carrier}` ({status})"
            ),
            None => "too late to cancel: the order has shipped".to_owned(),
        };
        tracing::info!(%order_id, %reason, "cancellation refused");
        let refused = Envelope::caused_by(NAME, &msg.envelope, CancelRefused { reason });
        outbox::enqueue(conn, &refused, None).await?;
        return Ok(());
    }

    for (shipment_id, carrier, status) in &shipments {
        if status == ShipmentStatus::Cancelled.as_str() {
            continue;
        }
        sqlx::query(
            "UPDATE shipments SET status = $3, updated_at = now() \
             WHERE shipment_id = $1 AND status = $2",
        )
        .bind(shipment_id)
        .bind(status)
        .bind(ShipmentStatus::Cancelled.as_str())
        .execute(&mut *conn)
        .await?;
        // In-store collections are ours: there is no carrier to tell.
        if carrier != PICKUP {
            let request = shipment::CancelRequested {
                shipment_id: *shipment_id,
                carrier: carrier.clone(),
                reason: cancel.reason.clone(),
            };
            let envelope = Envelope::caused_by(NAME, &msg.envelope, request);
            outbox::enqueue(conn, &envelope, Some(carrier)).await?;
        }
    }
    sqlx::query(
        "UPDATE shipping_orders SET status = 'cancelled', cancel_reason = $2, updated_at = now() \
         WHERE order_id = $1 AND status = 'shipping'",
    )
    .bind(order_id)
    .bind(&cancel.reason)
    .execute(&mut *conn)
    .await?;
    cancelled(conn, msg, cancel).await
}

/// Publishes the decision every stage compensates on.
async fn cancelled(
    conn: &mut PgConnection,
    msg: &Incoming,
    cancel: &CancelRequested,
) -> Result<(), HandleError> {
    tracing::info!(order_id = %msg.envelope.order_id, reason = %cancel.reason, "order cancelled");
    let decided = Cancelled {
        reason: cancel.reason.clone(),
    };
    outbox::enqueue(
        conn,
        &Envelope::caused_by(NAME, &msg.envelope, decided),
        None,
    )
    .await?;
    Ok(())
}
