//! The simulated warehouse behind `automatic` mode: it picks everything reserved, does the
//! customisation tasks and packs by the packing rules, each step once its pick list's `due_at`
//! has come (now + the configured delay of the step).
//!
//! Without delays, the pick lists are done as they open (see `Floor::open_pick_lists`), so
//! `order.packed` leaves with the commit that read `order.verified`. With delays, [`spawn`]'s
//! worker takes the steps as they fall due and never blocks a consumer: it claims orders with
//! `FOR UPDATE SKIP LOCKED`, so replicas share the work without taking a step twice.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection, PgPool};
use uuid::Uuid;

use crate::pick_list::{
    self, Floor, PICK_LIST_COLUMNS, PickList, SIMULATED_WAREHOUSE, SharedFloor, WorkError,
};

/// Longest the worker sleeps before looking for due work that another replica (or a delayed
/// step of its own) scheduled; polling an index is cheap, and a step is never due earlier.
const POLL: Duration = Duration::from_millis(250);

impl Floor {
    /// Takes every due step of the order's automatic pick lists, as long as steps are due.
    /// The caller holds the order's lock.
    pub async fn advance(&self, conn: &mut PgConnection, order_id: Uuid) -> Result<(), WorkError> {
        // Each round moves every due pick list one step on; a step is never repeated, so this ends.
        loop {
            let Some(order) = pick_list::lock_order(conn, order_id).await? else {
                return Ok(());
            };
            if !matches!(order.status.as_str(), "picking" | "short") {
                return Ok(());
            }
            let due: Vec<PickList> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PICK_LIST_COLUMNS} FROM pick_lists WHERE order_id = $1 \
                 AND mode = 'automatic' AND status IN ('open', 'picked') AND due_at <= now() \
                 ORDER BY id"
            )))
            .bind(order_id)
            .fetch_all(&mut *conn)
            .await?;
            if due.is_empty() {
                return Ok(());
            }
            for list in due {
                self.step(conn, &order, &list).await?;
            }
        }
    }

    async fn step(
        &self,
        conn: &mut PgConnection,
        order: &pick_list::OrderRow,
        list: &PickList,
    ) -> Result<(), WorkError> {
        if list.status == "open" {
            let everything: BTreeMap<u32, u32> = list
                .lines
                .0
                .iter()
                .map(|l| (l.line_no, l.quantity))
                .collect();
            return self.confirm_pick(conn, order, list, &everything).await;
        }
        let open_tasks: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM tasks WHERE pick_list_id = $1 AND status = 'open' ORDER BY id",
        )
        .bind(list.id)
        .fetch_all(&mut *conn)
        .await?;
        if open_tasks.is_empty() {
            return self.pack_rest(conn, order, list).await;
        }
        for task in open_tasks {
            self.complete_task(conn, task, SIMULATED_WAREHOUSE).await?;
        }
        Ok(())
    }
}

/// Runs the simulated warehouse's delayed steps until the service's pool closes.
pub fn spawn(pool: PgPool, floor: SharedFloor) {
    tokio::spawn(async move {
        let closed = pool.close_event();
        tokio::pin!(closed);
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = &mut closed => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = match round(&pool, &floor).await {
                Ok(next_due) => next_due
                    .and_then(|at| (at - Utc::now()).to_std().ok())
                    .map_or(POLL, |until| until.min(POLL)),
                Err(e) => {
                    if !pool.is_closed() {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "simulated warehouse step failed; will retry"
                        );
                    }
                    POLL
                }
            };
        }
    });
}

/// Most orders claimed per transaction; each is advanced under a savepoint of its own.
const CLAIM: i64 = 50;

/// Works through every order with a due step; returns when the next step falls due.
async fn round(pool: &PgPool, floor: &Floor) -> anyhow::Result<Option<DateTime<Utc>>> {
    loop {
        let mut tx = pool.begin().await?;
        let claimed: Vec<Uuid> = sqlx::query_scalar(
            "SELECT o.order_id FROM orders o \
             WHERE o.status IN ('picking', 'short') AND EXISTS ( \
                 SELECT 1 FROM pick_lists p WHERE p.order_id = o.order_id \
                 AND p.mode = 'automatic' AND p.status IN ('open', 'picked') AND p.due_at <= now()) \
             LIMIT $1 FOR UPDATE OF o SKIP LOCKED",
        )
        .bind(CLAIM)
        .fetch_all(&mut *tx)
        .await?;
        if claimed.is_empty() {
            tx.commit().await?;
            break;
        }
        for order_id in claimed {
            let mut order_tx = tx.begin().await?;
            match floor.advance(&mut order_tx, order_id).await {
                Ok(()) => order_tx.commit().await?,
                // Dropping the transaction rolls the whole claim back; it is retried.
                Err(WorkError::Unexpected(e)) => return Err(e),
                Err(e) => {
                    // A step that cannot be done (a broken pick list) must not stop the others.
                    order_tx.rollback().await?;
                    tracing::warn!(%order_id, error = %e, "simulated warehouse could not advance the order; handing it to staff");
                    hand_to_staff(&mut tx, order_id).await?;
                }
            }
        }
        orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    }
    Ok(sqlx::query_scalar(
        "SELECT min(due_at) FROM pick_lists WHERE mode = 'automatic' AND status IN ('open', 'picked')",
    )
    .fetch_one(pool)
    .await?)
}

/// Leaves an order the simulator cannot advance to staff (it stays visible through the API),
/// so it is not retried in a tight loop.
async fn hand_to_staff(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pick_lists SET mode = 'manual', due_at = NULL, updated_at = now() \
         WHERE order_id = $1 AND mode = 'automatic' AND status IN ('open', 'picked')",
    )
    .bind(order_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
