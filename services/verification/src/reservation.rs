//! Reservations: stock held for an order's lines, and how each one ends. A reservation is
//! `reserved` until the order is cancelled (`released`: the stock is free again) or packed
//! (`shipped`: the goods left the shelf); shipped goods that come back are `returned` to stock,
//! and the parcels of an order cancelled after packing are `unpacked` back onto the shelf. A
//! short pick shrinks a reservation by the units that were not there.

use std::collections::BTreeMap;

use orderflow_messages::order::Reservation;
use orderflow_messages::types::Sku;
use orderflow_runtime::HandleError;
use orderflow_runtime::database::is_code;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::stock::{self, Movement};

/// A stock row an order reserved from, with what was free before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    pub warehouse: String,
    pub sku: String,
    pub available_before: i64,
    pub available_after: i64,
}

/// The outcome of [`hold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Everything is reserved.
    Done(Vec<Touched>),
    /// This stock row no longer had enough free; the caller must undo what was reserved.
    Short { warehouse: String, sku: String },
}

/// Units per (warehouse, SKU), in the order rows are locked in.
fn per_stock_row<'a>(
    reservations: impl IntoIterator<Item = &'a Reservation>,
) -> BTreeMap<(&'a str, &'a str), i64> {
    let mut totals = BTreeMap::new();
    for r in reservations {
        *totals
            .entry((r.warehouse.as_str(), r.sku.as_str()))
            .or_default() += i64::from(r.quantity);
    }
    totals
}

/// Reserves `reservations` for `order_id` (whose order record must exist). Each stock row is
/// changed once, in (warehouse, SKU) order, by an UPDATE that only succeeds while enough is free,
/// so two replicas can never promise the same unit twice.
pub async fn hold(
    conn: &mut PgConnection,
    order_id: Uuid,
    reservations: &[Reservation],
) -> sqlx::Result<Held> {
    let mut touched = Vec::new();
    for ((warehouse, sku), quantity) in per_stock_row(reservations) {
        let after: Option<i64> = sqlx::query_scalar(
            "UPDATE stock SET reserved = reserved + $3, updated_at = now() \
             WHERE warehouse = $1 AND sku = $2 AND on_hand - reserved >= $3 \
             RETURNING on_hand - reserved",
        )
        .bind(warehouse)
        .bind(sku)
        .bind(quantity)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(after) = after else {
            return Ok(Held::Short {
                warehouse: warehouse.to_owned(),
                sku: sku.to_owned(),
            });
        };
        stock::record(
            &mut *conn,
            &Movement {
                warehouse,
                sku,
                delta_on_hand: 0,
                delta_reserved: quantity,
                reason: "reserved",
                order_id: Some(order_id),
            },
        )
        .await?;
        touched.push(Touched {
            warehouse: warehouse.to_owned(),
            sku: sku.to_owned(),
            available_before: after + quantity,
            available_after: after,
        });
    }
    let warehouses: Vec<&str> = reservations.iter().map(|r| r.warehouse.as_str()).collect();
    let line_nos: Vec<i32> = reservations
        .iter()
        .map(|r| i32::try_from(r.line_no).unwrap_or(i32::MAX))
        .collect();
    let skus: Vec<&str> = reservations.iter().map(|r| r.sku.as_str()).collect();
    let quantities: Vec<i64> = reservations.iter().map(|r| i64::from(r.quantity)).collect();
    // A line may already be served by this warehouse (units re-reserved after a short pick).
    let stored = sqlx::query(
        "INSERT INTO reservations AS r (order_id, warehouse, line_no, sku, quantity) \
         SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::text[], $5::bigint[]) \
         ON CONFLICT (order_id, warehouse, line_no) DO UPDATE \
         SET quantity = r.quantity + EXCLUDED.quantity, updated_at = now() \
         WHERE r.status = 'reserved' AND r.sku = EXCLUDED.sku",
    )
    .bind(order_id)
    .bind(&warehouses)
    .bind(&line_nos)
    .bind(&skus)
    .bind(&quantities)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if stored != reservations.len() as u64 {
        return Err(sqlx::Error::Protocol(format!(
            "order {order_id}: a reservation to add to is no longer reserved"
        )));
    }
    Ok(Held::Done(touched))
}

/// How reservations end, as data: which status they leave and reach, and what that does to the
/// stock row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Cancelled before packing: the units are free again.
    Release,
    /// Packed: the units left the shelf.
    Ship,
    /// Delivery failed: the shipped units are back on the shelf.
    Return,
    /// Cancelled after packing: the parcels were unpacked, the units are back on the shelf.
    Unpack,
}

impl Settlement {
    pub fn from_status(self) -> &'static str {
        match self {
            Settlement::Release | Settlement::Ship => "reserved",
            Settlement::Return | Settlement::Unpack => "shipped",
        }
    }

    pub fn to_status(self) -> &'static str {
        match self {
            Settlement::Release => "released",
            Settlement::Ship => "shipped",
            Settlement::Return => "returned",
            Settlement::Unpack => "unpacked",
        }
    }

    /// (change of on hand, change of reserved) for `quantity` units.
    pub fn deltas(self, quantity: i64) -> (i64, i64) {
        match self {
            Settlement::Release => (0, -quantity),
            Settlement::Ship => (-quantity, -quantity),
            Settlement::Return | Settlement::Unpack => (quantity, 0),
        }
    }
}

/// Moves every reservation of `order_id` that is in `how`'s starting status on, and applies the
/// stock change; returns what it settled (nothing when there was nothing to settle, e.g. for a
/// duplicate or late message).
pub async fn settle(
    conn: &mut PgConnection,
    order_id: Uuid,
    how: Settlement,
) -> Result<Vec<Reservation>, HandleError> {
    settle_in(conn, order_id, how, None).await
}

/// [`settle`], limited to the reservations of `warehouses` when given.
pub async fn settle_in(
    conn: &mut PgConnection,
    order_id: Uuid,
    how: Settlement,
    warehouses: Option<&[String]>,
) -> Result<Vec<Reservation>, HandleError> {
    let rows: Vec<(String, i32, String, i64)> = sqlx::query_as(
        "UPDATE reservations SET status = $3, updated_at = now() \
         WHERE order_id = $1 AND status = $2 AND ($4::text[] IS NULL OR warehouse = ANY($4)) \
         RETURNING warehouse, line_no, sku, quantity",
    )
    .bind(order_id)
    .bind(how.from_status())
    .bind(how.to_status())
    .bind(warehouses)
    .fetch_all(&mut *conn)
    .await?;
    let mut settled = rows
        .into_iter()
        .map(|(warehouse, line_no, sku, quantity)| {
            Ok(Reservation {
                warehouse,
                line_no: u32::try_from(line_no).map_err(|e| broken(order_id, e))?,
                sku: Sku::parse(&sku).map_err(|e| broken(order_id, e))?,
                quantity: u32::try_from(quantity).map_err(|e| broken(order_id, e))?,
            })
        })
        .collect::<Result<Vec<_>, HandleError>>()?;
    settled.sort_by(|a, b| (a.line_no, &a.warehouse).cmp(&(b.line_no, &b.warehouse)));

    for ((warehouse, sku), quantity) in per_stock_row(&settled) {
        let (delta_on_hand, delta_reserved) = how.deltas(quantity);
        let changed = sqlx::query(
            "UPDATE stock SET on_hand = on_hand + $3, reserved = reserved + $4, \
             updated_at = now() WHERE warehouse = $1 AND sku = $2",
        )
        .bind(warehouse)
        .bind(sku)
        .bind(delta_on_hand)
        .bind(delta_reserved)
        .execute(&mut *conn)
        .await;
        match changed {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => return Err(broken(order_id, format!("no stock row {warehouse}/{sku}"))),
            // A CHECK constraint: the stock row disagrees with the reservations.
            Err(e) if is_code(&e, "23514") => return Err(broken(order_id, e)),
            Err(e) => return Err(e.into()),
        }
        stock::record(
            &mut *conn,
            &Movement {
                warehouse,
                sku,
                delta_on_hand,
                delta_reserved,
                reason: how.to_status(),
                order_id: Some(order_id),
            },
        )
        .await?;
    }
    Ok(settled)
}

/// Takes up to `missing` units off the reservation of line `line_no` in `warehouse` (deleting it
/// when nothing is left) and off the warehouse's stock, which never had them: a short pick.
/// Returns how many units were taken (0 when nothing of the line is reserved there).
pub async fn shrink(
    conn: &mut PgConnection,
    order_id: Uuid,
    warehouse: &str,
    line_no: u32,
    missing: u32,
) -> Result<u32, HandleError> {
    let line = i32::try_from(line_no).unwrap_or(i32::MAX);
    let held: Option<(String, i64)> = sqlx::query_as(
        "SELECT sku, quantity FROM reservations \
         WHERE order_id = $1 AND warehouse = $2 AND line_no = $3 AND status = 'reserved' \
         FOR UPDATE",
    )
    .bind(order_id)
    .bind(warehouse)
    .bind(line)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((sku, quantity)) = held else {
        return Ok(0);
    };
    let taken = quantity.min(i64::from(missing));
    if taken == quantity {
        sqlx::query(
            "DELETE FROM reservations WHERE order_id = $1 AND warehouse = $2 AND line_no = $3",
        )
        .bind(order_id)
        .bind(warehouse)
        .bind(line)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query(
            "UPDATE reservations SET quantity = quantity - $4, updated_at = now() \
             WHERE order_id = $1 AND warehouse = $2 AND line_no = $3",
        )
        .bind(order_id)
        .bind(warehouse)
        .bind(line)
        .bind(taken)
        .execute(&mut *conn)
        .await?;
    }
    let changed = sqlx::query(
        "UPDATE stock SET on_hand = on_hand - $3, reserved = reserved - $3, updated_at = now() \
         WHERE warehouse = $1 AND sku = $2",
    )
    .bind(warehouse)
    .bind(&sku)
    .bind(taken)
    .execute(&mut *conn)
    .await;
    match changed {
        Ok(done) if done.rows_affected() == 1 => {}
        Ok(_) => return Err(broken(order_id, format!("no stock row {warehouse}/{sku}"))),
        Err(e) if is_code(&e, "23514") => return Err(broken(order_id, e)),
        Err(e) => return Err(e.into()),
    }
    stock::record(
        &mut *conn,
        &Movement {
            warehouse,
            sku: &sku,
            delta_on_hand: -taken,
            delta_reserved: -taken,
            reason: "short pick",
            order_id: Some(order_id),
        },
    )
    .await?;
    Ok(u32::try_from(taken).unwrap_or(missing))
}

/// The reservations and the stock they point at disagree: retrying cannot help.
fn broken(order_id: Uuid, detail: impl std::fmt::Display) -> HandleError {
    HandleError::Permanent(format!(
        "reservations of order {order_id} disagree with stock: {detail}"
    ))
}
