//! Low stock: a stock row whose available units are at or below its product's reorder point.
//! `stock.low` is published when a row crosses that line going down, once: the row keeps a mark
//! (`low_since`) until it is above the line again, so the next fall is a new crossing.

use chrono::{DateTime, Utc};
use orderflow_messages::stock::Low;
use orderflow_messages::types::Sku;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};

/// Sets or clears the mark of the row (`warehouse`, `sku`) after a change; the `stock.low` to
/// publish when the row just crossed the line.
pub async fn mark(
    conn: &mut PgConnection,
    warehouse: &str,
    sku: &str,
) -> sqlx::Result<Option<Low>> {
    let row: Option<(i64, bool, i64, i64)> = sqlx::query_as(
        "SELECT s.on_hand - s.reserved, s.low_since IS NOT NULL, p.reorder_point, \
         p.reorder_quantity FROM stock s JOIN products p ON p.sku = s.sku \
         WHERE s.warehouse = $1 AND s.sku = $2",
    )
    .bind(warehouse)
    .bind(sku)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((available, marked, reorder_point, reorder_quantity)) = row else {
        return Ok(None);
    };
    let low = reorder_point > 0 && available <= reorder_point;
    if low == marked {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE stock SET low_since = CASE WHEN $3 THEN now() END \
         WHERE warehouse = $1 AND sku = $2",
    )
    .bind(warehouse)
    .bind(sku)
    .bind(low)
    .execute(&mut *conn)
    .await?;
    if !low {
        return Ok(None);
    }
    let Ok(sku) = Sku::parse(sku) else {
        return Ok(None);
    };
    Ok(Some(Low {
        warehouse: warehouse.to_owned(),
        sku,
        available,
        reorder_point,
        reorder_quantity,
    }))
}

/// [`mark`] for several (warehouse, SKU) rows, in the order given.
pub async fn mark_all(
    conn: &mut PgConnection,
    rows: Vec<(String, String)>,
) -> sqlx::Result<Vec<Low>> {
    let mut lows = Vec::new();
    for (warehouse, sku) in &rows {
        lows.extend(mark(&mut *conn, warehouse, sku).await?);
    }
    Ok(lows)
}

/// A row that needs replenishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct Replenishment {
    pub warehouse: String,
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub reorder_point: i64,
    /// The quantity to order, from the product.
    pub reorder_quantity: i64,
    /// Since when it has been low (absent if it never crossed while this service watched).
    pub low_since: Option<DateTime<Utc>>,
}

/// Every row at or below its reorder point, by SKU and warehouse.
pub async fn list(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Replenishment>> {
    sqlx::query_as(
        "SELECT s.warehouse, s.sku, s.on_hand, s.reserved, s.on_hand - s.reserved AS available, \
         p.reorder_point, p.reorder_quantity, s.low_since \
         FROM stock s JOIN products p ON p.sku = s.sku \
         WHERE p.reorder_point > 0 AND s.on_hand - s.reserved <= p.reorder_point \
         ORDER BY s.sku, s.warehouse",
    )
    .fetch_all(db)
    .await
}
