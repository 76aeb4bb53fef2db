//! Every event type in one list. Topology, schema export and tooling iterate over it, so a new
//! event is added here once and appears everywhere.

use schemars::Schema;

use crate::envelope::{Envelope, Event, Route};
use crate::{order, payment, shipment, stock};

/// What the rest of the system needs to know about one event type.
#[derive(Debug, Clone, Copy)]
pub struct EventInfo {
    pub name: &'static str,
    pub schema_version: u32,
    pub route: Route,
    /// JSON Schema of the whole message (envelope with this payload).
    pub schema: fn() -> Schema,
}

fn info<E: Event>() -> EventInfo {
    EventInfo {
        name: E::TYPE,
        schema_version: E::SCHEMA_VERSION,
        route: E::ROUTE,
        schema: || schemars::schema_for!(Envelope<E>),
    }
}

/// The whole catalogue, in the order of an order's journey.
pub fn all() -> Vec<EventInfo> {
    vec![
        info::<order::Placed>(),
        info::<order::Verified>(),
        info::<order::Rejected>(),
        info::<order::Backordered>(),
        info::<stock::Low>(),
        info::<stock::Released>(),
        info::<order::Packed>(),
        info::<order::FulfilmentFailed>(),
        info::<order::Reallocated>(),
        info::<shipment::Requested>(),
        info::<shipment::CancelRequested>(),
        info::<shipment::LabelCreated>(),
        info::<shipment::TrackingUpdated>(),
        info::<order::Shipped>(),
        info::<order::Delivered>(),
        info::<order::DeliveryFailed>(),
        info::<payment::Authorized>(),
        info::<payment::Failed>(),
        info::<order::Invoiced>(),
        info::<order::Paid>(),
        info::<payment::Voided>(),
        info::<payment::Refunded>(),
        info::<order::Completed>(),
        info::<order::CancelRequested>(),
        info::<order::Cancelled>(),
        info::<order::CancelRefused>(),
        info::<order::Unpacked>(),
        info::<order::PaymentMethodChanged>(),
        info::<order::OnHold>(),
        info::<order::Stalled>(),
        info::<order::FeedbackReceived>(),
    ]
}

/// Looks an event type up by its `type` string.
pub fn find(name: &str) -> Option<EventInfo> {
    all().into_iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_listed_once() {
        let names: Vec<_> = all().iter().map(|e| e.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "duplicate in {names:?}");
    }
}
