//! The `verification.orders` consumer: deciding placed orders, and following the goods of
//! verified ones through cancellation, packing and failed delivery.
//!
//! Every handler runs inside the consumer's batch transaction, which other orders share. So an
//! order's reservation attempt runs in a savepoint of its own: when it cannot be completed, only
//! that savepoint is rolled back and the order is rejected, leaving its neighbours' work intact.

use orderflow_messages::order::{self, Reason, Reservation, Verified};
use orderflow_messages::{Envelope, Event, stock as stock_events};
use orderflow_runtime::outbox::enqueue;
use orderflow_runtime::{HandleError, Handler, Incoming};
use sqlx::{Connection, PgConnection};

use crate::NAME;
use crate::allocation::{Allocation, Demand, allocate};
use crate::catalogue::{self, Product};
use crate::order_record::{self, OrderStatus};
use crate::pricing::{self, reason};
use crate::reservation::{self, Held, Settlement, Touched};
use crate::settings::VerificationSettings;
use crate::stock;

/// Handles everything bound to `verification.orders`.
pub struct OrderEvents {
    pub settings: VerificationSettings,
}

impl Handler for OrderEvents {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        if msg.is::<order::Placed>() {
            self.placed(conn, msg).await
        } else if msg.is::<order::CancelRequested>() {
            cancel_requested(conn, msg).await
        } else if msg.is::<order::Packed>() {
            packed(conn, msg).await
        } else if msg.is::<order::DeliveryFailed>() {
            delivery_failed(conn, msg).await
        } else {
            Ok(())
        }
    }
}

async fn publish<E: Event>(
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

fn insufficient(short: &order::ShortLine) -> Reason {
    reason(
        "insufficient_stock",
        Some(short.line_no),
        None,
        format!(
            "{} more of SKU {} needed than in stock",
            short.missing, short.sku
        ),
    )
}

impl OrderEvents {
    async fn placed(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        let placed = msg.decode::<order::Placed>()?;
        let order_id = msg.envelope.order_id;
        if order_record::is_known(&mut *conn, order_id).await? {
            tracing::debug!(%order_id, "order already decided; order.placed ignored");
            return Ok(());
        }
        let skus: Vec<String> = placed
            .lines
            .iter()
            .map(|l| l.sku.as_str().to_owned())
            .collect();
        let products = catalogue::find_many(&mut *conn, &skus).await?;
        let priced = pricing::price(&placed, &products, &self.settings);
        let demands: Vec<Demand> = priced
            .lines
            .iter()
            .map(|l| Demand {
                line_no: l.line_no,
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect();

        if !priced.reasons.is_empty() {
            // Rejected anyway; stock is only read, to tell the customer all that is wrong.
            let available = stock::availability(conn, &skus, false).await?;
            let mut reasons = priced.reasons;
            if let Allocation::Short(short) = allocate(&demands, &available) {
                reasons.extend(short.iter().map(insufficient));
            }
            return reject(conn, msg, reasons).await;
        }
        let Some(subtotal) = pricing::subtotal(&priced.lines) else {
            let too_large = reason(
                "amount_limit",
                None,
                Some("lines".into()),
                "the order's total does not fit in minor units".into(),
            );
            return reject(conn, msg, vec![too_large]).await;
        };

        let mut attempt = conn.begin().await?;
        let recorded = order_record::insert(
            &mut *attempt,
            order_id,
            OrderStatus::Verified,
            Some((subtotal, &placed.currency)),
            &[],
        )
        .await?;
        if !recorded {
            attempt.rollback().await?;
            tracing::debug!(%order_id, "order decided concurrently; order.placed ignored");
            return Ok(());
        }
        let available = stock::availability(&mut attempt, &skus, true).await?;
        let mut reservations = match allocate(&demands, &available) {
            Allocation::Filled(reservations) => reservations,
            Allocation::Short(short) => {
                attempt.rollback().await?;
                return reject(conn, msg, short.iter().map(insufficient).collect()).await;
            }
        };
        let touched = match reservation::hold(&mut attempt, order_id, &reservations).await? {
            Held::Done(touched) => touched,
            Held::Short { warehouse, sku } => {
                // The rows were locked when planning, so this means a writer ignored the lock
                // order; refusing is still correct.
                attempt.rollback().await?;
                let lines = reservations
                    .iter()
                    .filter(|r| r.warehouse == warehouse && r.sku.as_str() == sku)
                    .map(|r| {
                        reason(
                            "insufficient_stock",
                            Some(r.line_no),
                            None,
                            format!("SKU {sku} ran out in warehouse {warehouse}"),
                        )
                    })
                    .collect();
                return reject(conn, msg, lines).await;
            }
        };
        attempt.commit().await?;

        reservations.sort_by(|a, b| (a.line_no, &a.warehouse).cmp(&(b.line_no, &b.warehouse)));
        let mut lines = priced.lines;
        lines.sort_by_key(|l| l.line_no);
        let verified = Verified {
            customer: placed.customer,
            currency: placed.currency.clone(),
            lines,
            subtotal: orderflow_messages::types::Money::new(subtotal, placed.currency),
            reservations,
            shipping_address: placed.shipping_address,
            billing_address: placed.billing_address,
            delivery: placed.delivery,
            payment: placed.payment,
            coupon_code: placed.coupon_code,
        };
        publish(conn, msg, verified).await?;
        for low in running_low(&touched, &products) {
            publish(conn, msg, low).await?;
        }
        Ok(())
    }
}

/// `stock.low` for each row whose available stock fell to or below its product's reorder point
/// with this order (not for rows that were already there: one alert per crossing).
fn running_low(
    touched: &[Touched],
    products: &std::collections::HashMap<String, Product>,
) -> Vec<stock_events::Low> {
    touched
        .iter()
        .filter_map(|t| {
            let product = products.get(&t.sku)?;
            let point = product.reorder_point;
            (point > 0 && t.available_before > point && t.available_after <= point).then(|| {
                stock_events::Low {
                    warehouse: t.warehouse.clone(),
                    sku: product.sku.clone(),
                    available: t.available_after,
                    reorder_point: point,
                    reorder_quantity: product.reorder_quantity,
                }
            })
        })
        .collect()
}

/// Records the rejection and publishes it, unless the order was decided already.
async fn reject(
    conn: &mut PgConnection,
    msg: &Incoming,
    mut reasons: Vec<Reason>,
) -> Result<(), HandleError> {
    // Whole-order reasons first, then by line; the order of checks within a line is kept.
    reasons.sort_by_key(|r| r.line_no);
    let order_id = msg.envelope.order_id;
    if order_record::insert(&mut *conn, order_id, OrderStatus::Rejected, None, &reasons).await? {
        publish(conn, msg, order::Rejected { reasons }).await?;
    }
    Ok(())
}

async fn cancel_requested(conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
    let cancel = msg.decode::<order::CancelRequested>()?;
    let order_id = msg.envelope.order_id;
    // Cancelled before we decided: remember it, so a late order.placed reserves nothing.
    if order_record::insert(&mut *conn, order_id, OrderStatus::Cancelled, None, &[]).await? {
        return Ok(());
    }
    let released = reservation::settle(conn, order_id, Settlement::Release).await?;
    if released.is_empty() {
        // Rejected, already released, or packed: nothing is held here any more.
        return Ok(());
    }
    order_record::transition(
        &mut *conn,
        order_id,
        OrderStatus::Verified,
        OrderStatus::Cancelled,
    )
    .await?;
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

async fn packed(conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
    msg.decode::<order::Packed>()?;
    let order_id = msg.envelope.order_id;
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
    order_record::transition(conn, order_id, OrderStatus::Verified, OrderStatus::Shipped).await?;
    Ok(())
}

async fn delivery_failed(conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
    msg.decode::<order::DeliveryFailed>()?;
    let order_id = msg.envelope.order_id;
    let returned = reservation::settle(conn, order_id, Settlement::Return).await?;
    if !returned.is_empty() {
        order_record::transition(conn, order_id, OrderStatus::Shipped, OrderStatus::Returned)
            .await?;
    }
    Ok(())
}
