//! A shipment's status, as a state machine in one place.
//!
//! Shipping sets `requested` (asked the carrier), `label_created` (the carrier accepted it) and
//! `cancelled` (we asked the carrier to stop it before hand-over); every other status comes
//! from the carrier's tracking events. Tracking events may arrive twice or out of order, so the
//! status only moves to an event that is newer (by the carrier's `status_at`) than the one that
//! set the current status, and a final status never changes again.

use std::fmt;

use chrono::{DateTime, Utc};
use orderflow_messages::shipment::TrackingStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentStatus {
    Requested,
    LabelCreated,
    PreTransit,
    InTransit,
    OutForDelivery,
    AvailableForPickup,
    Delivered,
    ReturnToSender,
    Failure,
    Cancelled,
}

impl ShipmentStatus {
    pub const ALL: [ShipmentStatus; 10] = [
        ShipmentStatus::Requested,
        ShipmentStatus::LabelCreated,
        ShipmentStatus::PreTransit,
        ShipmentStatus::InTransit,
        ShipmentStatus::OutForDelivery,
        ShipmentStatus::AvailableForPickup,
        ShipmentStatus::Delivered,
        ShipmentStatus::ReturnToSender,
        ShipmentStatus::Failure,
        ShipmentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Requested => "requested",
            ShipmentStatus::LabelCreated => "label_created",
            ShipmentStatus::PreTransit => "pre_transit",
            ShipmentStatus::InTransit => "in_transit",
            ShipmentStatus::OutForDelivery => "out_for_delivery",
            ShipmentStatus::AvailableForPickup => "available_for_pickup",
            ShipmentStatus::Delivered => "delivered",
            ShipmentStatus::ReturnToSender => "return_to_sender",
            ShipmentStatus::Failure => "failure",
            ShipmentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<ShipmentStatus> {
        ShipmentStatus::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Nothing the carrier reports afterwards changes the shipment's outcome.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ShipmentStatus::Delivered
                | ShipmentStatus::ReturnToSender
                | ShipmentStatus::Failure
                | ShipmentStatus::Cancelled
        )
    }

    /// The carrier has the parcels and is moving them, or has delivered them: what makes an
    /// order "shipped".
    pub fn is_handed_over(self) -> bool {
        matches!(
            self,
            ShipmentStatus::InTransit
                | ShipmentStatus::OutForDelivery
                | ShipmentStatus::AvailableForPickup
                | ShipmentStatus::Delivered
        )
    }

    /// The parcels never reached the customer.
    pub fn is_delivery_failure(self) -> bool {
        matches!(
            self,
            ShipmentStatus::ReturnToSender | ShipmentStatus::Failure
        )
    }

    /// Still in the warehouse (at most labelled, not picked up), so a cancellation can stop it.
    pub fn is_cancellable(self) -> bool {
        matches!(
            self,
            ShipmentStatus::Requested | ShipmentStatus::LabelCreated | ShipmentStatus::PreTransit
        )
    }

    /// How far along the journey; breaks ties between events with the same `status_at`.
    fn progress(self) -> u8 {
        match self {
            ShipmentStatus::Requested => 0,
            ShipmentStatus::LabelCreated => 1,
            ShipmentStatus::PreTransit => 2,
            ShipmentStatus::InTransit => 3,
            ShipmentStatus::OutForDelivery | ShipmentStatus::AvailableForPickup => 4,
            ShipmentStatus::Delivered
            | ShipmentStatus::ReturnToSender
            | ShipmentStatus::Failure
            | ShipmentStatus::Cancelled => 5,
        }
    }

    /// The status after the carrier created the label, if it changes.
    pub fn after_label(self) -> Option<ShipmentStatus> {
        (self == ShipmentStatus::Requested).then_some(ShipmentStatus::LabelCreated)
    }

    /// The status after a tracking event `event` seen by the carrier at `event_at`, given that
    /// the current status was set by an event at `current_at` (`None`: by shipping itself).
    /// `None` when the event is older than what we know, or the current status is final.
    pub fn after_tracking(
        self,
        current_at: Option<DateTime<Utc>>,
        event: TrackingStatus,
        event_at: DateTime<Utc>,
    ) -> Option<ShipmentStatus> {
        if self.is_final() {
            return None;
        }
        let next = ShipmentStatus::from(event);
        let newer = match current_at {
            None => true,
            Some(at) => event_at > at || (event_at == at && next.progress() > self.progress()),
        };
        newer.then_some(next)
    }
}

impl From<TrackingStatus> for ShipmentStatus {
    fn from(status: TrackingStatus) -> Self {
        match status {
            TrackingStatus::PreTransit => ShipmentStatus::PreTransit,
            TrackingStatus::InTransit => ShipmentStatus::InTransit,
            TrackingStatus::OutForDelivery => ShipmentStatus::OutForDelivery,
            TrackingStatus::Delivered => ShipmentStatus::Delivered,
            TrackingStatus::AvailableForPickup => ShipmentStatus::AvailableForPickup,
            TrackingStatus::ReturnToSender => ShipmentStatus::ReturnToSender,
            TrackingStatus::Failure => ShipmentStatus::Failure,
            TrackingStatus::Cancelled => ShipmentStatus::Cancelled,
        }
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const TRACKING: [TrackingStatus; 8] = [
        TrackingStatus::PreTransit,
        TrackingStatus::InTransit,
        TrackingStatus::OutForDelivery,
        TrackingStatus::Delivered,
        TrackingStatus::AvailableForPickup,
        TrackingStatus::ReturnToSender,
        TrackingStatus::Failure,
        TrackingStatus::Cancelled,
    ];

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in ShipmentStatus::ALL {
            assert_eq!(ShipmentStatus::parse(status.as_str()), Some(status));
        }
        for status in TRACKING {
            assert_eq!(ShipmentStatus::from(status).as_str(), status.as_str());
        }
        assert_eq!(ShipmentStatus::parse("lost"), None);
    }

    #[test]
    fn a_final_status_never_changes_whatever_the_carrier_reports_later() {
        for current in ShipmentStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for event in TRACKING {
                assert_eq!(
                    current.after_tracking(Some(at(0)), event, at(60)),
                    None,
                    "{current} must stay after {event:?}"
                );
            }
            assert_eq!(current.after_label(), None);
        }
    }

    #[test]
    fn an_older_event_never_moves_the_status_back() {
        for current in ShipmentStatus::ALL.into_iter().filter(|s| !s.is_final()) {
            for event in TRACKING {
                assert_eq!(current.after_tracking(Some(at(60)), event, at(0)), None);
            }
        }
    }

    #[test]
    fn a_newer_event_moves_any_open_status_to_the_event() {
        for current in ShipmentStatus::ALL.into_iter().filter(|s| !s.is_final()) {
            for event in TRACKING {
                assert_eq!(
                    current.after_tracking(Some(at(0)), event, at(60)),
                    Some(event.into())
                );
                assert_eq!(
                    current.after_tracking(None, event, at(0)),
                    Some(event.into())
                );
            }
        }
    }

    #[test]
    fn events_at_the_same_moment_only_move_forward() {
        let same = at(5);
        let in_transit = ShipmentStatus::InTransit;
        assert_eq!(
            in_transit.after_tracking(Some(same), TrackingStatus::Delivered, same),
            Some(ShipmentStatus::Delivered)
        );
        assert_eq!(
            in_transit.after_tracking(Some(same), TrackingStatus::PreTransit, same),
            None
        );
        assert_eq!(
            in_transit.after_tracking(Some(same), TrackingStatus::InTransit, same),
            None
        );
    }

    #[test]
    fn only_a_requested_shipment_takes_a_label_and_only_unshipped_ones_can_be_cancelled() {
        for status in ShipmentStatus::ALL {
            let expected =
                (status == ShipmentStatus::Requested).then_some(ShipmentStatus::LabelCreated);
            assert_eq!(status.after_label(), expected, "{status}");
            assert_eq!(
                status.is_cancellable(),
                matches!(
                    status,
                    ShipmentStatus::Requested
                        | ShipmentStatus::LabelCreated
                        | ShipmentStatus::PreTransit
                )
            );
            assert!(!(status.is_handed_over() && status.is_cancellable()));
        }
    }
}
