//! Backorders: orders waiting for stock, and what happens when it arrives or does not.
//!
//! Two kinds wait: an order that could not be verified for want of stock (every short product
//! allows backorder; `order.verified` follows when it can be served), and an order verified
//! earlier whose pick came up short (`order.reallocated` follows, see
//! [`crate::short_pick`]). Both are looked at again, oldest first, right after a receipt or an
//! adjustment and every `backorder_recheck_seconds`; one that waited longer than
//! `backorder_hold_after_seconds` goes `on_hold` for a person, and is still filled if stock
//! arrives before they decide.
//!
//! First come, first served: one replica at a time refills (a transaction-scoped advisory
//! lock), in the order the orders started waiting. An order that still cannot be served does
//! not block younger ones that can.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use orderflow_messages::order::{self, Placed, Reason, ShortLine};
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::HandleError;
use orderflow_runtime::outbox::enqueue;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::NAME;
use crate::decision::{self, Decision};
use crate::order_record::{self, OrderStatus};
use crate::pricing::reason;
use crate::settings::VerificationSettings;
use crate::stock;

/// The advisory lock that makes refills take turns ("bkor").
const REFILL_LOCK: i64 = 0x626b_6f72;

async fn publish<E: Event>(
    conn: &mut PgConnection,
    cause: &Envelope<Value>,
    payload: E,
) -> anyhow::Result<()> {
    enqueue(conn, &Envelope::caused_by(NAME, cause, payload), None).await
}

/// Puts the order in `status` (backordered or on hold) waiting for `lines`, started by
/// `cause`. A second wait of the same order (another short pick) adds its lines and keeps the
/// time it started waiting.
pub async fn wait(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: OrderStatus,
    cause: &Envelope<Value>,
    lines: &[ShortLine],
    short_warehouse: Option<&str>,
) -> Result<(), HandleError> {
    sqlx::query(
        "UPDATE orders SET cause = coalesce(cause, $2), \
         backorder = coalesce(backorder, '[]'::jsonb) || $3, \
         short_warehouse = coalesce(short_warehouse, $4), \
         backordered_at = coalesce(backordered_at, now()), updated_at = now() \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(Json(cause))
    .bind(Json(lines))
    .bind(short_warehouse)
    .execute(&mut *conn)
    .await?;
    // After the fields: a waiting record must say what it waits for (a CHECK constraint).
    order_record::advance(&mut *conn, order_id, status).await?;
    Ok(())
}

/// Ends the wait: the order is served.
async fn served(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET backorder = NULL, short_warehouse = NULL, backordered_at = NULL, \
         updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// An order waiting for stock, as stored.
#[derive(sqlx::FromRow)]
struct WaitingRow {
    order_id: Uuid,
    cause: Json<Envelope<Value>>,
    backorder: Json<Vec<ShortLine>>,
    short_warehouse: Option<String>,
}

struct Waiting {
    order_id: Uuid,
    cause: Envelope<Value>,
    lines: Vec<ShortLine>,
    short_warehouse: Option<String>,
}

/// Looks at every waiting order (of `skus` when given), oldest first, and serves those the
/// stock now allows; the number served.
pub async fn refill(
    pool: &PgPool,
    settings: &VerificationSettings,
    skus: Option<Vec<String>>,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(REFILL_LOCK)
        .execute(&mut *tx)
        .await?;
    let rows: Vec<WaitingRow> = sqlx::query_as(
        "SELECT order_id, cause, backorder, short_warehouse FROM orders \
             WHERE status IN ('backordered', 'on_hold') AND ($1::text[] IS NULL OR EXISTS ( \
                 SELECT 1 FROM jsonb_array_elements(backorder) l WHERE l->>'sku' = ANY($1))) \
             ORDER BY backordered_at, order_id FOR UPDATE",
    )
    .bind(&skus)
    .fetch_all(&mut *tx)
    .await
    .context("reading backorders")?;
    let mut served_count = 0;
    for row in rows {
        let order_id = row.order_id;
        let waiting = Waiting {
            order_id,
            cause: row.cause.0,
            lines: row.backorder.0,
            short_warehouse: row.short_warehouse,
        };
        if !enough_in_stock(&mut tx, &waiting).await? {
            continue;
        }
        match try_serve(&mut tx, settings, &waiting).await {
            Ok(true) => served_count += 1,
            Ok(false) => {}
            Err(HandleError::Permanent(why)) => {
                tracing::warn!(%order_id, why, "backorder cannot be re-verified; left waiting");
            }
            Err(HandleError::Transient(e)) => return Err(e),
        }
    }
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok(served_count)
}

/// A cheap first look: is there, all warehouses together, at least what the order waits for?
async fn enough_in_stock(conn: &mut PgConnection, waiting: &Waiting) -> anyhow::Result<bool> {
    let mut needed: BTreeMap<String, i64> = BTreeMap::new();
    for line in &waiting.lines {
        *needed.entry(line.sku.as_str().to_owned()).or_default() += i64::from(line.missing);
    }
    let skus: Vec<String> = needed.keys().cloned().collect();
    let available = stock::availability(conn, &skus, false).await?;
    Ok(needed.iter().all(|(sku, n)| {
        available
            .iter()
            .filter(|((_, s), _)| s == sku)
            .map(|(_, free)| (*free).max(0))
            .sum::<i64>()
            >= *n
    }))
}

/// Serves one waiting order if the stock allows; whether it left the wait.
async fn try_serve(
    conn: &mut PgConnection,
    settings: &VerificationSettings,
    waiting: &Waiting,
) -> Result<bool, HandleError> {
    let order_id = waiting.order_id;
    let cause = &waiting.cause;
    if let Some(short_warehouse) = &waiting.short_warehouse {
        let Some((reservations, lows)) =
            decision::reallocate(&mut *conn, order_id, &waiting.lines, None).await?
        else {
            return Ok(false);
        };
        order_record::advance(&mut *conn, order_id, OrderStatus::Verified).await?;
        served(&mut *conn, order_id).await?;
        let reallocated = order::Reallocated {
            warehouse: short_warehouse.clone(),
            reservations,
        };
        publish(conn, cause, reallocated).await?;
        for low in lows {
            publish(conn, cause, low).await?;
        }
        return Ok(true);
    }
    let placed: Placed = cause.decode().map_err(|e| {
        HandleError::Permanent(format!("stored order.placed of {order_id}: {}", e.0))
    })?;
    match decision::decide(&mut *conn, settings, order_id, &placed).await? {
        Decision::Verified { verified, lows } => {
            order_record::advance(&mut *conn, order_id, OrderStatus::Verified).await?;
            order_record::set_subtotal(
                &mut *conn,
                order_id,
                verified.subtotal.amount,
                &verified.currency,
            )
            .await?;
            served(&mut *conn, order_id).await?;
            publish(conn, cause, *verified).await?;
            for low in lows {
                publish(conn, cause, low).await?;
            }
            Ok(true)
        }
        Decision::Rejected(mut reasons) => {
            reasons.sort_by_key(|r| r.line_no);
            order_record::advance(&mut *conn, order_id, OrderStatus::Rejected).await?;
            order_record::set_reasons(&mut *conn, order_id, &reasons).await?;
            served(&mut *conn, order_id).await?;
            publish(conn, cause, order::Rejected { reasons }).await?;
            Ok(true)
        }
        Decision::Backordered(lines) => {
            sqlx::query("UPDATE orders SET backorder = $2 WHERE order_id = $1")
                .bind(order_id)
                .bind(Json(&lines))
                .execute(&mut *conn)
                .await?;
            Ok(false)
        }
    }
}

/// An order waiting for stock, as people see it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Backorder {
    pub order_id: Uuid,
    /// `backordered`, or `on_hold` when it waited too long or a short pick cannot be made good.
    pub status: String,
    /// The lines short of stock.
    #[schema(value_type = Vec<crate::openapi::ShortLineSchema>)]
    pub lines: Json<Vec<ShortLine>>,
    /// Set when the order was verified and a pick in this warehouse came up short.
    pub short_warehouse: Option<String>,
    pub waiting_since: chrono::DateTime<chrono::Utc>,
}

/// Every waiting order, oldest first: the order they are served in.
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<Backorder>> {
    sqlx::query_as(
        "SELECT order_id, status, backorder AS lines, short_warehouse, \
         backordered_at AS waiting_since FROM orders \
         WHERE status IN ('backordered', 'on_hold') ORDER BY backordered_at, order_id",
    )
    .fetch_all(pool)
    .await
}

/// Puts every backorder older than the configured time on hold; how many.
pub async fn hold_overdue(pool: &PgPool, settings: &VerificationSettings) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let overdue: Vec<WaitingRow> = sqlx::query_as(
        "UPDATE orders SET status = 'on_hold', updated_at = now() \
         WHERE status = 'backordered' \
         AND backordered_at < now() - make_interval(secs => $1::double precision) \
         RETURNING order_id, cause, backorder, short_warehouse",
    )
    .bind(settings.backorder_hold_after_seconds as f64)
    .fetch_all(&mut *tx)
    .await
    .context("holding overdue backorders")?;
    let count = overdue.len();
    for WaitingRow {
        cause, backorder, ..
    } in overdue
    {
        let lines = backorder;
        let waiting_for: Vec<String> = lines
            .0
            .iter()
            .map(|l| format!("{} × {}", l.missing, l.sku))
            .collect();
        let reason: Reason = reason(
            "backorder_overdue",
            lines.0.first().map(|l| l.line_no),
            None,
            format!(
                "waited more than {} s for stock ({}); cancel it or keep waiting",
                settings.backorder_hold_after_seconds,
                waiting_for.join(", ")
            ),
        );
        let on_hold = order::OnHold {
            stage: NAME.to_owned(),
            reason,
        };
        publish(&mut tx, &cause.0, on_hold).await?;
    }
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok(count)
}

/// Refills and holds overdue backorders every `backorder_recheck_seconds` until the pool closes
/// (the service's shutdown closes it last).
pub fn spawn_sweeper(pool: PgPool, settings: VerificationSettings) {
    let every = Duration::from_secs(settings.backorder_recheck_seconds.max(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = hold_overdue(&pool, &settings).await {
                tracing::warn!(error = format!("{e:#}"), "holding overdue backorders");
            }
            if let Err(e) = refill(&pool, &settings, None).await {
                tracing::warn!(error = format!("{e:#}"), "refilling backorders");
            }
        }
    });
}
