//! What the stages told intake about an order beyond its status: its shipments with tracking
//! (`order.shipped`), its invoice number (`order.invoiced`) and the state of its payment
//! (`payment.*`, `order.paid`), kept on the order so `GET /v1/orders/{id}` can show them.

use orderflow_messages::{Event, order, payment};
use orderflow_runtime::HandleError;
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

/// What an event changes on the order's row besides its status (written by
/// [`journey::record`](crate::journey::record) in the statement that records the event).
#[derive(Debug, Default, Clone, Copy)]
pub struct Facts<'a> {
    /// The new payment state, when the event ranks at least as high as the stored one.
    pub payment_state: Option<&'static str>,
    /// From `order.invoiced`.
    pub invoice_number: Option<&'a str>,
}

impl Facts<'_> {
    pub fn any(&self) -> bool {
        self.payment_state.is_some() || self.invoice_number.is_some()
    }
}

/// The payment state `kind` moves an order in `current` to, if it moves it at all.
pub fn payment_state(kind: &str, current: &str) -> Option<&'static str> {
    PAYMENT_STATES
        .iter()
        .find(|(k, _, _)| *k == kind)
        .filter(|(_, _, rank)| payment_rank(current) <= *rank)
        .map(|(_, state, _)| *state)
}

/// Records the shipments of an `order.shipped` (the other facts travel in [`Facts`]).
pub async fn record_shipments(
    conn: &mut PgConnection,
    order_id: Uuid,
    shipped: &order::Shipped,
) -> Result<(), HandleError> {
    for s in &shipped.shipments {
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
    Ok(())
}
