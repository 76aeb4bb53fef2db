//! Pick lists and customisation tasks: opening them for an order's reservations, confirming a
//! pick with what was actually found (a short pick publishes `order.fulfilment_failed`), and
//! completing tasks. Every change here runs with the order's row locked ([`lock_order`]), so the
//! consumer, staff requests and the simulated warehouse, on any replica, take turns per order.

use std::collections::BTreeMap;
use std::sync::Arc;

use orderflow_messages::order::{FulfilmentFailed, Reservation, ShortLine, Verified};
use orderflow_messages::types::{Dimensions, Sku};
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::outbox;
use orderflow_runtime::problem::FieldError;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::packing::{Goods, PackingRules};
use crate::warehouse::{Delays, Mode, Modes};

/// One line of a pick list: what to take from the shelf and, once confirmed, what was found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PickLine {
    pub line_no: u32,
    pub sku: Sku,
    pub name: String,
    /// Units reserved in this warehouse.
    pub quantity: u32,
    /// Units found, once the pick is confirmed.
    #[serde(default)]
    pub picked: Option<u32>,
    pub weight_grams: u32,
    #[serde(default)]
    pub dimensions: Option<Dimensions>,
    #[serde(default)]
    pub customisations: Vec<String>,
}

impl PickLine {
    pub fn goods(&self, quantity: u32) -> Goods {
        Goods {
            line_no: self.line_no,
            sku: self.sku.clone(),
            weight_grams: self.weight_grams,
            dimensions: self.dimensions,
            quantity,
        }
    }
}

/// Why a staff action (or a step of the simulated warehouse) cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error("{0}")]
    NotFound(String),
    /// The thing is not in a state that allows it (409).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong (422).
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for WorkError {
    fn from(e: sqlx::Error) -> Self {
        WorkError::Unexpected(e.into())
    }
}

/// The order as fulfilment knows it, locked for the current transaction.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub status: String,
    pub verified: Option<Verified>,
    correlation_id: Option<Uuid>,
    verified_message_id: Option<Uuid>,
}

impl OrderRow {
    /// An event continuing the order's journey, caused by its `order.verified`.
    pub fn envelope<E: Event>(&self, payload: E) -> Envelope<E> {
        let mut envelope = Envelope::new(crate::NAME, self.order_id, payload);
        envelope.correlation_id = self.correlation_id.unwrap_or(self.order_id);
        envelope.causation_id = self.verified_message_id;
        envelope
    }
}

/// Locks the order's row (the per-order turn every change takes first) and reads it.
pub async fn lock_order(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Option<OrderRow>> {
    type Row = (String, Option<Json<Verified>>, Option<Uuid>, Option<Uuid>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT status, verified, correlation_id, verified_message_id FROM orders \
         WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(
        |(status, verified, correlation_id, verified_message_id)| OrderRow {
            order_id,
            status,
            verified: verified.map(|v| v.0),
            correlation_id,
            verified_message_id,
        },
    ))
}

/// A pick list as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PickList {
    pub id: Uuid,
    pub warehouse: String,
    pub status: String,
    pub lines: Json<Vec<PickLine>>,
}

pub const PICK_LIST_COLUMNS: &str = "id, warehouse, status, lines";

pub async fn load(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<PickList>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PICK_LIST_COLUMNS} FROM pick_lists WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// Who completes tasks in an automatic warehouse.
pub const SIMULATED_WAREHOUSE: &str = "simulated warehouse";

/// What the warehouse floor needs to know, shared by the consumer, the API and the simulator.
#[derive(Debug, Clone)]
pub struct Floor {
    pub rules: PackingRules,
    pub delays: Delays,
    pub modes: Modes,
}

pub type SharedFloor = Arc<Floor>;

impl Floor {
    /// Opens one pick list per warehouse of `reservations`, each line with one task per
    /// customisation it asks for.
    pub async fn open_pick_lists(
        &self,
        conn: &mut PgConnection,
        order_id: Uuid,
        verified: &Verified,
        reservations: &[Reservation],
    ) -> Result<(), WorkError> {
        let mut by_warehouse: BTreeMap<&str, Vec<PickLine>> = BTreeMap::new();
        for reservation in reservations {
            let line = verified
                .lines
                .iter()
                .find(|l| l.line_no == reservation.line_no)
                .ok_or_else(|| {
                    WorkError::Invalid(vec![FieldError::new(
                        "reservations",
                        "line_no",
                        format!(
                            "reservation names line {} which the order lacks",
                            reservation.line_no
                        ),
                    )])
                })?;
            let lines = by_warehouse
                .entry(reservation.warehouse.as_str())
                .or_default();
            match lines.iter_mut().find(|l| l.line_no == line.line_no) {
                Some(existing) => existing.quantity += reservation.quantity,
                None => lines.push(PickLine {
                    line_no: line.line_no,
                    sku: line.sku.clone(),
                    name: line.name.clone(),
                    quantity: reservation.quantity,
                    picked: None,
                    weight_grams: line.weight_grams,
                    dimensions: line.dimensions,
                    customisations: line.customisations.clone(),
                }),
            }
        }
        for (warehouse, mut lines) in by_warehouse {
            let (mode, _) = self.modes.of(conn, warehouse).await?;
            // A simulated warehouse without delays does the whole pick list at once: the same
            // outcome as its steps, in a handful of statements (what demos and benchmarks run).
            let at_once = mode == Mode::Automatic && self.delays.is_zero();
            if at_once {
                for line in &mut lines {
                    line.picked = Some(line.quantity);
                }
            }
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO pick_lists (id, order_id, warehouse, status, mode, lines, due_at) \
                 VALUES ($1, $2, $3, $7, $4, $5, \
                         CASE WHEN $4 = 'automatic' AND $7 = 'open' THEN now() + $6 END)",
            )
            .bind(id)
            .bind(order_id)
            .bind(warehouse)
            .bind(mode.as_str())
            .bind(Json(&lines))
            .bind(self.delays.pick)
            .bind(if at_once { "packed" } else { "open" })
            .execute(&mut *conn)
            .await?;
            for line in &lines {
                for customisation in &line.customisations {
                    sqlx::query(
                        "INSERT INTO tasks (id, pick_list_id, order_id, warehouse, line_no, sku, \
                         customisation, status, completed_by, completed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                                 CASE WHEN $8 = 'done' THEN now() END)",
                    )
                    .bind(Uuid::now_v7())
                    .bind(id)
                    .bind(order_id)
                    .bind(warehouse)
                    .bind(line.line_no as i32)
                    .bind(line.sku.as_str())
                    .bind(customisation)
                    .bind(if at_once { "done" } else { "open" })
                    .bind(at_once.then_some(SIMULATED_WAREHOUSE))
                    .execute(&mut *conn)
                    .await?;
                }
            }
            if at_once {
                let goods: Vec<_> = lines.iter().map(|l| l.goods(l.quantity)).collect();
                for parcel in self.rules.pack(&goods) {
                    self.insert_parcel(conn, id, &parcel).await?;
                }
            }
        }
        Ok(())
    }

    /// Records what was found on the shelf for each line of an open pick list. Less than
    /// reserved publishes `order.fulfilment_failed` and holds the order until verification
    /// reallocates; what was found is still packed.
    pub async fn confirm_pick(
        &self,
        conn: &mut PgConnection,
        order: &OrderRow,
        list: &PickList,
        found: &BTreeMap<u32, u32>,
    ) -> Result<(), WorkError> {
        if list.status != "open" {
            return Err(WorkError::Conflict(format!(
                "pick list {} is {}, not open",
                list.id, list.status
            )));
        }
        let mut errors = Vec::new();
        for (i, line) in list.lines.0.iter().enumerate() {
            match found.get(&line.line_no) {
                None => errors.push(FieldError::new(
                    "lines",
                    "required",
                    format!("line {} of the pick list is not confirmed", line.line_no),
                )),
                Some(&n) if n > line.quantity => errors.push(FieldError::new(
                    format!("lines[{i}].found"),
                    "range",
                    format!(
                        "line {} has {} unit(s) to pick; found cannot exceed that",
                        line.line_no, line.quantity
                    ),
                )),
                Some(_) => {}
            }
        }
        for line_no in found.keys() {
            if !list.lines.0.iter().any(|l| l.line_no == *line_no) {
                errors.push(FieldError::new(
                    "lines",
                    "unknown",
                    format!("line {line_no} is not on this pick list"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(WorkError::Invalid(errors));
        }
        let mut lines = list.lines.0.clone();
        let mut missing = Vec::new();
        for line in &mut lines {
            let n = found.get(&line.line_no).copied().unwrap_or(0);
            line.picked = Some(n);
            if n < line.quantity {
                missing.push(ShortLine {
                    line_no: line.line_no,
                    sku: line.sku.clone(),
                    missing: line.quantity - n,
                });
            }
            if n == 0 {
                sqlx::query(
                    "UPDATE tasks SET status = 'cancelled', updated_at = now() \
                     WHERE pick_list_id = $1 AND line_no = $2 AND status = 'open'",
                )
                .bind(list.id)
                .bind(line.line_no as i32)
                .execute(&mut *conn)
                .await?;
            }
        }
        let nothing_found = lines.iter().all(|l| l.picked == Some(0));
        let status = if nothing_found { "short" } else { "picked" };
        let next = if self.open_tasks(conn, list.id).await? > 0 {
            self.delays.tasks
        } else {
            self.delays.pack
        };
        sqlx::query(
            "UPDATE pick_lists SET status = $2, lines = $3, updated_at = now(), \
             due_at = CASE WHEN mode = 'automatic' AND $2 = 'picked' THEN now() + $4 END, \
             awaiting_reallocation = $5 \
             WHERE id = $1 AND status = 'open'",
        )
        .bind(list.id)
        .bind(status)
        .bind(Json(&lines))
        .bind(next)
        .bind(!missing.is_empty())
        .execute(&mut *conn)
        .await?;
        if !missing.is_empty() {
            sqlx::query(
                "UPDATE orders SET status = 'short', updated_at = now() \
                 WHERE order_id = $1 AND status = 'picking'",
            )
            .bind(order.order_id)
            .execute(&mut *conn)
            .await?;
            let failed = FulfilmentFailed {
                warehouse: list.warehouse.clone(),
                missing,
            };
            outbox::enqueue(conn, &order.envelope(failed), None).await?;
        }
        Ok(())
    }
}
