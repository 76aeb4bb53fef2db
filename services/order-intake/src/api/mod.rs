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
//!
//! Each handler carries its `#[utoipa::path]`; [`operations`] routes and documents them in one
//! go, and `/openapi.json` serves the result ([`crate::openapi`]).

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use orderflow_runtime::auth::{ApiKeys, Caller, Role, protect};
use orderflow_runtime::problem::Problem;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
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

/// Every route behind the API key check, and `/openapi.json` (no key) describing them.
pub fn router(api: Api, keys: ApiKeys) -> Router {
    let (routes, document) = operations().with_state(api).split_for_parts();
    protect(routes, keys).merge(orderflow_runtime::openapi::route(document))
}

/// Every operation, each routed and documented from its handler's `#[utoipa::path]`: what is
/// routed here is in the document, and nothing else is.
pub fn operations() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(crate::openapi::Base::openapi())
        .routes(routes!(listing::list_orders, placing::place_order))
        .routes(
            routes!(crate::import::import_orders)
                .layer(DefaultBodyLimit::max(crate::import::IMPORT_BODY_LIMIT)),
        )
        .routes(routes!(listing::order_stats))
        .routes(routes!(get_order))
        .routes(routes!(get_timeline))
        .routes(routes!(cancelling::cancel_order))
        .routes(routes!(cancelling::change_payment_method))
        .routes(routes!(feedback::give_feedback))
        .routes(routes!(webhooks::delivery_log))
        .routes(routes!(feedback::feedback_summary))
        .routes(routes!(webhooks::list, webhooks::subscribe))
        .routes(routes!(webhooks::unsubscribe))
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

/// An order's timeline, as `GET /v1/orders/{id}/timeline` answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineView {
    pub order_id: Uuid,
    pub status: String,
    pub entries: Vec<timeline::Entry>,
}

/// The order, its status, shipments, invoice, payment and timeline.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    description = "Role: `shop` (its own orders; another shop's is a 404), `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the order's id")),
    responses(
        (status = 200, description = "the order", body = OrderView),
        (status = 400, description = "the id is not a UUID"),
        (status = 404, description = "no such order (or another shop's)"),
    ))]
async fn get_order(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let view = visible_order(&api, &caller, order_id(&id)?).await?;
    Ok(axum::Json(view).into_response())
}

/// Every event of the order with its time, cause and who acted.
#[utoipa::path(get, path = "/v1/orders/{id}/timeline", tag = "orders",
    description = "Role: `shop` (its own orders), `staff`, `admin`. `cause` is the type of the \
                   message that led to the entry.",
    params(("id" = Uuid, Path, description = "the order's id")),
    responses(
        (status = 200, description = "the timeline", body = TimelineView),
        (status = 400, description = "the id is not a UUID"),
        (status = 404, description = "no such order (or another shop's)"),
    ))]
async fn get_timeline(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let view = visible_order(&api, &caller, order_id(&id)?).await?;
    let mut conn = api.pool.acquire().await?;
    let entries = timeline::of_order(&mut conn, view.id).await?;
    Ok(axum::Json(TimelineView {
        order_id: view.id,
        status: view.status,
        entries,
    })
    .into_response())
}
