//! What the stages told intake about an order beyond its status: its shipments with tracking
//! (`order.shipped`), its invoice number (`order.invoiced`) and the state of its payment
//! (`payment.*`, `order.paid`), kept on the order so `GET /v1/orders/{id}` can show them.

use orderflow_messages::{Event, order, payment};
use orderflow_runtime::{HandleError, Incoming};
use sqlx::PgConnection;
use uuid::Uuid;

/// The payment states, each with its rank: a state replaces another of lower or equal rank
/// only, so a late `payment.authorized` never hides a capture, a void or a refund. A decline
/// and an authorisation share a rank: after a new payment method either may follow the other.
const PAYMENT_STATES: &[(&str, &str, u8)] = &[
    (payment::Authorized::TYPE, "authorized", 1),
    (payment::Failed::TYPE, "failed", 1),
    (order::Paid::TYPE, "captured", 2),
    (payment::Voided::TYPE, "voided", 3),
    (payment::Refunded::TYPE, "refunded", 3),
];

/// The rank of a stored payment state (`pending` is 0).
pub fn payment_rank(state: &str) -> u8 {
    PAYMENT_STATES
        .iter()
        .find(|(_, s, _)| *s == state)
        .map_or(0, |(_, _, rank)| *rank)
}

/// Records what `msg` says about the order `order_id`, if anything.
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    msg: &Incoming,
) -> Result<(), HandleError> {
    if msg.is::<order::Shipped>() {
        let shipped: order::Shipped = msg.decode()?;
        for s in shipped.shipments {
            sqlx::query(
                "INSERT INTO order_shipments (order_id, shipment_id, carrier, tracking_number, \
                 tracking_url) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (order_id, shipment_id) DO UPDATE SET carrier = EXCLUDED.carrier, \
                 tracking_number = EXCLUDED.tracking_number, tracking_url = EXCLUDED.tracking_url, \
                 updated_at = now()",
            )
            .bind(order_id)
            .bind(s.shipment_id)
            .bind(&s.carrier)
            .bind(&s.tracking_number)
            .bind(&s.tracking_url)
            .execute(&mut *conn)
            .await?;
        }
    } else if msg.is::<order::Invoiced>() {
        let invoiced: order::Invoiced = msg.decode()?;
        sqlx::query("UPDATE orders SET invoice_number = $2, updated_at = now() WHERE id = $1")
            .bind(order_id)
            .bind(&invoiced.invoice_number)
            .execute(&mut *conn)
            .await?;
    }
    if let Some((_, state, rank)) = PAYMENT_STATES
        .iter()
        .find(|(kind, _, _)| *kind == msg.envelope.kind)
    {
        let current: String = sqlx::query_scalar("SELECT payment_state FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(&mut *conn)
            .await?;
        if payment_rank(&current) <= *rank {
            sqlx::query("UPDATE orders SET payment_state = $2, updated_at = now() WHERE id = $1")
                .bind(order_id)
                .bind(state)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
