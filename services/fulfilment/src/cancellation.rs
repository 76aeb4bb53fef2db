//! Cancellation (on `order.cancelled`, decided by shipping before any handover) and reallocation
//! (on `order.reallocated`, verification's answer to a short pick).
//!
//! Work not yet announced as packed just stops: pick lists and tasks are cancelled and any
//! parcel already closed is unpacked quietly — verification still holds those goods as reserved
//! and releases them itself. Once `order.packed` went out, the parcels are unpacked and
//! `order.unpacked` names them, so verification puts the goods back on the shelf. A cancellation
//! that arrives before `order.verified` is remembered, and that order is never packed.

use orderflow_messages::Envelope;
use orderflow_messages::order::{ParcelGroup, Reallocated, Unpacked};
use orderflow_runtime::outbox;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::pick_list::{self, Floor, WorkError};

impl Floor {
    pub async fn cancel<C>(
        &self,
        conn: &mut PgConnection,
        cause: &Envelope<C>,
        reason: &str,
    ) -> Result<(), WorkError> {
        let order_id = cause.order_id;
        let remembered = sqlx::query(
            "INSERT INTO orders (order_id, status, cancel_reason, correlation_id) \
             VALUES ($1, 'cancelled', $2, $3) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(reason)
        .bind(cause.correlation_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if remembered == 1 {
            return Ok(());
        }
        let Some(order) = pick_list::lock_order(conn, order_id).await? else {
            return Ok(());
        };
        let after_packing = match order.status.as_str() {
            "picking" | "short" => false,
            "packed" => true,
            _ => return Ok(()),
        };
        let announced: Option<Json<Vec<ParcelGroup>>> =
            sqlx::query_scalar("SELECT packed_groups FROM orders WHERE order_id = $1")
                .bind(order_id)
                .fetch_one(&mut *conn)
                .await?;
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', updated_at = now() \
             WHERE order_id = $1 AND status = 'open'",
        )
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE parcels SET status = 'unpacked', updated_at = now() \
             WHERE status = 'closed' AND pick_list_id IN \
                 (SELECT id FROM pick_lists WHERE order_id = $1)",
        )
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE pick_lists SET due_at = NULL, awaiting_reallocation = false, updated_at = now(), \
             status = CASE WHEN status = 'short' THEN status ELSE 'cancelled' END \
             WHERE order_id = $1 AND (status IN ('open', 'picked', 'packed') OR awaiting_reallocation)",
        )
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
        let status = if after_packing {
            "unpacked"
        } else {
            "cancelled"
        };
        sqlx::query(
            "UPDATE orders SET status = $2, cancel_reason = $3, updated_at = now() \
             WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(status)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
        if after_packing {
            let unpacked = Unpacked {
                groups: announced.map(|g| g.0).unwrap_or_default(),
                reason: reason.to_owned(),
            };
            outbox::enqueue(
                conn,
                &Envelope::caused_by(crate::NAME, cause, unpacked),
                None,
            )
            .await?;
        }
        Ok(())
    }

    /// Opens pick lists for the units verification reserved elsewhere after a short pick, and
    /// lets the order be packed again once no short pick waits for its reallocation.
    pub async fn reallocate(
        &self,
        conn: &mut PgConnection,
        order_id: uuid::Uuid,
        reallocated: &Reallocated,
    ) -> Result<(), WorkError> {
        let Some(order) = pick_list::lock_order(conn, order_id).await? else {
            // Not verified here yet: it will be, and this must then be applied.
            return Err(WorkError::Unexpected(anyhow::anyhow!(
                "order.reallocated before order.verified; retrying"
            )));
        };
        if !matches!(order.status.as_str(), "picking" | "short") {
            return Ok(());
        }
        let Some(verified) = order.verified.as_ref() else {
            return Ok(());
        };
        self.open_pick_lists(conn, order_id, verified, &reallocated.reservations)
            .await?;
        sqlx::query(
            "UPDATE pick_lists SET awaiting_reallocation = false, updated_at = now() \
             WHERE order_id = $1 AND warehouse = $2 AND awaiting_reallocation",
        )
        .bind(order_id)
        .bind(&reallocated.warehouse)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE orders SET status = 'picking', updated_at = now() \
             WHERE order_id = $1 AND status = 'short' AND NOT EXISTS \
                 (SELECT 1 FROM pick_lists WHERE order_id = $1 AND awaiting_reallocation)",
        )
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
        self.advance(conn, order_id).await?;
        if let Some(order) = pick_list::lock_order(conn, order_id).await? {
            self.finish_order_if_packed(conn, &order).await?;
        }
        Ok(())
    }
}
