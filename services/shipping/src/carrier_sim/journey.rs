//! What happens to a simulated shipment, decided up front: its tracking number and label, and
//! the tracking events that follow with the wait before each.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orderflow_messages::shipment::{Requested, TrackingStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// The simulator's carrier code.
pub const CODE: &str = "sim";

/// `SIM` and 12 digits, the same for the same shipment every time (a repeated request gets
/// the same label, as a real carrier's idempotency key would give).
pub fn tracking_number(shipment_id: Uuid) -> String {
    format!("SIM{:012}", shipment_id.as_u128() % 1_000_000_000_000)
}

pub fn label_url(base: &str, shipment_id: Uuid) -> String {
    format!("{}/{shipment_id}.pdf", base.trim_end_matches('/'))
}

/// How the journey ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Lost or damaged: `failure`.
    Failed,
    /// Nobody to take it: `return_to_sender`.
    Returned,
}

impl Outcome {
    /// `roll` is uniform in `[0, 1)`: below `failure_rate` the shipment fails, in the next
    /// `return_rate` it is returned, otherwise it is delivered.
    pub fn from_roll(roll: f64, failure_rate: f64, return_rate: f64) -> Outcome {
        if roll < failure_rate {
            Outcome::Failed
        } else if roll < failure_rate + return_rate {
            Outcome::Returned
        } else {
            Outcome::Delivered
        }
    }
}

/// The configured waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delays {
    /// Request → label.
    pub label: Duration,
    /// Label → picked up (`in_transit`).
    pub transit: Duration,
    /// In transit → out for delivery, and again out for delivery → the end.
    pub delivery: Duration,
}

/// The fate of one shipment: how it ends and how long each step takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub outcome: Outcome,
    pub delays: Delays,
}

/// The simulator's chance: one seeded generator, drawn once per request in the order the
/// requests arrive, so the same seed and the same requests give the same outcomes and delays.
#[derive(Debug)]
pub struct Dice {
    rng: StdRng,
}

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Draws the next shipment's plan: the outcome by `failure_rate`/`return_rate`, and each of
    /// the `base` delays stretched or shrunk by up to `jitter` (0.0–1.0) of itself.
    pub fn plan(&mut self, base: Delays, failure_rate: f64, return_rate: f64, jitter: f64) -> Plan {
        let outcome = Outcome::from_roll(self.rng.random::<f64>(), failure_rate, return_rate);
        let mut vary = |d: Duration| {
            let factor = 1.0 + jitter * (2.0 * self.rng.random::<f64>() - 1.0);
            d.mul_f64(factor.max(0.0))
        };
        Plan {
            outcome,
            delays: Delays {
                label: vary(base.label),
                transit: vary(base.transit),
                delivery: vary(base.delivery),
            },
        }
    }
}

/// One tracking event of the journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    /// Wait before it happens.
    pub wait: Duration,
    pub status: TrackingStatus,
    pub location: String,
    pub description: String,
}

/// The tracking events after the label. The first one is the hand-over: until then the
/// shipment can still be cancelled.
pub fn legs(request: &Requested, outcome: Outcome, delays: Delays) -> Vec<Leg> {
    let leg = |wait, status, location: &str, description: &str| Leg {
        wait,
        status,
        location: location.to_owned(),
        description: description.to_owned(),
    };
    let warehouse = request.ship_from_warehouse.as_str();
    let city = request.ship_to.city.as_str();
    let pickup = request.service_level == "pickup";
    let (near, near_words) = if pickup {
        (
            TrackingStatus::AvailableForPickup,
            "ready for collection at the pickup point",
        )
    } else {
        (TrackingStatus::OutForDelivery, "out for delivery")
    };
    let (end, end_words) = match outcome {
        Outcome::Delivered => (TrackingStatus::Delivered, "delivered to the recipient"),
        Outcome::Failed => (
            TrackingStatus::Failure,
            "the parcel was damaged in transit and cannot be delivered",
        ),
        Outcome::Returned => (
            TrackingStatus::ReturnToSender,
            "the recipient could not be reached; returning to sender",
        ),
    };
    vec![
        leg(
            delays.transit,
            TrackingStatus::InTransit,
            warehouse,
            "picked up from the warehouse",
        ),
        leg(delays.delivery, near, city, near_words),
        leg(delays.delivery, end, city, end_words),
    ]
}

/// A carrier's clock never runs backwards within a shipment: each event is at least a
/// millisecond after the one before.
pub fn next_status_at(previous: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match previous {
        Some(before) if now <= before => before + TimeDelta::milliseconds(1),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracking_number_is_sim_and_twelve_digits_and_stable() {
        let id = Uuid::now_v7();
        let number = tracking_number(id);
        assert_eq!(number.len(), 15);
        assert!(number.starts_with("SIM"));
        assert!(number[3..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(number, tracking_number(id));
        assert_ne!(number, tracking_number(Uuid::now_v7()));
    }

    #[test]
    fn the_roll_decides_between_failure_return_and_delivery() {
        assert_eq!(Outcome::from_roll(0.05, 0.1, 0.2), Outcome::Failed);
        assert_eq!(Outcome::from_roll(0.25, 0.1, 0.2), Outcome::Returned);
        assert_eq!(Outcome::from_roll(0.35, 0.1, 0.2), Outcome::Delivered);
        assert_eq!(Outcome::from_roll(0.999, 0.0, 1.0), Outcome::Returned);
        assert_eq!(Outcome::from_roll(0.0, 0.0, 0.0), Outcome::Delivered);
    }

    #[test]
    fn the_same_seed_draws_the_same_outcomes_and_delays() {
        let base = Delays {
            label: Duration::from_millis(1_000),
            transit: Duration::from_millis(2_000),
            delivery: Duration::from_millis(3_000),
        };
        let draw = |seed| {
            let mut dice = Dice::new(seed);
            (0..50)
                .map(|_| dice.plan(base, 0.2, 0.3, 0.5))
                .collect::<Vec<_>>()
        };
        let first = draw(42);
        assert_eq!(first, draw(42));
        assert_ne!(first, draw(43));
        let failed = first
            .iter()
            .filter(|p| p.outcome == Outcome::Failed)
            .count();
        let returned = first
            .iter()
            .filter(|p| p.outcome == Outcome::Returned)
            .count();
        assert!(
            failed > 0 && returned > 0 && failed + returned < 50,
            "{first:?}"
        );
        for plan in &first {
            let label = plan.delays.label.as_millis();
            assert!((500..=1_500).contains(&label), "{label}");
        }
        let steady = Dice::new(7).plan(base, 0.0, 0.0, 0.0);
        assert_eq!(
            steady,
            Plan {
                outcome: Outcome::Delivered,
                delays: base
            }
        );
    }

    #[test]
    fn status_times_strictly_increase() {
        let now = Utc::now();
        assert_eq!(next_status_at(None, now), now);
        let later = next_status_at(Some(now), now);
        assert!(later > now);
        assert!(next_status_at(Some(later), now) > later);
    }
}
