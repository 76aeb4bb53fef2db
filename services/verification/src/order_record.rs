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
    /// Cancelled after packing: its parcels were unpacked and the goods are back in stock.
    Unpacked,
    /// Waiting for stock: of the whole order (never verified yet), or of the units a short
    /// pick did not find.
    Backordered,
    /// Waited too long for stock, or a short pick cannot be made good: a person decides. It is
    /// still filled if stock arrives first.
    OnHold,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Verified,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
        OrderStatus::Shipped,
        OrderStatus::Returned,
        OrderStatus::Unpacked,
        OrderStatus::Backordered,
        OrderStatus::OnHold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Verified => "verified",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Returned => "returned",
            OrderStatus::Unpacked => "unpacked",
            OrderStatus::Backordered => "backordered",
            OrderStatus::OnHold => "on_hold",
        }
    }

    /// The transitions an existing record may make. (A record is born verified — while it is
    /// being decided —, rejected or cancelled.) Packing an order that waits for the missing
    /// units of a short pick ships it without them.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (
                Verified,
                Rejected | Backordered | Cancelled | Shipped | OnHold
            ) | (
                Backordered,
                Verified | Rejected | Cancelled | Shipped | OnHold
            ) | (OnHold, Verified | Rejected | Cancelled | Shipped)
                | (Shipped, Returned | Unpacked)
        )
    }

    /// The statuses a record may reach `to` from.
    pub fn sources(to: OrderStatus) -> Vec<&'static str> {
        OrderStatus::ALL
            .into_iter()
            .filter(|from| from.can_become(to))
            .map(OrderStatus::as_str)
            .collect()
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

/// Moves the record to `to` from whichever status may reach it; the status it left, or `None`
/// when it was in none of them (a late or repeated message).
pub async fn advance(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    to: OrderStatus,
) -> sqlx::Result<Option<OrderStatus>> {
    let left: Option<String> = sqlx::query_scalar(
        "UPDATE orders o SET status = $2, updated_at = now() \
         FROM (SELECT status FROM orders WHERE order_id = $1 FOR UPDATE) old \
         WHERE o.order_id = $1 AND o.status = ANY($3) RETURNING old.status",
    )
    .bind(order_id)
    .bind(to.as_str())
    .bind(OrderStatus::sources(to))
    .fetch_optional(db)
    .await?;
    Ok(left.and_then(|s| OrderStatus::ALL.into_iter().find(|o| o.as_str() == s)))
}

/// The record's status, locked until the transaction ends.
pub async fn lock(db: impl PgExecutor<'_>, order_id: Uuid) -> sqlx::Result<Option<OrderStatus>> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM orders WHERE order_id = $1 FOR UPDATE")
            .bind(order_id)
            .fetch_optional(db)
            .await?;
    Ok(status.and_then(|s| OrderStatus::ALL.into_iter().find(|o| o.as_str() == s)))
}

/// Records a verified order's value.
pub async fn set_subtotal(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    subtotal: i64,
    currency: &Currency,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET subtotal = $2, currency = $3, updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(subtotal)
    .bind(currency.as_str())
    .execute(db)
    .await?;
    Ok(())
}

/// Records why the order was rejected.
pub async fn set_reasons(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    reasons: &[Reason],
) -> sqlx::Result<()> {
    sqlx::query("UPDATE orders SET reasons = $2, updated_at = now() WHERE order_id = $1")
        .bind(order_id)
        .bind(Json(reasons))
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};

    #[test]
    fn only_the_journeys_of_goods_are_allowed_transitions() {
        let allowed = [
            (Verified, Rejected),
            (Verified, Backordered),
            (Verified, Cancelled),
            (Verified, Shipped),
            (Verified, OnHold),
            (Backordered, Verified),
            (Backordered, Rejected),
            (Backordered, Cancelled),
            (Backordered, Shipped),
            (Backordered, OnHold),
            (OnHold, Verified),
            (OnHold, Rejected),
            (OnHold, Cancelled),
            (OnHold, Shipped),
            (Shipped, Returned),
            (Shipped, Unpacked),
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
