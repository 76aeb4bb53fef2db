//! Telling people about status changes. Each change becomes one row in `deliveries` per sink —
//! the log sink always, and every webhook the order's shop subscribed — written in the same
//! transaction as the change, so a change is never announced without having happened, nor lost.
//! The [`delivery`](crate::delivery) worker sends them.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::lifecycle::Status;

/// Queues the announcement that order `order_id` is now `status`, caused by `message_id`.
pub async fn status_changed(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: Status,
    message_id: Uuid,
) -> Result<(), sqlx::Error> {
    let body = json!({
        "event": "order.status_changed",
        "order_id": order_id,
        "status": status.as_str(),
        "message_id": message_id,
    });
    sqlx::query(
        "INSERT INTO deliveries (order_id, sink, message_id, body) VALUES ($1, 'log', $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(message_id)
    .bind(&body)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO deliveries (order_id, sink, webhook_id, url, message_id, body) \
         SELECT o.id, 'webhook', w.id, w.url, $2, $3 FROM orders o \
         JOIN webhooks w ON w.shop IS NOT DISTINCT FROM o.shop WHERE o.id = $1 \
         ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(message_id)
    .bind(&body)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
