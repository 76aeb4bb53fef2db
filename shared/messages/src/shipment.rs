//! The carrier plug-in protocol (DESIGN §3): what shipping sends a carrier and what it answers.
//!
//! Shipping publishes [`Requested`] and [`CancelRequested`] to `orderflow.carriers` with the
//! carrier's code as routing key; the carrier answers with [`LabelCreated`] and
//! [`TrackingUpdated`] on `orderflow.carrier-events` with key `<code>.<type>`, copying `order_id`
//! and `correlation_id` from the request's envelope and setting `causation_id` to its
//! `message_id`. Replies are matched on (carrier, shipment id).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{Route, event};
use crate::order::Parcel;
use crate::types::{Address, Money};

/// `shipment.requested` — shipping asks a carrier to carry one group of parcels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Requested {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    pub carrier: String,
    /// The carrier's service level, e.g. `standard`, `express`.
    pub service_level: String,
    pub ship_from_warehouse: String,
    pub ship_to: Address,
    pub parcels: Vec<Parcel>,
    pub declared_value: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_on_delivery: Option<Money>,
    /// Same request sent twice carries the same key; a carrier creates one label per key.
    pub idempotency_key: String,
}
event!(Requested, "shipment.requested", Route::ToCarrier);

/// `shipment.cancel_requested` — shipping asks the carrier to cancel a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CancelRequested {
    pub shipment_id: Uuid,
    pub carrier: String,
    pub reason: String,
}
event!(
    CancelRequested,
    "shipment.cancel_requested",
    Route::ToCarrier
);

/// `<carrier>.shipment.label_created` — the carrier accepted the shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LabelCreated {
    pub shipment_id: Uuid,
    pub carrier: String,
    pub tracking_number: String,
    pub label_url: String,
}
event!(LabelCreated, "shipment.label_created", Route::FromCarrier);

/// Tracking statuses (EasyPost's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    PreTransit,
    InTransit,
    OutForDelivery,
    Delivered,
    AvailableForPickup,
    ReturnToSender,
    Failure,
    Cancelled,
}

impl TrackingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingStatus::PreTransit => "pre_transit",
            TrackingStatus::InTransit => "in_transit",
            TrackingStatus::OutForDelivery => "out_for_delivery",
            TrackingStatus::Delivered => "delivered",
            TrackingStatus::AvailableForPickup => "available_for_pickup",
            TrackingStatus::ReturnToSender => "return_to_sender",
            TrackingStatus::Failure => "failure",
            TrackingStatus::Cancelled => "cancelled",
        }
    }

    /// No event after this one changes the shipment's outcome.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TrackingStatus::Delivered
                | TrackingStatus::ReturnToSender
                | TrackingStatus::Failure
                | TrackingStatus::Cancelled
        )
    }
}

/// `<carrier>.shipment.tracking_updated` — the shipment moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TrackingUpdated {
    pub shipment_id: Uuid,
    pub carrier: String,
    pub tracking_number: String,
    pub status: TrackingStatus,
    /// When the carrier saw it; out-of-order events are ordered by this.
    pub status_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
event!(
    TrackingUpdated,
    "shipment.tracking_updated",
    Route::FromCarrier
);
