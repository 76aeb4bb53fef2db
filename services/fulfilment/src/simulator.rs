//! The simulated warehouse behind `automatic` mode: it picks everything reserved, does the
//! customisation tasks and packs by the packing rules, each step once its pick list's `due_at`
//! has come (now + the configured delay of the step).
//!
//! With zero delays every step is due at once and the consumer runs them in the transaction that
//! opened the pick lists, so `order.packed` leaves with the same commit. Later steps are run by
//! [`spawn`]'s worker, which never blocks a consumer: it claims one order at a time with
//! `FOR UPDATE SKIP LOCKED`, so replicas share the work without doing a step twice.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::pick_list::{self, Floor, PICK_LIST_COLUMNS, PickList, SharedFloor, WorkError};

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
            self.complete_task(conn, task, "simulated warehouse")
                .await?;
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

/// Works through every order with a due step; returns when the next step falls due.
async fn round(pool: &PgPool, floor: &Floor) -> anyhow::Result<Option<DateTime<Utc>>> {
    loop {
        let mut tx = pool.begin().await?;
        let claimed: Option<Uuid> = sqlx::query_scalar(
            "SELECT o.order_id FROM orders o \
             WHERE o.status IN ('picking', 'short') AND EXISTS ( \
                 SELECT 1 FROM pick_lists p WHERE p.order_id = o.order_id \
                 AND p.mode = 'automatic' AND p.status IN ('open', 'picked') AND p.due_at <= now()) \
             LIMIT 1 FOR UPDATE OF o SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(order_id) = claimed else {
            tx.commit().await?;
            break;
        };
        match floor.advance(&mut tx, order_id).await {
            Ok(()) => tx.commit().await?,
            Err(WorkError::Unexpected(e)) => {
                tx.rollback().await?;
                return Err(e);
            }
            Err(e) => {
                // A step that cannot be done (a broken pick list) must not stop the others; the
                // order stays where it was and is visible to staff through the API.
                tx.rollback().await?;
                tracing::warn!(%order_id, error = %e, "simulated warehouse could not advance the order");
                mark_stuck(pool, order_id).await?;
            }
        }
    }
    Ok(sqlx::query_scalar(
        "SELECT min(due_at) FROM pick_lists WHERE mode = 'automatic' AND status IN ('open', 'picked')",
    )
    .fetch_one(pool)
    .await?)
}

/// Hands an order the simulator cannot advance to staff, so it is not retried in a tight loop.
async fn mark_stuck(pool: &PgPool, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pick_lists SET mode = 'manual', due_at = NULL, updated_at = now() \
         WHERE order_id = $1 AND mode = 'automatic' AND status IN ('open', 'picked')",
    )
    .bind(order_id)
    .execute(pool)
    .await?;
    Ok(())
}
