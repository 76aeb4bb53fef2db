//! Asks providers again about payments whose outcome was unknown (`*_pending`), every
//! `billing.pending_recheck_secs`, with the same idempotency keys, and settles the order with
//! the answer. Replicas can run it side by side: each order is handled under its lock, and a
//! payment already settled by someone else is simply no longer pending.

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use crate::payment::PENDING_STATUSES;
use crate::settlement::Billing;

/// Most pending payments looked at per round.
const ROUND: i64 = 100;

/// Runs until the service's pool is closed (the service stopped).
pub fn spawn(pool: PgPool, billing: Arc<Billing>) {
    tokio::spawn(async move {
        let every = billing.rules().pending_recheck;
        loop {
            tokio::time::sleep(every).await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = round(&pool, &billing).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "re-checking pending payments failed; will retry"
                );
            }
        }
    });
}

async fn round(pool: &PgPool, billing: &Billing) -> anyhow::Result<()> {
    let pending: Vec<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM payments WHERE status = ANY($1) ORDER BY updated_at LIMIT $2",
    )
    .bind(&PENDING_STATUSES[..])
    .bind(ROUND)
    .fetch_all(pool)
    .await?;
    for order_id in pending {
        let mut tx = pool.begin().await?;
        match billing.recheck(&mut tx, order_id).await {
            Ok(()) => orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?,
            Err(e) => {
                tracing::warn!(%order_id, error = format!("{e:#}"), "pending payment still unresolved");
                tx.rollback().await?;
            }
        }
    }
    Ok(())
}
