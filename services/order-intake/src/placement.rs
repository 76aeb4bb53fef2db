//! Placing an order: the order, its lines, the first timeline entry and the `order.placed`
//! message (and the idempotency key with its answer) are written in one statement, so a placed
//! order is always announced and a refused one leaves nothing behind.
//!
//! Both guards against doubles rest on unique constraints, never on a look-up before the insert,
//! so two concurrent requests cannot both pass: the `Idempotency-Key` is the primary key of
//! `idempotency_keys` (a second insert waits for the first transaction and then conflicts), and
//! `(channel, external_reference)` is unique in `orders`.

use anyhow::Context;
use chrono::SubsecRound;
use orderflow_messages::Envelope;
use orderflow_messages::order::Placed;
use orderflow_runtime::amqp::Outgoing;
use orderflow_runtime::database::violates;
use orderflow_runtime::outbox;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::lifecycle::Status;
use crate::timeline::{self, Entry};
use crate::{NAME, SCHEMA, orders};

/// How a request to place an order ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// A new order, and the body of the answer (the order as just stored).
    Created { order_id: Uuid, body: Value },
    /// The same `Idempotency-Key` and body as an earlier request: that request's answer.
    Replayed { status: u16, body: Value },
}

/// Who places the order and how they asked.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The body as received, for the idempotency fingerprint (`null` without a key).
    pub body: &'a Value,
    /// The `Idempotency-Key`, already scoped to the caller.
    pub idempotency_key: Option<&'a str>,
    /// How long a key is remembered.
    pub key_lifetime: std::time::Duration,
    /// The owning shop (the key's name), if any.
    pub shop: Option<&'a str>,
    /// Shown in the timeline: the key's name or role.
    pub requested_by: &'a str,
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

/// Stores `order` and its `order.placed` message.
pub async fn place(
    pool: &PgPool,
    order: Placed,
    request: Request<'_>,
) -> Result<Placement, PlacementError> {
    let order_id = Uuid::now_v7();
    let channel = order.channel.as_str();
    let external_reference = order.external_reference.clone();
    let mut envelope = Envelope::new(NAME, order_id, order);
    // Stored with PostgreSQL's precision, so the answer below is what a read shows later.
    envelope.occurred_at = envelope.occurred_at.trunc_subsecs(6);
    let first = first_entry(&envelope, request);
    let message = Outgoing::from_envelope(&envelope, None)?;
    // The answer is known before anything is stored; an idempotency key keeps it for replays.
    let view = orders::OrderView::placed(
        order_id,
        &envelope.payload,
        envelope.occurred_at,
        request.shop,
        first.clone(),
    );
    let body = serde_json::to_value(view).context("serialising the order")?;
    match insert(pool, &envelope, &first, &message, &body, request).await {
        Ok(true) => {}
        // The key belongs to an earlier request (committed, or it was waited for).
        Ok(false) => {
            let key = request.idempotency_key.unwrap_or_default();
            return replay(pool, key, request.body).await;
        }
        Err(e) if violates(&e, "orders_external_reference_unique") => {
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
    outbox::wake(SCHEMA);
    metrics::counter!("orderflow_orders_total", "service" => NAME, "channel" => channel)
        .increment(1);
    tracing::info!(%order_id, channel, "order placed");
    Ok(Placement::Created { order_id, body })
}

/// The order of an earlier request with `key`, if its body was the same.
async fn replay(pool: &PgPool, key: &str, request: &Value) -> Result<Placement, PlacementError> {
    let (same, status, body): (bool, Option<i32>, Option<Value>) = sqlx::query_as(
        "SELECT request_hash = sha256(convert_to(($2::jsonb)::text, 'UTF8')), response_status, \
         response_body FROM idempotency_keys WHERE key = $1",
    )
    .bind(key)
    .bind(request)
    .fetch_one(pool)
    .await
    .context("reading the idempotency key")?;
    if !same {
        return Err(PlacementError::KeyReused);
    }
    // Both are written in the transaction that claimed the key, so a committed key has them.
    let (Some(status), Some(body)) = (status, body) else {
        return Err(anyhow::anyhow!("idempotency key {key} has no stored answer").into());
    };
    Ok(Placement::Replayed {
        status: u16::try_from(status).unwrap_or(500),
        body,
    })
}

fn first_entry(envelope: &Envelope<Placed>, request: Request<'_>) -> Entry {
    Entry::new(
        envelope.message_id,
        &envelope.kind,
        NAME,
        envelope.occurred_at,
        Status::Placed,
        timeline::placed(&envelope.payload),
    )
    .requested_by(Some(request.requested_by.to_owned()))
}

/// The whole placement in one statement, so one round trip and one commit: the idempotency key
/// (if any) with its answer, the order, its lines, its first timeline entry and its
/// `order.placed` in the outbox. `false` if the key is an earlier request's: then nothing is
/// written. A second request with the same key waits for the first's commit, then finds the
/// key taken. A taken `(channel, external_reference)` fails the statement, writing nothing.
async fn insert(
    pool: &PgPool,
    envelope: &Envelope<Placed>,
    first: &Entry,
    message: &Outgoing,
    body: &Value,
    request: Request<'_>,
) -> Result<bool, sqlx::Error> {
    let order = &envelope.payload;
    let line_nos: Vec<i32> = order
        .lines
        .iter()
        .map(|l| i32::try_from(l.line_no).unwrap_or(i32::MAX))
        .collect();
    let skus: Vec<&str> = order.lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities: Vec<i32> = order
        .lines
        .iter()
        .map(|l| i32::try_from(l.quantity).unwrap_or(i32::MAX))
        .collect();
    let unit_prices: Vec<i64> = order.lines.iter().map(|l| l.unit_price).collect();
    // A line's customisations travel as one JSON array each (arrays of arrays must be square).
    let customisations: Vec<Json<&Vec<String>>> = order
        .lines
        .iter()
        .map(|l| Json(&l.customisations))
        .collect();
    // The body's fingerprint is computed by PostgreSQL from its `jsonb` form (keys sorted,
    // spacing normalised), so the same order written differently is the same request. A key
    // older than its lifetime is taken over as if it were new.
    let stored: i64 = sqlx::query_scalar(
        "WITH claimed AS ( \
             INSERT INTO idempotency_keys (key, request_hash, order_id, response_status, \
             response_body) \
             SELECT $26, sha256(convert_to(($27::jsonb)::text, 'UTF8')), $1, 201, $28 \
             WHERE $26::text IS NOT NULL \
             ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, \
             order_id = EXCLUDED.order_id, response_status = EXCLUDED.response_status, \
             response_body = EXCLUDED.response_body, created_at = now(), updated_at = now() \
             WHERE idempotency_keys.created_at < now() - make_interval(secs => $29) \
             RETURNING 1), \
         go AS (SELECT 1 WHERE $26::text IS NULL OR EXISTS (SELECT 1 FROM claimed)), \
         placed AS ( \
             INSERT INTO orders (id, channel, external_reference, status, progress, customer_id, \
             customer_email, customer_name, currency, shipping_address, billing_address, \
             delivery, payment_method, coupon_code, created_at, updated_at, shop) \
             SELECT $1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15 \
             FROM go RETURNING id), \
         lines AS ( \
             INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price, \
             customisations) \
             SELECT placed.id, l.line_no, l.sku, l.quantity, l.unit_price, \
             ARRAY(SELECT jsonb_array_elements_text(l.customisations)) \
             FROM placed, unnest($16::int4[], $17::text[], $18::int4[], $19::int8[], \
             $20::jsonb[]) AS l(line_no, sku, quantity, unit_price, customisations)), \
         entry AS ( \
             INSERT INTO timeline (order_id, message_id, kind, status, producer, detail, \
             occurred_at, requested_by) \
             SELECT placed.id, $21, $22, $4, $23, $24, $14, $25 FROM placed), \
         announced AS ( \
             INSERT INTO outbox (message_id, exchange, routing_key, kind, body) \
             SELECT $30, $31, $32, $33, $34 FROM placed) \
         SELECT count(*) FROM placed",
    )
    .bind(envelope.order_id)
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
    .bind(request.shop)
    .bind(&line_nos)
    .bind(&skus)
    .bind(&quantities)
    .bind(&unit_prices)
    .bind(&customisations)
    .bind(first.message_id)
    .bind(&first.kind)
    .bind(&first.producer)
    .bind(&first.detail)
    .bind(&first.requested_by)
    .bind(request.idempotency_key)
    .bind(request.body)
    .bind(body)
    .bind(request.key_lifetime.as_secs_f64())
    .bind(message.message_id)
    .bind(message.exchange.name())
    .bind(&message.routing_key)
    .bind(&message.kind)
    .bind(&message.body)
    .fetch_one(pool)
    .await?;
    Ok(stored == 1)
}
