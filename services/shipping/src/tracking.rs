//! Carriers' replies, matched on (carrier, shipment id): from the `shipping.carrier-events`
//! queue, and through the same functions from the webhook ingress (via the outbox and that
//! queue) and the built-in in-store collection ([`crate::pickup`]).
//!
//! The carrier named by the route (the routing key's `<code>.`, the webhook's URL) must be the
//! one in the payload and the one the shipment was given to; a reply that breaks this, or names
//! a shipment we never requested, is dead-lettered with the reason — retrying cannot make it
//! right, and someone should look at the adapter that sent it. Tracking events are all kept
//! (once each); the shipment's status follows [`ShipmentStatus::after_tracking`].

use chrono::{DateTime, SubsecRound, Utc};
use orderflow_messages::Envelope;
use orderflow_messages::shipment::{LabelCreated, TrackingUpdated};
use orderflow_runtime::{HandleError, Handler, Incoming};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::progress;
use crate::shipment::ShipmentStatus;

/// Handles `<carrier>.shipment.label_created` and `<carrier>.shipment.tracking_updated`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CarrierEvents;

impl Handler for CarrierEvents {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        let reply = Reply {
            carrier: msg.carrier().unwrap_or_default(),
            envelope: &msg.envelope,
        };
        if msg.is::<LabelCreated>() {
            label_created(conn, &reply, msg.decode::<LabelCreated>()?).await
        } else if msg.is::<TrackingUpdated>() {
            tracking_updated(conn, &reply, msg.decode::<TrackingUpdated>()?).await
        } else {
            Ok(())
        }
    }
}

/// Where a reply came from.
#[derive(Debug)]
pub struct Reply<'a, C> {
    /// The carrier its route names (routing key or webhook URL).
    pub carrier: &'a str,
    /// The envelope it came in: its order, correlation and message id.
    pub envelope: &'a Envelope<C>,
}

/// The shipment a reply is about, locked with its order.
struct Shipment {
    id: Uuid,
    order_id: Uuid,
    status: ShipmentStatus,
    status_at: Option<DateTime<Utc>>,
    tracking_number: Option<String>,
}

/// Finds the shipment `shipment_id` for a reply from `claimed` carrier (the payload's), checks
/// the reply against it and locks the order, then the shipment.
async fn matched_shipment<C: Sync>(
    conn: &mut PgConnection,
    reply: &Reply<'_, C>,
    shipment_id: Uuid,
    claimed: &str,
) -> Result<Shipment, HandleError> {
    let kind = &reply.envelope.kind;
    let routed = reply.carrier;
    if routed != claimed {
        return Err(HandleError::Permanent(format!(
            "{kind} for shipment {shipment_id}: the route names carrier `{routed}` but the payload names `{claimed}`"
        )));
    }
    let owner: Option<(Uuid, String)> =
        sqlx::query_as("SELECT order_id, carrier FROM shipments WHERE shipment_id = $1")
            .bind(shipment_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((order_id, carrier)) = owner else {
        return Err(HandleError::Permanent(format!(
            "{kind} from carrier `{routed}`: unknown shipment {shipment_id}"
        )));
    };
    if carrier != routed {
        return Err(HandleError::Permanent(format!(
            "{kind} for shipment {shipment_id} came from carrier `{routed}`, but the shipment is with `{carrier}`"
        )));
    }
    if reply.envelope.order_id != order_id {
        return Err(HandleError::Permanent(format!(
            "{kind} for shipment {shipment_id}: envelope order_id {} is not the shipment's order {order_id}",
            reply.envelope.order_id
        )));
    }
    // Order first, then shipment: every handler locks in this order, so replies about two
    // shipments of one order are evaluated one after the other and never both miss the moment
    // the whole order became shipped.
    sqlx::query("SELECT 1 FROM shipping_orders WHERE order_id = $1 FOR UPDATE")
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    let (status, status_at, tracking_number): (String, Option<DateTime<Utc>>, Option<String>) =
        sqlx::query_as(
            "SELECT status, status_at, tracking_number FROM shipments WHERE shipment_id = $1 FOR UPDATE",
        )
        .bind(shipment_id)
        .fetch_one(&mut *conn)
        .await?;
    let status = ShipmentStatus::parse(&status).ok_or_else(|| {
        HandleError::Transient(anyhow::anyhow!(
            "shipment {shipment_id} has an unknown status `{status}` in the database"
        ))
    })?;
    Ok(Shipment {
        id: shipment_id,
        order_id,
        status,
        status_at,
        tracking_number,
    })
}

/// Records the carrier's label (tracking number and label link).
pub async fn label_created<C: Sync>(
    conn: &mut PgConnection,
    reply: &Reply<'_, C>,
    label: LabelCreated,
) -> Result<(), HandleError> {
    let shipment = matched_shipment(conn, reply, label.shipment_id, &label.carrier).await?;
    if label.tracking_number.trim().is_empty() {
        return Err(HandleError::Permanent(format!(
            "shipment.label_created for shipment {}: empty tracking number",
            shipment.id
        )));
    }
    // A label for a shipment we already cancelled is still recorded: the carrier may need it
    // to find the parcel. Its status stays.
    let status = shipment.status.after_label().unwrap_or(shipment.status);
    sqlx::query(
        "UPDATE shipments SET tracking_number = $3, label_url = NULLIF($4, ''), status = $5, \
           updated_at = now() WHERE shipment_id = $1 AND status = $2",
    )
    .bind(shipment.id)
    .bind(shipment.status.as_str())
    .bind(&label.tracking_number)
    .bind(&label.label_url)
    .bind(status.as_str())
    .execute(&mut *conn)
    .await?;
    progress::evaluate(conn, reply.envelope, shipment.order_id).await
}

/// Records a tracking event once and moves the shipment's status if the event is newer.
pub async fn tracking_updated<C: Sync>(
    conn: &mut PgConnection,
    reply: &Reply<'_, C>,
    event: TrackingUpdated,
) -> Result<(), HandleError> {
    let shipment = matched_shipment(conn, reply, event.shipment_id, &event.carrier).await?;
    // Stored with microsecond precision; compare what is stored.
    let status_at = event.status_at.trunc_subsecs(6);
    let next = shipment
        .status
        .after_tracking(shipment.status_at, event.status, status_at);
    // The label reply may still be on its way; the tracking event carries the number then.
    let adopt_number =
        shipment.tracking_number.is_none() && !event.tracking_number.trim().is_empty();
    if let Some(known) = &shipment.tracking_number
        && *known != event.tracking_number
    {
        tracing::warn!(shipment_id = %shipment.id, known = %known, reported = %event.tracking_number,
            "tracking event names another tracking number; keeping the label's");
    }
    // One statement: the event, once; and only if it is new, the shipment's number and status.
    let recorded: bool = sqlx::query_scalar(
        "WITH recorded AS ( \
             INSERT INTO tracking_events (shipment_id, status, status_at, location, description, \
             message_id) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT ON CONSTRAINT tracking_events_once DO NOTHING RETURNING 1), \
         moved AS ( \
             UPDATE shipments SET \
             status = CASE WHEN $8::text IS NULL THEN status ELSE $8 END, \
             status_at = CASE WHEN $8::text IS NULL THEN status_at ELSE $3 END, \
             tracking_number = CASE WHEN $9 AND tracking_number IS NULL THEN $10 \
             ELSE tracking_number END, updated_at = now() \
             WHERE shipment_id = $1 AND status = $7 AND ($8::text IS NOT NULL OR $9) \
             AND EXISTS (SELECT 1 FROM recorded)) \
         SELECT EXISTS (SELECT 1 FROM recorded)",
    )
    .bind(shipment.id)
    .bind(event.status.as_str())
    .bind(status_at)
    .bind(&event.location)
    .bind(&event.description)
    .bind(reply.envelope.message_id)
    .bind(shipment.status.as_str())
    .bind(next.map(|n| n.as_str()))
    .bind(adopt_number)
    .bind(&event.tracking_number)
    .fetch_one(&mut *conn)
    .await?;
    if !recorded {
        tracing::debug!(shipment_id = %shipment.id, status = event.status.as_str(), "repeated tracking event");
        return Ok(());
    }
    if next.is_none() {
        tracing::info!(shipment_id = %shipment.id, current = %shipment.status,
            reported = event.status.as_str(), "tracking event recorded; status unchanged (older or final)");
    }
    progress::evaluate(conn, reply.envelope, shipment.order_id).await
}
