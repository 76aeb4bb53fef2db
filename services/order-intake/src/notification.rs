//! Telling people about status changes. Each change becomes one row in `deliveries` per sink —
//! the log sink always, and every webhook the order's shop subscribed — written in the same
//! transaction as the change, so a change is never announced without having happened, nor lost.
//! The [`delivery`](crate::delivery) worker sends them.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::lifecycle::Status;

/// The announcement that order `order_id` is now `status`, caused by `message_id`. It is
/// queued by [`journey::record`](crate::journey::record), once for the log sink and once for
/// each webhook of the order's shop, in the statement that moves the order.
pub fn status_changed(order_id: Uuid, status: Status, message_id: Uuid) -> Value {
    json!({
        "event": "order.status_changed",
        "order_id": order_id,
        "status": status.as_str(),
        "message_id": message_id,
    })
}
