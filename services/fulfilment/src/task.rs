//! Customisation tasks (engraving, gift wrap, assembly, …): one per customisation a line asks
//! for, done after the pick and before packing.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::pick_list::{self, Floor, WorkError};

impl Floor {
    pub async fn open_tasks(&self, conn: &mut PgConnection, pick_list: Uuid) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE pick_list_id = $1 AND status = 'open'")
            .bind(pick_list)
            .fetch_one(&mut *conn)
            .await
    }

    /// Marks a task done; the pick must be confirmed first (the goods are in hand). Completing a
    /// task twice is harmless.
    pub async fn complete_task(
        &self,
        conn: &mut PgConnection,
        task: Uuid,
        completed_by: &str,
    ) -> Result<(), WorkError> {
        let row: Option<(Uuid, String)> =
            sqlx::query_as("SELECT pick_list_id, status FROM tasks WHERE id = $1")
                .bind(task)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((pick_list, status)) = row else {
            return Err(WorkError::NotFound(format!("no task {task}")));
        };
        match status.as_str() {
            "done" => return Ok(()),
            "open" => {}
            other => return Err(WorkError::Conflict(format!("task {task} is {other}"))),
        }
        let list = pick_list::load(conn, pick_list)
            .await?
            .ok_or_else(|| WorkError::NotFound(format!("no pick list {pick_list}")))?;
        if list.status != "picked" {
            return Err(WorkError::Conflict(format!(
                "pick list {} is {}: confirm the pick before its tasks",
                list.id, list.status
            )));
        }
        sqlx::query(
            "UPDATE tasks SET status = 'done', completed_by = $2, completed_at = now(), \
             updated_at = now() WHERE id = $1 AND status = 'open'",
        )
        .bind(task)
        .bind(completed_by)
        .execute(&mut *conn)
        .await?;
        if self.open_tasks(conn, pick_list).await? == 0 {
            sqlx::query(
                "UPDATE pick_lists SET due_at = now() + $2, updated_at = now() \
                 WHERE id = $1 AND mode = 'automatic' AND status = 'picked'",
            )
            .bind(pick_list)
            .bind(self.delays.pack)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
