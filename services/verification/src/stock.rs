//! Stock per (warehouse, SKU) and its ledger: receipts and adjustments from people, and the
//! availability that reservations are planned from.
//!
//! Every change of a stock row writes a `stock_movements` row in the same transaction. Rows are
//! changed in (warehouse, SKU) order so that concurrent writers queue instead of deadlocking; the
//! table's CHECK constraints, not this code, are the last word on "never negative".

use chrono::{DateTime, Utc};
use orderflow_messages::Envelope;
use orderflow_messages::types::Sku;
use orderflow_runtime::outbox::enqueue;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::allocation::Availability;
use crate::warehouse;

/// The columns a [`Level`] is read from.
macro_rules! level_columns {
    () => {
        "warehouse, sku, on_hand, reserved, on_hand - reserved AS available, updated_at"
    };
}

/// One stock row as people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct Level {
    pub warehouse: String,
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// `on_hand - reserved`: what new orders may take.
    pub available: i64,
    pub updated_at: DateTime<Utc>,
}

/// One ledger entry.
#[derive(Debug, Clone)]
pub struct Movement<'a> {
    pub warehouse: &'a str,
    pub sku: &'a str,
    pub delta_on_hand: i64,
    pub delta_reserved: i64,
    pub reason: &'a str,
    pub order_id: Option<Uuid>,
}

pub async fn record(db: impl PgExecutor<'_>, m: &Movement<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO stock_movements \
         (warehouse, sku, delta_on_hand, delta_reserved, reason, order_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(m.warehouse)
    .bind(m.sku)
    .bind(m.delta_on_hand)
    .bind(m.delta_reserved)
    .bind(m.reason)
    .bind(m.order_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Units free to reserve of `skus` in every warehouse. With `lock`, the rows are locked in
/// (warehouse, SKU) order until the transaction ends, so the figures stay true while the caller
/// reserves from them.
pub async fn availability(
    conn: &mut PgConnection,
    skus: &[String],
    lock: bool,
) -> sqlx::Result<Availability> {
    let query = if lock {
        "SELECT warehouse, sku, on_hand - reserved FROM stock WHERE sku = ANY($1) \
         ORDER BY warehouse, sku FOR UPDATE"
    } else {
        "SELECT warehouse, sku, on_hand - reserved FROM stock WHERE sku = ANY($1)"
    };
    let rows: Vec<(String, String, i64)> = sqlx::query_as(query)
        .bind(skus)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(|(w, s, n)| ((w, s), n)).collect())
}

/// Stock rows, optionally of one SKU and/or one warehouse, in (SKU, warehouse) order.
pub async fn levels(
    pool: &PgPool,
    sku: Option<&str>,
    warehouse: Option<&str>,
) -> anyhow::Result<Vec<Level>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        level_columns!(),
        " FROM stock WHERE ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR warehouse = $2) \
         ORDER BY sku, warehouse"
    ))
    .bind(sku)
    .bind(warehouse)
    .fetch_all(pool)
    .await?)
}

/// Why a receipt or an adjustment was refused.
#[derive(Debug, thiserror::Error)]
pub enum StockChangeError {
    #[error("warehouse `{0}` does not exist")]
    UnknownWarehouse(String),
    /// (index of the line, SKU) of every line whose SKU is not in the catalogue.
    #[error("SKUs not in the catalogue: {0:?}")]
    UnknownSkus(Vec<(usize, String)>),
    #[error("on hand would become {on_hand_after}, below the {reserved} reserved or zero")]
    BelowReserved { on_hand_after: i64, reserved: i64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StockChangeError {
    fn from(e: sqlx::Error) -> Self {
        StockChangeError::Unexpected(e.into())
    }
}

/// A line of goods received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptLine {
    pub sku: Sku,
    /// Always positive.
    pub quantity: i64,
}

async fn unknown_skus(
    conn: &mut PgConnection,
    skus: &[&Sku],
) -> sqlx::Result<Vec<(usize, String)>> {
    let wanted: Vec<&str> = skus.iter().map(|s| s.as_str()).collect();
    let known: Vec<String> = sqlx::query_scalar("SELECT sku FROM products WHERE sku = ANY($1)")
        .bind(&wanted)
        .fetch_all(&mut *conn)
        .await?;
    Ok(wanted
        .iter()
        .enumerate()
        .filter(|(_, s)| !known.iter().any(|k| k == *s))
        .map(|(i, s)| (i, (*s).to_owned()))
        .collect())
}

/// Adds received goods to `warehouse`'s stock; the levels after, in the lines' order. The
/// ledger says `receipt`, followed by `note` if given (a delivery note number, …).
pub async fn receive(
    pool: &PgPool,
    warehouse_code: &str,
    lines: &[ReceiptLine],
    note: Option<&str>,
) -> Result<Vec<Level>, StockChangeError> {
    let reason = match note {
        Some(note) => format!("receipt: {note}"),
        None => "receipt".to_owned(),
    };
    let mut tx = pool.begin().await?;
    if !warehouse::exists(&mut *tx, warehouse_code).await? {
        return Err(StockChangeError::UnknownWarehouse(
            warehouse_code.to_owned(),
        ));
    }
    let skus: Vec<&Sku> = lines.iter().map(|l| &l.sku).collect();
    let unknown = unknown_skus(&mut tx, &skus).await?;
    if !unknown.is_empty() {
        return Err(StockChangeError::UnknownSkus(unknown));
    }
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|a, b| lines[*a].sku.cmp(&lines[*b].sku));
    let mut levels: Vec<Option<Level>> = vec![None; lines.len()];
    for i in order {
        let line = &lines[i];
        let level: Level = sqlx::query_as(concat!(
            "INSERT INTO stock AS s (warehouse, sku, on_hand) VALUES ($1, $2, $3) \
             ON CONFLICT (warehouse, sku) DO UPDATE \
             SET on_hand = s.on_hand + EXCLUDED.on_hand, updated_at = now() RETURNING ",
            level_columns!()
        ))
        .bind(warehouse_code)
        .bind(line.sku.as_str())
        .bind(line.quantity)
        .fetch_one(&mut *tx)
        .await?;
        record(
            &mut *tx,
            &Movement {
                warehouse: warehouse_code,
                sku: line.sku.as_str(),
                delta_on_hand: line.quantity,
                delta_reserved: 0,
                reason: &reason,
                order_id: None,
            },
        )
        .await?;
        // A receipt only raises stock: this can end a low mark, never start one.
        crate::low_stock::mark(&mut tx, warehouse_code, line.sku.as_str()).await?;
        levels[i] = Some(level);
    }
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok(levels.into_iter().flatten().collect())
}

/// Corrects `warehouse`'s stock of `sku` by `delta` (a count, breakage, a found box, …), booked
/// as `adjustment: <reason>`. On hand may not fall below what is reserved, nor below zero.
pub async fn adjust(
    pool: &PgPool,
    warehouse_code: &str,
    sku: &Sku,
    delta: i64,
    reason: &str,
) -> Result<Level, StockChangeError> {
    let reason = format!("adjustment: {reason}");
    let mut tx = pool.begin().await?;
    if !warehouse::exists(&mut *tx, warehouse_code).await? {
        return Err(StockChangeError::UnknownWarehouse(
            warehouse_code.to_owned(),
        ));
    }
    let unknown = unknown_skus(&mut tx, &[sku]).await?;
    if !unknown.is_empty() {
        return Err(StockChangeError::UnknownSkus(unknown));
    }
    // Make sure the row exists, then lock it: the check and the change must see the same row.
    sqlx::query("INSERT INTO stock (warehouse, sku) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(warehouse_code)
        .bind(sku.as_str())
        .execute(&mut *tx)
        .await?;
    let (on_hand, reserved): (i64, i64) = sqlx::query_as(
        "SELECT on_hand, reserved FROM stock WHERE warehouse = $1 AND sku = $2 FOR UPDATE",
    )
    .bind(warehouse_code)
    .bind(sku.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let on_hand_after = on_hand.saturating_add(delta);
    if on_hand_after < reserved || on_hand_after < 0 {
        return Err(StockChangeError::BelowReserved {
            on_hand_after,
            reserved,
        });
    }
    let level: Level = sqlx::query_as(concat!(
        "UPDATE stock SET on_hand = on_hand + $3, updated_at = now() \
         WHERE warehouse = $1 AND sku = $2 RETURNING ",
        level_columns!()
    ))
    .bind(warehouse_code)
    .bind(sku.as_str())
    .bind(delta)
    .fetch_one(&mut *tx)
    .await?;
    record(
        &mut *tx,
        &Movement {
            warehouse: warehouse_code,
            sku: sku.as_str(),
            delta_on_hand: delta,
            delta_reserved: 0,
            reason: &reason,
            order_id: None,
        },
    )
    .await?;
    if let Some(low) = crate::low_stock::mark(&mut tx, warehouse_code, sku.as_str()).await? {
        // No order caused it: the envelope's order id is the nil UUID.
        let envelope = Envelope::new(crate::NAME, Uuid::nil(), low);
        enqueue(&mut tx, &envelope, None).await?;
    }
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok(level)
}
