//! The order-level consequences of its shipments' statuses, each published once.
//!
//! - every expected shipment has a tracking number and is handed over → `order.shipped`;
//! - every one is delivered → `order.delivered` (after `order.shipped`, in the same transaction
//!   if the in-transit events were skipped or arrived late);
//! - one came back or was lost → `order.delivery_failed`.
//!
//! The `*_published_at` columns of the order's record, set in the transaction that enqueues the
//! event, are the "once". Callers hold the order's row lock.

use chrono::{DateTime, Utc};
use orderflow_messages::Envelope;
use orderflow_messages::order::{Delivered, DeliveryFailed, ShipmentRef, Shipped};
use orderflow_runtime::{HandleError, outbox};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::shipment::ShipmentStatus;
use crate::{NAME, registry};

struct OrderRecord {
    shipping_method: Option<String>,
    expected_shipments: Option<i32>,
    shipped: bool,
    delivered: bool,
    delivery_failed: bool,
}

/// One row of the order's record joined with one of its shipments (none yet: all `None`).
#[derive(sqlx::FromRow)]
struct Row {
    shipping_method: Option<String>,
    expected_shipments: Option<i32>,
    shipped: bool,
    delivered: bool,
    delivery_failed: bool,
    shipment_id: Option<Uuid>,
    carrier: Option<String>,
    status: Option<String>,
    status_at: Option<DateTime<Utc>>,
    tracking_number: Option<String>,
    tracking_url_template: Option<String>,
}

impl Row {
    fn shipment(self) -> Option<ShipmentState> {
        Some(ShipmentState {
            shipment_id: self.shipment_id?,
            carrier: self.carrier?,
            status: self.status?,
            status_at: self.status_at,
            tracking_number: self.tracking_number,
            tracking_url_template: self.tracking_url_template?,
        })
    }
}

struct ShipmentState {
    shipment_id: Uuid,
    carrier: String,
    status: String,
    status_at: Option<DateTime<Utc>>,
    tracking_number: Option<String>,
    tracking_url_template: String,
}

/// Publishes what the order's shipments now add up to, if not published before.
pub async fn evaluate<C: Sync>(
    conn: &mut PgConnection,
    cause: &Envelope<C>,
    order_id: Uuid,
) -> Result<(), HandleError> {
    // The order's record and its shipments in one round trip (no row: not an order of ours).
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT o.shipping_method, o.expected_shipments, \
                o.shipped_published_at IS NOT NULL AS shipped, \
                o.delivered_published_at IS NOT NULL AS delivered, \
                o.delivery_failed_published_at IS NOT NULL AS delivery_failed, \
                s.shipment_id, s.carrier, s.status, s.status_at, s.tracking_number, \
                c.tracking_url_template \
         FROM shipping_orders o \
         LEFT JOIN (shipments s JOIN carriers c ON c.code = s.carrier) ON s.order_id = o.order_id \
         WHERE o.order_id = $1 ORDER BY s.warehouse",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let order = OrderRecord {
        shipping_method: first.shipping_method.clone(),
        expected_shipments: first.expected_shipments,
        shipped: first.shipped,
        delivered: first.delivered,
        delivery_failed: first.delivery_failed,
    };
    let shipments: Vec<ShipmentState> = rows.into_iter().filter_map(Row::shipment).collect();
    let status_of = |s: &ShipmentState| ShipmentStatus::parse(&s.status);

    if !order.delivery_failed
        && let Some(failed) = shipments
            .iter()
            .find(|s| status_of(s).is_some_and(ShipmentStatus::is_delivery_failure))
    {
        let reason: Option<String> = sqlx::query_scalar(
            "SELECT description FROM tracking_events WHERE shipment_id = $1 AND status = $2 \
             ORDER BY status_at DESC, id DESC LIMIT 1",
        )
        .bind(failed.shipment_id)
        .bind(&failed.status)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
        let reason = reason.unwrap_or_else(|| match failed.status.as_str() {
            "return_to_sender" => "the carrier is returning the parcels to the sender".to_owned(),
            _ => "the carrier could not deliver the parcels".to_owned(),
        });
        let payload = DeliveryFailed {
            shipment_id: failed.shipment_id,
            status: failed.status.clone(),
            reason,
        };
        if mark(conn, order_id, Milestone::DeliveryFailed).await? {
            outbox::enqueue(conn, &Envelope::caused_by(NAME, cause, payload), None).await?;
        }
        tracing::warn!(%order_id, shipment_id = %failed.shipment_id, status = %failed.status, "delivery failed");
    }

    let expected = order
        .expected_shipments
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let complete = expected > 0 && shipments.len() == expected;
    let all = |pred: fn(ShipmentStatus) -> bool| {
        complete
            && shipments
                .iter()
                .all(|s| s.tracking_number.is_some() && status_of(s).is_some_and(pred))
    };
    let all_delivered = all(|s| s == ShipmentStatus::Delivered);
    let all_handed_over = all(ShipmentStatus::is_handed_over);

    if !order.shipped && (all_handed_over || all_delivered) {
        let refs = shipments
            .iter()
            .filter_map(|s| {
                let number = s.tracking_number.clone()?;
                Some(ShipmentRef {
                    shipment_id: s.shipment_id,
                    carrier: s.carrier.clone(),
                    tracking_url: Some(registry::tracking_url(&s.tracking_url_template, &number)),
                    tracking_number: number,
                })
            })
            .collect();
        let payload = Shipped {
            shipments: refs,
            shipping_method: order.shipping_method.clone().unwrap_or_default(),
        };
        if mark(conn, order_id, Milestone::Shipped).await? {
            outbox::enqueue(conn, &Envelope::caused_by(NAME, cause, payload), None).await?;
        }
        tracing::info!(%order_id, "order shipped");
    }

    if !order.delivered && all_delivered {
        let delivered_at = shipments
            .iter()
            .filter_map(|s| s.status_at)
            .max()
            .unwrap_or_else(Utc::now);
        if mark(conn, order_id, Milestone::Delivered).await? {
            let payload = Delivered { delivered_at };
            outbox::enqueue(conn, &Envelope::caused_by(NAME, cause, payload), None).await?;
        }
        tracing::info!(%order_id, "order delivered");
    }
    Ok(())
}

/// An order-level event published at most once, guarded by its `*_published_at` column.
#[derive(Debug, Clone, Copy)]
enum Milestone {
    Shipped,
    Delivered,
    DeliveryFailed,
}

/// Sets the milestone's guard; `false` if it was already set (then nothing is published).
async fn mark(conn: &mut PgConnection, order_id: Uuid, milestone: Milestone) -> sqlx::Result<bool> {
    let sql = match milestone {
        Milestone::Shipped => {
            "UPDATE shipping_orders SET shipped_published_at = now(), updated_at = now() \
             WHERE order_id = $1 AND shipped_published_at IS NULL"
        }
        Milestone::Delivered => {
            "UPDATE shipping_orders SET delivered_published_at = now(), updated_at = now() \
             WHERE order_id = $1 AND delivered_published_at IS NULL"
        }
        Milestone::DeliveryFailed => {
            "UPDATE shipping_orders SET delivery_failed_published_at = now(), updated_at = now() \
             WHERE order_id = $1 AND delivery_failed_published_at IS NULL"
        }
    };
    let updated = sqlx::query(sql).bind(order_id).execute(conn).await?;
    Ok(updated.rows_affected() == 1)
}
