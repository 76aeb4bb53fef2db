//! The consumer of `fulfilment.orders`: `order.verified` opens the pick lists (and, in an
//! automatic warehouse with no delay, picks and packs at once), `order.reallocated` opens more
//! after a short pick, `order.cancelled` stops or unpacks.

use orderflow_messages::order;
use orderflow_runtime::{HandleError, Handler, Incoming};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::pick_list::{self, SharedFloor, WorkError};

pub struct Orders {
    pub floor: SharedFloor,
}

fn handle_error(e: WorkError) -> HandleError {
    match e {
        WorkError::Unexpected(e) => HandleError::Transient(e),
        WorkError::Invalid(errors) => HandleError::Permanent(
            errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => HandleError::Permanent(other.to_string()),
    }
}

impl Handler for Orders {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        if msg.is::<order::Verified>() {
            let verified = msg.decode::<order::Verified>()?;
            self.verified(conn, msg, verified)
                .await
                .map_err(handle_error)
        } else if msg.is::<order::Reallocated>() {
            let reallocated = msg.decode::<order::Reallocated>()?;
            self.floor
                .reallocate(conn, msg.envelope.order_id, &reallocated)
                .await
                .map_err(handle_error)
        } else if msg.is::<order::Cancelled>() {
            let cancelled = msg.decode::<order::Cancelled>()?;
            self.floor
                .cancel(conn, &msg.envelope, &cancelled.reason)
                .await
                .map_err(handle_error)
        } else {
            Ok(())
        }
    }
}

impl Orders {
    async fn verified(
        &self,
        conn: &mut PgConnection,
        msg: &Incoming,
        verified: order::Verified,
    ) -> Result<(), WorkError> {
        let order_id = msg.envelope.order_id;
        let inserted = sqlx::query(
            "INSERT INTO orders (order_id, status, verified, correlation_id, verified_message_id) \
             VALUES ($1, 'picking', $2, $3, $4) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(Json(&verified))
        .bind(msg.envelope.correlation_id)
        .bind(msg.envelope.message_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Already known: a second `order.verified` changes nothing, and one for a cancelled
            // order (the cancellation came first) packs nothing.
            return Ok(());
        }
        self.floor
            .open_pick_lists(conn, order_id, &verified, &verified.reservations)
            .await?;
        self.floor.advance(conn, order_id).await?;
        match pick_list::lock_order(conn, order_id).await? {
            Some(order) => self.floor.finish_order_if_packed(conn, &order).await,
            None => Ok(()),
        }
    }
}
