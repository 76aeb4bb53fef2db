//! The built-in carrier `pickup`: collection in store. Shipping is this carrier itself, with no
//! queue round-trip: when the order is packed its shipment gets a collection code (the
//! "label") and is `available_for_pickup` at once; staff confirm the collection with
//! `POST /v1/shipments/{id}/collected`, which records `delivered`. Both go through the same
//! functions as any carrier's replies ([`crate::tracking`]), so the order's events follow the
//! same rules.

use chrono::Utc;
use orderflow_messages::Envelope;
use orderflow_messages::shipment::{LabelCreated, TrackingStatus, TrackingUpdated};
use orderflow_runtime::HandleError;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::NAME;
use crate::settings::PICKUP;
use crate::shipment::ShipmentStatus;
use crate::tracking::{self, Reply};

/// `PU` and 12 digits: the code the customer shows at the counter.
pub fn collection_code(shipment_id: Uuid) -> String {
    format!("PU{:012}", shipment_id.as_u128() % 1_000_000_000_000)
}

/// Makes a freshly requested in-store shipment ready for collection at `warehouse`.
pub async fn make_ready<C: Sync>(
    conn: &mut PgConnection,
    cause: &Envelope<C>,
    shipment_id: Uuid,
    warehouse: &str,
) -> Result<(), HandleError> {
    let reply = Reply {
        carrier: PICKUP,
        envelope: cause,
    };
    let code = collection_code(shipment_id);
    let label = LabelCreated {
        shipment_id,
        carrier: PICKUP.to_owned(),
        tracking_number: code.clone(),
        // Nothing to print: the customer shows the collection code.
        label_url: String::new(),
    };
    tracking::label_created(conn, &reply, label).await?;
    let ready = TrackingUpdated {
        shipment_id,
        carrier: PICKUP.to_owned(),
        tracking_number: code,
        status: TrackingStatus::AvailableForPickup,
        status_at: Utc::now(),
        location: Some(warehouse.to_owned()),
        description: Some(format!("ready for collection at {warehouse}")),
    };
    tracking::tracking_updated(conn, &reply, ready).await
}

/// What a collection confirmation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    /// Recorded as delivered now.
    Collected,
    /// It was already collected; nothing changed.
    AlreadyCollected,
    /// The shipment travels with another carrier.
    OtherCarrier(String),
    /// Not (or no longer) waiting at the counter.
    NotReady(String),
    Unknown,
}

/// Staff confirm that the customer collected shipment `shipment_id`.
pub async fn confirm(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Collection, HandleError> {
    // The order's record first, then the shipment: the lock order of every handler.
    let locked: Option<Uuid> = sqlx::query_scalar(
        "SELECT o.order_id FROM shipping_orders o \
         WHERE o.order_id = (SELECT order_id FROM shipments WHERE shipment_id = $1) FOR UPDATE",
    )
    .bind(shipment_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(order_id) = locked else {
        return Ok(Collection::Unknown);
    };
    let (carrier, status, tracking_number, warehouse, correlation_id): (
        String,
        String,
        Option<String>,
        String,
        Option<Uuid>,
    ) = sqlx::query_as(
        "SELECT carrier, status, tracking_number, warehouse, correlation_id FROM shipments \
         WHERE shipment_id = $1 FOR UPDATE",
    )
    .bind(shipment_id)
    .fetch_one(&mut *conn)
    .await?;
    if carrier != PICKUP {
        return Ok(Collection::OtherCarrier(carrier));
    }
    if status == ShipmentStatus::Delivered.as_str() {
        return Ok(Collection::AlreadyCollected);
    }
    if status != ShipmentStatus::AvailableForPickup.as_str() {
        return Ok(Collection::NotReady(status));
    }
    let event = TrackingUpdated {
        shipment_id,
        carrier: PICKUP.to_owned(),
        tracking_number: tracking_number.unwrap_or_else(|| collection_code(shipment_id)),
        status: TrackingStatus::Delivered,
        status_at: Utc::now(),
        location: Some(warehouse),
        description: Some("collected by the customer".to_owned()),
    };
    let mut envelope = Envelope::new(NAME, order_id, event.clone());
    envelope.correlation_id = correlation_id.unwrap_or(order_id);
    let reply = Reply {
        carrier: PICKUP,
        envelope: &envelope,
    };
    tracking::tracking_updated(conn, &reply, event).await?;
    Ok(Collection::Collected)
}
