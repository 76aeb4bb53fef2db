//! The order's lifecycle as data: its statuses, which event asks for which status, and the one
//! rule that decides whether a status may change.
//!
//! The main line is `placed → verified → packed → shipped → delivered → invoiced → paid →
//! completed`. Events travel through several services and may arrive late or out of order, so a
//! status only moves *forward* along that line: an `order.verified` that arrives after
//! `order.shipped` is kept in the timeline but leaves the status alone. Beside the line sit
//! `backordered` (valid but waiting for stock, only before verification) and `on_hold` (needs a
//! person). An order on hold keeps its place on the line in [`Stage::progress`], and an event
//! further along releases it: the journey evidently went on. `rejected`, `cancelled` and
//! `completed` are terminal.

use orderflow_messages::{Event, order, payment};

/// What customers and ops see as the order's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Placed,
    Backordered,
    Verified,
    Packed,
    Shipped,
    Delivered,
    Invoiced,
    Paid,
    Completed,
    OnHold,
    Rejected,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 12] = [
        Status::Placed,
        Status::Backordered,
        Status::Verified,
        Status::Packed,
        Status::Shipped,
        Status::Delivered,
        Status::Invoiced,
        Status::Paid,
        Status::Completed,
        Status::OnHold,
        Status::Rejected,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Placed => "placed",
            Status::Backordered => "backordered",
            Status::Verified => "verified",
            Status::Packed => "packed",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Invoiced => "invoiced",
            Status::Paid => "paid",
            Status::Completed => "completed",
            Status::OnHold => "on_hold",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Position on the main line; `None` for the side and off-line statuses.
    fn rank(self) -> Option<u8> {
        match self {
            Status::Placed => Some(0),
            Status::Verified => Some(1),
            Status::Packed => Some(2),
            Status::Shipped => Some(3),
            Status::Delivered => Some(4),
            Status::Invoiced => Some(5),
            Status::Paid => Some(6),
            Status::Completed => Some(7),
            Status::Backordered | Status::OnHold | Status::Rejected | Status::Cancelled => None,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Rejected | Status::Cancelled
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an order stands: the status shown, and the furthest main-line status it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub status: Status,
    /// Always a main-line status; equals `status` unless the order is beside the line.
    pub progress: Status,
}

impl Stage {
    pub const PLACED: Stage = Stage {
        status: Status::Placed,
        progress: Status::Placed,
    };

    /// Whether the order has been handed to a carrier (it reached `shipped` or beyond, even if
    /// it is on hold or cancelled since): the point of no return for a cancellation.
    pub fn has_shipped(self) -> bool {
        self.progress.rank() >= Status::Shipped.rank()
    }

    /// Whether a cancellation may still be asked for: not once finished, nor once handed to a
    /// carrier (shipping would refuse it).
    pub fn may_cancel(self) -> bool {
        !self.status.is_terminal() && !self.has_shipped()
    }

    /// Whether the goods reached the customer (`delivered` or beyond).
    pub fn has_delivered(self) -> bool {
        self.progress.rank() >= Status::Delivered.rank()
    }

    /// Whether billing issued the invoice: the payment method is fixed from then on.
    pub fn is_invoiced(self) -> bool {
        self.progress.rank() >= Status::Invoiced.rank()
    }

    /// The stage after an event asking for `target`, or `None` when the status must not change
    /// (the event is late, repeats the current status, or the order is finished).
    pub fn advance(self, target: Status) -> Option<Stage> {
        if self.status.is_terminal() || target == self.status {
            return None;
        }
        let beside = |status| Stage {
            status,
            progress: self.progress,
        };
        let before_verification = self.progress == Status::Placed;
        match target {
            Status::Cancelled | Status::OnHold => Some(beside(target)),
            // Only verification rejects or backorders, and it does so before verifying.
            Status::Rejected | Status::Backordered => before_verification.then(|| beside(target)),
            line => {
                let forward = matches!(
                    (line.rank(), self.progress.rank()),
                    (Some(to), Some(from)) if to > from
                );
                forward.then_some(Stage {
                    status: line,
                    progress: line,
                })
            }
        }
    }
}

/// Which event asks for which status. Events not listed here go to the timeline only.
const EVENT_STATUS: &[(&str, Status)] = &[
    (order::Verified::TYPE, Status::Verified),
    (order::Rejected::TYPE, Status::Rejected),
    (order::Backordered::TYPE, Status::Backordered),
    (order::Packed::TYPE, Status::Packed),
    (order::Shipped::TYPE, Status::Shipped),
    (order::Delivered::TYPE, Status::Delivered),
    (order::Invoiced::TYPE, Status::Invoiced),
    (order::Paid::TYPE, Status::Paid),
    (order::OnHold::TYPE, Status::OnHold),
    (order::Cancelled::TYPE, Status::Cancelled),
    (order::DeliveryFailed::TYPE, Status::OnHold),
    (payment::Failed::TYPE, Status::OnHold),
];

/// The status the event `kind` asks for, if any.
pub fn target_of(kind: &str) -> Option<Status> {
    EVENT_STATUS
        .iter()
        .find(|(event, _)| *event == kind)
        .map(|(_, status)| *status)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN_LINE: [Status; 8] = [
        Status::Placed,
        Status::Verified,
        Status::Packed,
        Status::Shipped,
        Status::Delivered,
        Status::Invoiced,
        Status::Paid,
        Status::Completed,
    ];

    /// Every stage an order can be in, written `status` or `status@progress` when beside the line.
    fn every_stage() -> Vec<Stage> {
        let mut stages: Vec<Stage> = MAIN_LINE
            .iter()
            .map(|&s| Stage {
                status: s,
                progress: s,
            })
            .collect();
        let beside = |status, progress| Stage { status, progress };
        stages.push(beside(Status::Backordered, Status::Placed));
        stages.push(beside(Status::Rejected, Status::Placed));
        for &progress in &MAIN_LINE[..7] {
            stages.push(beside(Status::OnHold, progress));
            stages.push(beside(Status::Cancelled, progress));
        }
        stages
    }

    fn name(stage: Stage) -> String {
        if stage.status == stage.progress {
            stage.status.to_string()
        } else {
            format!("{}@{}", stage.status, stage.progress)
        }
    }

    /// The legal moves, written out by hand: everything not listed here must be refused.
    const LEGAL: &[(&str, &str)] = &[
        (
            "placed",
            "backordered verified packed shipped delivered invoiced paid completed on_hold rejected cancelled",
        ),
        (
            "verified",
            "packed shipped delivered invoiced paid completed on_hold cancelled",
        ),
        (
            "packed",
            "shipped delivered invoiced paid completed on_hold cancelled",
        ),
        (
            "shipped",
            "delivered invoiced paid completed on_hold cancelled",
        ),
        ("delivered", "invoiced paid completed on_hold cancelled"),
        ("invoiced", "paid completed on_hold cancelled"),
        ("paid", "completed on_hold cancelled"),
        ("completed", ""),
        (
            "backordered@placed",
            "verified packed shipped delivered invoiced paid completed on_hold rejected cancelled",
        ),
        ("rejected@placed", ""),
        (
            "on_hold@placed",
            "backordered verified packed shipped delivered invoiced paid completed rejected cancelled",
        ),
        (
            "on_hold@verified",
            "packed shipped delivered invoiced paid completed cancelled",
        ),
        (
            "on_hold@packed",
            "shipped delivered invoiced paid completed cancelled",
        ),
        (
            "on_hold@shipped",
            "delivered invoiced paid completed cancelled",
        ),
        ("on_hold@delivered", "invoiced paid completed cancelled"),
        ("on_hold@invoiced", "paid completed cancelled"),
        ("on_hold@paid", "completed cancelled"),
        ("cancelled@placed", ""),
        ("cancelled@verified", ""),
        ("cancelled@packed", ""),
        ("cancelled@shipped", ""),
        ("cancelled@delivered", ""),
        ("cancelled@invoiced", ""),
        ("cancelled@paid", ""),
    ];

    #[test]
    fn every_illegal_transition_is_refused_and_every_legal_one_allowed() {
        let stages = every_stage();
        assert_eq!(stages.len(), LEGAL.len(), "the table covers every stage");
        for stage in stages {
            let (_, legal) = LEGAL
                .iter()
                .find(|(s, _)| *s == name(stage))
                .unwrap_or_else(|| panic!("{} is missing from LEGAL", name(stage)));
            let legal: Vec<&str> = legal.split_whitespace().collect();
            for target in Status::ALL {
                let moved = stage.advance(target);
                if legal.contains(&target.as_str()) {
                    let moved = moved
                        .unwrap_or_else(|| panic!("{} → {target} should be allowed", name(stage)));
                    assert_eq!(moved.status, target);
                } else {
                    assert_eq!(moved, None, "{} → {target} must be refused", name(stage));
                }
            }
        }
    }

    #[test]
    fn a_hold_keeps_the_orders_place_and_a_step_beyond_it_releases_the_hold() {
        let shipped = Stage {
            status: Status::Shipped,
            progress: Status::Shipped,
        };
        let held = shipped.advance(Status::OnHold).expect("hold");
        assert_eq!(held.progress, Status::Shipped);
        assert_eq!(held.advance(Status::Verified), None, "late event");
        let delivered = held.advance(Status::Delivered).expect("released");
        assert_eq!(delivered.status, Status::Delivered);
        assert_eq!(delivered.progress, Status::Delivered);
    }

    #[test]
    fn an_order_may_be_cancelled_until_it_is_handed_to_a_carrier() {
        let cancellable: Vec<String> = every_stage()
            .into_iter()
            .filter(|s| s.may_cancel())
            .map(name)
            .collect();
        assert_eq!(
            cancellable,
            [
                "placed",
                "verified",
                "packed",
                "backordered@placed",
                "on_hold@placed",
                "on_hold@verified",
                "on_hold@packed",
            ]
        );
    }

    #[test]
    fn events_ask_for_the_statuses_of_the_lifecycle() {
        assert_eq!(target_of("order.verified"), Some(Status::Verified));
        assert_eq!(target_of("order.delivery_failed"), Some(Status::OnHold));
        assert_eq!(target_of("payment.failed"), Some(Status::OnHold));
        assert_eq!(target_of("payment.authorized"), None);
        assert_eq!(target_of("order.completed"), None);
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
    }
}
