//! The `verification.orders` consumer: deciding placed orders, and following the goods of
//! verified ones through cancellation, packing, short picks, unpacking and failed delivery.
//!
//! Every handler runs inside the consumer's batch transaction, which other orders share. So an
//! order's decision runs in a savepoint of its own: when it cannot be completed, only that
//! savepoint is rolled back, leaving its neighbours' work intact.

use orderflow_messages::order::{self, Reservation};
use orderflow_messages::{Envelope, Event, stock as stock_events};
use orderflow_runtime::outbox::enqueue;
use orderflow_runtime::{HandleError, Handler, Incoming};
use sqlx::{Connection, PgConnection};

use crate::NAME;
use crate::backorder;
use crate::decision::{self, Decision};
use crate::low_stock;
use crate::order_record::{self, OrderStatus};
use crate::reservation::{self, Settlement};
use crate::settings::VerificationSettings;
use crate::short_pick;

/// Handles everything bound to `verification.orders`.
pub struct OrderEvents {
    pub settings: VerificationSettings,
}

impl Handler for OrderEvents {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        if msg.is::<order::Placed>() {
            self.placed(conn, msg).await
        } else if msg.is::<order::Cancelled>() {
            cancelled(conn, msg).await
        } else if msg.is::<order::Packed>() {
            packed(conn, msg).await
        } else if msg.is::<order::FulfilmentFailed>() {
            short_pick::fulfilment_failed(conn, msg).await
        } else if msg.is::<order::Unpacked>() {
            unpacked(conn, msg).await
        } else if msg.is::<order::DeliveryFailed>() {
            delivery_failed(conn, msg).await
        } else {
            Ok(())
        }
    }
}

/// Publishes `payload` as a consequence of `msg`, through the outbox.
pub async fn publish<E: Event>(
    conn: &mut PgConnection,
    msg: &Incoming,
    payload: E,
) -> Result<(), HandleError> {
    enqueue(
        conn,
        &Envelope::caused_by(NAME, &msg.envelope, payload),
        None,
    )
    .await?;
    Ok(())
}

impl OrderEvents {
    async fn placed(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        let placed = msg.decode::<order::Placed>()?;
        let order_id = msg.envelope.order_id;
        if order_record::is_known(&mut *conn, order_id).await? {
            tracing::debug!(%order_id, "order already decided; order.placed ignored");
            return Ok(());
        }
        let mut deciding = conn.begin().await?;
        // The record comes first: its primary key makes a replica deciding the same order at
        // the same moment wait, then find it decided.
        let recorded =
            order_record::insert(&mut *deciding, order_id, OrderStatus::Verified, None, &[])
                .await?;
        if !recorded {
            deciding.rollback().await?;
            tracing::debug!(%order_id, "order decided concurrently; order.placed ignored");
            return Ok(());
        }
        match decision::decide(&mut deciding, &self.settings, order_id, &placed).await? {
            Decision::Verified { verified, lows } => {
                order_record::set_subtotal(
                    &mut *deciding,
                    order_id,
                    verified.subtotal.amount,
                    &verified.currency,
                )
                .await?;
                deciding.commit().await?;
                publish(conn, msg, *verified).await?;
                for low in lows {
                    publish(conn, msg, low).await?;
                }
            }
            Decision::Rejected(mut reasons) => {
                // Whole-order reasons first, then by line; the order of checks is kept.
                reasons.sort_by_key(|r| r.line_no);
                order_record::advance(&mut *deciding, order_id, OrderStatus::Rejected).await?;
                order_record::set_reasons(&mut *deciding, order_id, &reasons).await?;
                deciding.commit().await?;
                publish(conn, msg, order::Rejected { reasons }).await?;
            }
            Decision::Backordered(lines) => {
                backorder::wait(
                    &mut deciding,
                    order_id,
                    OrderStatus::Backordered,
                    &msg.envelope,
                    &lines,
                    None,
                )
                .await?;
                deciding.commit().await?;
                publish(conn, msg, order::Backordered { lines }).await?;
            }
        }
        Ok(())
    }
}

/// The cancellation is decided (by shipping): release what is still reserved. A cancel that
/// arrives before `order.placed` is remembered, so the late order reserves nothing. Packed
/// goods come back with `order.unpacked`.
async fn cancelled(conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
    let cancel = msg.decode::<order::Cancelled>()?;
    let order_id = msg.envelope.order_id;
    if order_record::insert(&mut *conn, order_id, OrderStatus::Cancelled, None, &[]).await? {
        return Ok(());
    }
    order_record::advance(&mut *conn, order_id, OrderStatus::Cancelled).await?;
    let released = reservation::settle(conn, order_id, Settlement::Release).await?;
    if released.is_empty() {
        // Rejected, waiting for stock, already released, or packed: nothing is held here.
        return Ok(());
    }
    clear_low_marks(conn, &released).await?;
    publish(
        conn,
        msg,
        stock_events::Released {
            reason: cancel.reason,
            reservations: released,
        },
    )
    .await
}

/// Stock came back to rows: their low marks may end (a later fall is a new crossing).
async fn clear_low_marks(
    conn: &mut PgConnection,
    reservations: &[Reservation],
) -> Result<(), HandleError> {
    let mut rows: Vec<(String, String)> = reservations
        .iter()
        .map(|r| (r.warehouse.clone(), r.sku.as_str().to_owned()))
        .collect();
    rows.sort_unstable();
    rows.dedup();
    // Rising stock never crosses downwards, so there is nothing to publish.
    low_stock::mark_all(conn, rows).await?;
    Ok(())
}

async fn packed(conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
    msg.decode::<order::Packed>()?;
    let order_id = msg.envelope.order_id;
    // The order's record before its stock rows, as the backorder refill locks them.
    order_record::lock(&mut *conn, order_id).await?;
    let shipped: Vec<Reservation> = reservation::settle(conn, order_id, Settlement::Ship).await?;
    if shipped.is_empty() {
        if !order_record::is_known(&mut *conn, order_id).await? {
            // Packing follows our own order.verified, so this cannot be a message that is
            // merely early: keep it for a person to look at.
            return Err(HandleError::Permanent(format!(
                "order.packed for order {order_id}, which verification never verified"
            )));
        }
        return Ok(());
    }
    // An order still waiting for the missing units of a short pick ships without them.
    order_record::advance(&mut *conn, order_id, OrderStatus::Shipped).await?;
    Ok(())
}

/// A cancelled order's parcels were unpacked: the goods are back on the shelf.
async fn unpacked(conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
    let unpacked = msg.decode::<order::Unpacked>()?;
    let order_id = msg.envelope.order_id;
    order_record::lock(&mut *conn, order_id).await?;
    let warehouses: Vec<String> = unpacked
        .groups
        .iter()
        .map(|g| g.warehouse.clone())
        .collect();
    let back =
        reservation::settle_in(conn, order_id, Settlement::Unpack, Some(&warehouses)).await?;
    if back.is_empty() {
        // Released before packing was booked here, or a repeat: the shelf already counts them.
        return Ok(());
    }
    order_record::advance(&mut *conn, order_id, OrderStatus::Unpacked).await?;
    clear_low_marks(conn, &back).await
}

async fn delivery_failed(conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
    msg.decode::<order::DeliveryFailed>()?;
    let order_id = msg.envelope.order_id;
    order_record::lock(&mut *conn, order_id).await?;
    let returned = reservation::settle(conn, order_id, Settlement::Return).await?;
    if !returned.is_empty() {
        order_record::advance(&mut *conn, order_id, OrderStatus::Returned).await?;
        clear_low_marks(conn, &returned).await?;
    }
    Ok(())
}
