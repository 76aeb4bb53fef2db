//! Placing an order: the order, its lines, the first timeline entry and the `order.placed`
//! message are written in one transaction, so a placed order is always announced and a refused
//! one leaves nothing behind.
//!
//! Both guards against doubles rest on unique constraints, never on a look-up before the insert,
//! so two concurrent requests cannot both pass: the `Idempotency-Key` is the primary key of
//! `idempotency_keys` (a second insert waits for the first transaction and then conflicts), and
//! `(channel, external_reference)` is unique in `orders`.

use anyhow::Context;
use orderflow_messages::Envelope;
use orderflow_messages::order::Placed;
use orderflow_runtime::database::violates;
use orderflow_runtime::outbox;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::NAME;
use crate::lifecycle::Status;
use crate::timeline::{self, Entry};

/// How a request to place an order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A new order.
    Created(Uuid),
    /// The same `Idempotency-Key` and body as an earlier request: that request's order.
    Replayed(Uuid),
}

impl Placement {
    pub fn order_id(self) -> Uuid {
        match self {
            Placement::Created(id) | Placement::Replayed(id) => id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// 409: the shop already sent this order; `existing` is its id.
    #[error("an order with this channel and external reference already exists")]
    Duplicate { existing: Uuid },
    /// 422: the key was used before with another body.
    #[error("this Idempotency-Key was used with a different request body")]
    KeyReused,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Stores `order` and its `order.placed` message. `request` is the body as received, for the
/// idempotency fingerprint.
pub async fn place(
    pool: &PgPool,
    order: Placed,
    request: &Value,
    idempotency_key: Option<&str>,
) -> Result<Placement, PlacementError> {
    let order_id = Uuid::now_v7();
    let mut tx = pool.begin().await.context("starting a transaction")?;
    if let Some(key) = idempotency_key {
        // The body's fingerprint is computed by PostgreSQL from its `jsonb` form (keys sorted,
        // spacing normalised), so the same order written differently is the same request.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (key, request_hash, order_id) \
             VALUES ($1, sha256(convert_to(($2::jsonb)::text, 'UTF8')), $3) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(request)
        .bind(order_id)
        .execute(&mut *tx)
        .await
        .context("claiming the idempotency key")?
        .rows_affected()
            == 1;
        if !claimed {
            tx.rollback().await.context("rolling back")?;
            return replay(pool, key, request).await;
        }
    }

    let channel = order.channel.as_str();
    let external_reference = order.external_reference.clone();
    let envelope = Envelope::new(NAME, order_id, order);
    match insert(&mut tx, order_id, &envelope).await {
        Ok(()) => {}
        Err(e) if violates(&e, "orders_external_reference_unique") => {
            tx.rollback().await.context("rolling back")?;
            let existing: Uuid = sqlx::query_scalar(
                "SELECT id FROM orders WHERE channel = $1 AND external_reference = $2",
            )
            .bind(channel)
            .bind(external_reference)
            .fetch_one(pool)
            .await
            .context("finding the order with the same external reference")?;
            return Err(PlacementError::Duplicate { existing });
        }
        Err(e) => return Err(anyhow::Error::new(e).context("storing the order").into()),
    }
    outbox::enqueue(&mut tx, &envelope, None).await?;
    tx.commit().await.context("committing the order")?;
    metrics::counter!("orderflow_orders_total", "service" => NAME, "channel" => channel)
        .increment(1);
    tracing::info!(%order_id, channel, "order placed");
    Ok(Placement::Created(order_id))
}

/// The order of an earlier request with `key`, if its body was the same.
async fn replay(pool: &PgPool, key: &str, request: &Value) -> Result<Placement, PlacementError> {
    let (order_id, same): (Uuid, bool) = sqlx::query_as(
        "SELECT order_id, request_hash = sha256(convert_to(($2::jsonb)::text, 'UTF8')) \
         FROM idempotency_keys WHERE key = $1",
    )
    .bind(key)
    .bind(request)
    .fetch_one(pool)
    .await
    .context("reading the idempotency key")?;
    if same {
        Ok(Placement::Replayed(order_id))
    } else {
        Err(PlacementError::KeyReused)
    }
}

async fn insert(
    conn: &mut PgConnection,
    order_id: Uuid,
    envelope: &Envelope<Placed>,
) -> Result<(), sqlx::Error> {
    let order = &envelope.payload;
    sqlx::query(
        "INSERT INTO orders (id, channel, external_reference, status, progress, customer_id, \
         customer_email, customer_name, currency, shipping_address, billing_address, delivery, \
         payment_method, coupon_code, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
    )
    .bind(order_id)
    .bind(order.channel.as_str())
    .bind(&order.external_reference)
    .bind(Status::Placed.as_str())
    .bind(&order.customer.customer_id)
    .bind(order.customer.email.as_str())
    .bind(&order.customer.name)
    .bind(order.currency.as_str())
    .bind(Json(&order.shipping_address))
    .bind(order.billing_address.as_ref().map(Json))
    .bind(Json(&order.delivery))
    .bind(order.payment.method.as_str())
    .bind(&order.coupon_code)
    .bind(envelope.occurred_at)
    .execute(&mut *conn)
    .await?;
    for line in &order.lines {
        sqlx::query(
            "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price, customisations) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(order_id)
        .bind(i32::try_from(line.line_no).unwrap_or(i32::MAX))
        .bind(line.sku.as_str())
        .bind(i32::try_from(line.quantity).unwrap_or(i32::MAX))
        .bind(line.unit_price)
        .bind(&line.customisations)
        .execute(&mut *conn)
        .await?;
    }
    let first = Entry::new(
        envelope.message_id,
        &envelope.kind,
        NAME,
        envelope.occurred_at,
        Status::Placed,
        timeline::placed(order),
    );
    timeline::append(conn, order_id, &first).await?;
    Ok(())
}
