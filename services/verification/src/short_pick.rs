//! A short pick (`order.fulfilment_failed`): a warehouse found fewer units than it had reserved
//! for an order. Those units never existed, so the stock is corrected first (on hand and
//! reserved both drop, booked as `short pick`); then the missing units are reserved from the
//! other warehouses.
//!
//! - All found elsewhere → `order.reallocated {warehouse, reservations}`: fulfilment opens pick
//!   lists for the new reservations. (`order.verified` is not repeated: downstream stages
//!   handle it once per order.)
//! - Not all, and every short product allows backorder → `order.backordered` with the missing
//!   lines; `order.reallocated` follows when stock arrives ([`crate::backorder`]).
//! - Otherwise → `order.on_hold` (stage `verification`, reason `out_of_stock`) for a person.
//!
//! Either way it is all or nothing: the missing units are reserved together or not at all.

use orderflow_messages::order::{self, FulfilmentFailed, ShortLine};
use orderflow_runtime::{HandleError, Incoming};
use sqlx::PgConnection;

use crate::backorder;
use crate::catalogue;
use crate::decision::{self, backorderable, out_of_stock};
use crate::order_events::publish;
use crate::order_record::{self, OrderStatus};
use crate::reservation;
use crate::stock;

pub async fn fulfilment_failed(conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
    let failed = msg.decode::<FulfilmentFailed>()?;
    let order_id = msg.envelope.order_id;
    match order_record::lock(&mut *conn, order_id).await? {
        None => {
            return Err(HandleError::Permanent(format!(
                "order.fulfilment_failed for order {order_id}, which verification never verified"
            )));
        }
        Some(OrderStatus::Verified | OrderStatus::Backordered | OrderStatus::OnHold) => {}
        Some(other) => {
            tracing::info!(%order_id, status = other.as_str(), "short pick of a settled order ignored");
            return Ok(());
        }
    }
    let warehouse = failed.warehouse.as_str();
    let mut missing = failed.missing;
    missing.sort_by(|a, b| (&a.sku, a.line_no).cmp(&(&b.sku, b.line_no)));
    // Lock every row of these SKUs in (warehouse, SKU) order before changing any, as every
    // other writer does.
    let skus: Vec<String> = missing.iter().map(|m| m.sku.as_str().to_owned()).collect();
    stock::availability(&mut *conn, &skus, true).await?;

    let mut corrected: Vec<ShortLine> = Vec::new();
    for line in &missing {
        let taken =
            reservation::shrink(&mut *conn, order_id, warehouse, line.line_no, line.missing)
                .await?;
        if taken > 0 {
            corrected.push(ShortLine {
                missing: taken,
                ..line.clone()
            });
        }
    }
    if corrected.is_empty() {
        return Ok(());
    }
    corrected.sort_by_key(|l| l.line_no);

    if let Some((reservations, lows)) =
        decision::reallocate(&mut *conn, order_id, &corrected, Some(warehouse)).await?
    {
        let reallocated = order::Reallocated {
            warehouse: warehouse.to_owned(),
            reservations,
        };
        publish(conn, msg, reallocated).await?;
        for low in lows {
            publish(conn, msg, low).await?;
        }
        return Ok(());
    }

    let products = catalogue::find_many(&mut *conn, &skus).await?;
    if backorderable(&corrected, &products) {
        backorder::wait(
            &mut *conn,
            order_id,
            OrderStatus::Backordered,
            &msg.envelope,
            &corrected,
            Some(warehouse),
        )
        .await?;
        publish(conn, msg, order::Backordered { lines: corrected }).await?;
    } else {
        backorder::wait(
            &mut *conn,
            order_id,
            OrderStatus::OnHold,
            &msg.envelope,
            &corrected,
            Some(warehouse),
        )
        .await?;
        let mut reason = out_of_stock(&corrected[0]);
        let lines: Vec<String> = corrected
            .iter()
            .map(|l| format!("line {}: {} × {}", l.line_no, l.missing, l.sku))
            .collect();
        reason.message = format!(
            "warehouse {warehouse} picked short and no other warehouse has the rest ({})",
            lines.join(", ")
        );
        let on_hold = order::OnHold {
            stage: crate::NAME.to_owned(),
            reason,
        };
        publish(conn, msg, on_hold).await?;
    }
    Ok(())
}
