//! What verification remembers of each order: its decision and where the order went since. The
//! record's primary key makes a second `order.placed` for a decided order a no-op, whatever its
//! message id.

use orderflow_messages::order::Reason;
use orderflow_messages::types::Currency;
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

/// The order's status as verification sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Checked and reserved; `order.verified` was published.
    Verified,
    /// Refused; `order.rejected` was published.
    Rejected,
    /// Cancelled before packing (or before it was even decided): nothing is held for it.
    Cancelled,
    /// Packed: its goods left the shelves.
    Shipped,
    /// Its delivery failed and the goods are back in stock.
    Returned,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Verified,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
        OrderStatus::Shipped,
        OrderStatus::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Verified => "verified",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Returned => "returned",
        }
    }

    /// The transitions an existing record may make. (A record is born verified, rejected or
    /// cancelled.)
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Verified, Cancelled) | (Verified, Shipped) | (Shipped, Returned)
        )
    }
}

pub async fn is_known(db: impl PgExecutor<'_>, order_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE order_id = $1)")
        .bind(order_id)
        .fetch_one(db)
        .await
}

/// Records the decision for `order_id` unless one exists; `false` if another message (perhaps
/// on another replica, at the same moment) decided first.
pub async fn insert(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    status: OrderStatus,
    subtotal: Option<(i64, &Currency)>,
    reasons: &[Reason],
) -> sqlx::Result<bool> {
    let reasons = (!reasons.is_empty()).then_some(Json(reasons));
    let inserted = sqlx::query(
        "INSERT INTO orders (order_id, status, currency, subtotal, reasons) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(subtotal.map(|(_, c)| c.as_str()))
    .bind(subtotal.map(|(amount, _)| amount))
    .bind(reasons)
    .execute(db)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Moves the record from `from` to `to` if it is in `from`; `false` otherwise (or if the
/// transition is not one a record may make).
pub async fn transition(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    from: OrderStatus,
    to: OrderStatus,
) -> sqlx::Result<bool> {
    if !from.can_become(to) {
        return Ok(false);
    }
    let changed = sqlx::query(
        "UPDATE orders SET status = $3, updated_at = now() WHERE order_id = $1 AND status = $2",
    )
    .bind(order_id)
    .bind(from.as_str())
    .bind(to.as_str())
    .execute(db)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};

    #[test]
    fn only_the_journeys_of_goods_are_allowed_transitions() {
        let allowed = [
            (Verified, Cancelled),
            (Verified, Shipped),
            (Shipped, Returned),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{} -> {}",
                    from.as_str(),
                    to.as_str()
                );
            }
        }
    }
}
