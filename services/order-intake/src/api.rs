//! The HTTP API under `/v1`, every route behind an API key:
//!
//! - `POST /v1/orders` (shop): place an order; honours `Idempotency-Key`.
//! - `GET /v1/orders/{id}` (shop): the order with its lines and timeline.
//! - `GET /v1/orders?status=&limit=` (staff): newest orders first.
//! - `GET /v1/orders/stats` (staff): how many orders are in each status.

use anyhow::Context;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orderflow_runtime::auth::{ApiKeys, Caller, Role, protect};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::lifecycle::Status;
use crate::order_request::OrderRequest;
use crate::orders;
use crate::placement::{self, Placement, PlacementError};

/// Orders listed when `limit` is not given, and the most one page may hold.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;
/// Longest `Idempotency-Key` accepted (a UUID needs 36).
const MAX_KEY_LEN: usize = 255;

pub fn router(pool: PgPool, keys: ApiKeys) -> Router {
    let api = Router::new()
        .route("/v1/orders", get(list_orders).post(place_order))
        .route("/v1/orders/stats", get(order_stats))
        .route("/v1/orders/{id}", get(get_order))
        .with_state(pool);
    protect(api, keys)
}

async fn place_order(
    State(pool): State<PgPool>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<JsonBody<OrderRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let key = idempotency_key(&headers)?;
    let JsonBody(request) = body?;
    let order = request.parse().map_err(Problem::validation)?;
    let (channel, reference) = (order.channel, order.external_reference.clone());
    let fingerprint = serde_json::to_value(&request).context("fingerprinting the request")?;
    let placement = placement::place(&pool, order, &fingerprint, key)
        .await
        .map_err(|e| match e {
            PlacementError::Duplicate { existing } => Problem::conflict(format!(
                "an order from channel `{}` with external reference `{}` exists already",
                channel.as_str(),
                reference.unwrap_or_default()
            ))
            .with("order_id", existing),
            PlacementError::KeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused with another request",
            )
            .detail(
                "this Idempotency-Key was sent before with a different body; \
                 use a new key for a new order",
            ),
            PlacementError::Unexpected(e) => Problem::internal(&e),
        })?;
    let id = placement.order_id();
    let mut conn = pool.acquire().await?;
    let view = orders::find(&mut conn, id)
        .await?
        .with_context(|| format!("order {id} vanished right after it was placed"))?;
    let mut response = (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/orders/{id}"))],
        axum::Json(view),
    )
        .into_response();
    if let Placement::Replayed(_) = placement {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().unwrap_or_default();
    let valid =
        !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(Some(key))
    } else {
        Err(Problem::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters, e.g. a UUID"
        )))
    }
}

async fn get_order(
    State(pool): State<PgPool>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| Problem::bad_request(format!("`{id}` is not an order id (a UUID)")))?;
    let mut conn = pool.acquire().await?;
    match orders::find(&mut conn, id).await? {
        Some(view) => Ok(axum::Json(view).into_response()),
        None => Err(Problem::not_found(format!("there is no order {id}"))),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
}

async fn list_orders(
    State(pool): State<PgPool>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let mut errors = Vec::new();
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            let status = Status::parse(raw);
            if status.is_none() {
                let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                errors.push(FieldError::new(
                    "status",
                    "one_of",
                    format!("`{raw}` is not one of: {}", names.join(", ")),
                ));
            }
            status
        }
    };
    let limit = match query.limit.as_deref().filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "range",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let orders = orders::newest(&pool, status, limit).await?;
    Ok(axum::Json(json!({ "orders": orders })).into_response())
}

async fn order_stats(State(pool): State<PgPool>, caller: Caller) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    Ok(axum::Json(orders::stats(&pool).await?).into_response())
}
