//! The HTTP API under `/v1`, every route behind an API key. A shop key sees and acts on its own
//! orders only (another shop's order is a 404, as if it did not exist); staff and admin on all.
//!
//! - `POST /v1/orders` (shop): place an order; honours `Idempotency-Key` ([`placing`]).
//! - `POST /v1/orders/import` (staff): many orders from CSV or JSON Lines ([`crate::import`]).
//! - `GET /v1/orders/{id}` (shop): the order, its shipments, invoice, payment and timeline.
//! - `GET /v1/orders/{id}/timeline` (shop): every event with its time, cause and who acted.
//! - `GET /v1/orders?status=&channel=&customer_email=&placed_after=&placed_before=&limit=&cursor=`
//!   (shop: own orders; staff: all), newest first, paged by a keyset cursor ([`listing`]).
//! - `GET /v1/orders/stats` (staff): how many orders are in each status.
//! - `POST /v1/orders/{id}/cancel` (shop owner, staff): ask to cancel ([`cancelling`]).
//! - `PUT /v1/orders/{id}/payment-method` (shop owner, staff): a new payment method
//!   ([`cancelling`] too: both are requests about an order in flight).
//! - `POST /v1/orders/{id}/feedback` (shop owner, staff), `GET /v1/feedback/summary` (staff)
//!   ([`feedback`]).
//! - `POST/GET /v1/webhooks`, `DELETE /v1/webhooks/{id}` (shop: its own), and
//!   `GET /v1/orders/{id}/notifications`, the order's delivery log ([`webhooks`]).

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use orderflow_runtime::auth::{ApiKeys, Caller, Role, protect};
use orderflow_runtime::problem::Problem;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::orders::{self, OrderView, Reader};
use crate::timeline;

mod cancelling;
mod feedback;
mod listing;
mod placing;
mod webhooks;

/// What every handler needs.
#[derive(Debug, Clone)]
pub struct Api {
    pub pool: PgPool,
    /// How long an `Idempotency-Key` is remembered.
    pub key_lifetime: Duration,
    /// Where webhook subscriptions may use plain `http://`.
    pub plain_http: crate::delivery::PlainHttp,
}

/// Every route, in the order of [`crate::openapi::OPERATIONS`]; `/openapi.json` needs no key.
pub fn router(api: Api, keys: ApiKeys) -> Router {
    let routes = Router::new()
        .route(
            "/v1/orders",
            get(listing::list_orders).post(placing::place_order),
        )
        .route(
            "/v1/orders/import",
            post(crate::import::import_orders)
                .layer(DefaultBodyLimit::max(crate::import::IMPORT_BODY_LIMIT)),
        )
        .route("/v1/orders/stats", get(listing::order_stats))
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/timeline", get(get_timeline))
        .route("/v1/orders/{id}/cancel", post(cancelling::cancel_order))
        .route(
            "/v1/orders/{id}/payment-method",
            put(cancelling::change_payment_method),
        )
        .route("/v1/orders/{id}/feedback", post(feedback::give_feedback))
        .route("/v1/orders/{id}/notifications", get(webhooks::delivery_log))
        .route("/v1/feedback/summary", get(feedback::feedback_summary))
        .route(
            "/v1/webhooks",
            get(webhooks::list).post(webhooks::subscribe),
        )
        .route("/v1/webhooks/{id}", delete(webhooks::unsubscribe))
        .with_state(api);
    let document = Router::new().route(
        "/openapi.json",
        get(|| async { axum::Json(crate::openapi::document()) }),
    );
    protect(routes, keys).merge(document)
}

/// The order id in a path.
pub fn order_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw)
        .map_err(|_| Problem::bad_request(format!("`{raw}` is not an order id (a UUID)")))
}

pub fn no_such_order(id: Uuid) -> Problem {
    Problem::not_found(format!("there is no order {id}"))
}

/// What the caller calls itself in the timeline: its key's name, else its role.
pub fn who(caller: &Caller) -> String {
    match &caller.key_name {
        Some(name) => format!("{}:{name}", caller.role.as_str()),
        None => caller.role.as_str().to_owned(),
    }
}

/// The order `id` if the caller may see it; another shop's order is 404, like a missing one.
async fn visible_order(api: &Api, caller: &Caller, id: Uuid) -> Result<OrderView, Problem> {
    let mut conn = api.pool.acquire().await?;
    match orders::find(&mut conn, id).await? {
        Some(view) if Reader::of(caller).can_see(view.shop.as_deref()) => Ok(view),
        _ => Err(no_such_order(id)),
    }
}

async fn get_order(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let view = visible_order(&api, &caller, order_id(&id)?).await?;
    Ok(axum::Json(view).into_response())
}

async fn get_timeline(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let view = visible_order(&api, &caller, order_id(&id)?).await?;
    let mut conn = api.pool.acquire().await?;
    let entries = timeline::of_order(&mut conn, view.id).await?;
    Ok(axum::Json(json!({
        "order_id": view.id,
        "status": view.status,
        "entries": entries,
    }))
    .into_response())
}
