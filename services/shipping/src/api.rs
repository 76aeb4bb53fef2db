//! The HTTP API under `/v1`: shipments with their tracking history and link (role `shop` and
//! up), in-store collections (`staff`), and the carrier registry (read: `staff`, register:
//! `admin`, see [`crate::carriers`]). The carriers' webhook ingress ([`crate::webhook`]) sits
//! next to it, outside the API keys.
//!
//! Each handler carries its `#[utoipa::path]`; [`router`] routes and documents them in one go
//! and serves the document at `/openapi.json` ([`crate::openapi`]).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_runtime::HandleError;
use orderflow_runtime::auth::{Caller, Role, protect};
use orderflow_runtime::problem::{FieldError, Problem};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::carriers::{self, Registrar};
use crate::pickup::{self, Collection};
use crate::registry::{self, Carrier};
use crate::webhook::{self, Ingress};

/// The service's routes: `/v1` behind the API keys, the webhook ingress (signed instead), and
/// `/openapi.json` describing both.
pub fn router(
    registrar: Registrar,
    settings: &crate::ShippingSettings,
    keys: orderflow_runtime::auth::ApiKeys,
) -> Router {
    let pool = registrar.pool.clone();
    let (api, mut document) = operations()
        .with_state(pool.clone())
        .merge(carriers::operations().with_state(registrar))
        .split_for_parts();
    let (ingress, ingress_document) = webhook::operations()
        .with_state(Ingress::new(pool, settings.webhook_secrets.clone()))
        .split_for_parts();
    document.merge(ingress_document);
    protect(api, keys)
        .merge(ingress)
        .merge(orderflow_runtime::openapi::route(document))
}

/// The shipment operations, routed and documented.
pub fn operations() -> OpenApiRouter<PgPool> {
    OpenApiRouter::with_openapi(crate::openapi::Base::openapi())
        .routes(routes!(list_shipments))
        .routes(routes!(show_shipment))
        .routes(routes!(collected))
        .routes(routes!(list_carriers))
}

/// Money in minor units of its currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Amount {
    pub amount: i64,
    pub currency: String,
}

/// One status the carrier reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingEvent {
    /// `pre_transit`, `in_transit`, `out_for_delivery`, `delivered`, `available_for_pickup`,
    /// `return_to_sender`, `failure` or `cancelled`.
    pub status: String,
    /// When the carrier saw it.
    pub status_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When shipping heard of it.
    pub recorded_at: DateTime<Utc>,
}

/// A shipment: one warehouse's parcels of an order with one carrier.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentView {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    pub carrier: String,
    pub service_level: String,
    pub warehouse: String,
    pub status: String,
    pub status_at: Option<DateTime<Utc>>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub label_url: Option<String>,
    /// The parcels as fulfilment closed them.
    #[schema(value_type = Vec<Object>)]
    pub parcels: serde_json::Value,
    /// The delivery address.
    #[schema(value_type = Object)]
    pub ship_to: serde_json::Value,
    pub declared_value: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cash_on_delivery: Option<Amount>,
    /// Requests sent to the carrier (more than one: the label was late).
    pub label_attempts: i32,
    /// Oldest first, by the carrier's time.
    pub tracking: Vec<TrackingEvent>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ShipmentRow {
    shipment_id: Uuid,
    order_id: Uuid,
    carrier: String,
    service_level: String,
    warehouse: String,
    status: String,
    status_at: Option<DateTime<Utc>>,
    tracking_number: Option<String>,
    label_url: Option<String>,
    parcels: serde_json::Value,
    ship_to: serde_json::Value,
    declared_value: i64,
    cash_on_delivery: Option<i64>,
    currency: String,
    label_attempts: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    tracking_url_template: String,
}

#[derive(sqlx::FromRow)]
struct TrackingRow {
    shipment_id: Uuid,
    status: String,
    status_at: DateTime<Utc>,
    location: Option<String>,
    description: Option<String>,
    created_at: DateTime<Utc>,
}

const SELECT_SHIPMENTS: &str = "SELECT s.shipment_id, s.order_id, s.carrier, s.service_level, \
    s.warehouse, s.status, s.status_at, s.tracking_number, s.label_url, s.parcels, s.ship_to, \
    s.declared_value, s.cash_on_delivery, s.currency, s.label_attempts, s.created_at, s.updated_at, \
    c.tracking_url_template FROM shipments s JOIN carriers c ON c.code = s.carrier";

/// The rows with their tracking history.
async fn with_tracking(pool: &PgPool, rows: Vec<ShipmentRow>) -> sqlx::Result<Vec<ShipmentView>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.shipment_id).collect();
    let events: Vec<TrackingRow> = sqlx::query_as(
        "SELECT shipment_id, status, status_at, location, description, created_at \
         FROM tracking_events WHERE shipment_id = ANY($1) ORDER BY status_at, id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let tracking = events
                .iter()
                .filter(|e| e.shipment_id == r.shipment_id)
                .map(|e| TrackingEvent {
                    status: e.status.clone(),
                    status_at: e.status_at,
                    location: e.location.clone(),
                    description: e.description.clone(),
                    recorded_at: e.created_at,
                })
                .collect();
            ShipmentView {
                tracking_url: r
                    .tracking_number
                    .as_deref()
                    .map(|n| registry::tracking_url(&r.tracking_url_template, n)),
                shipment_id: r.shipment_id,
                order_id: r.order_id,
                carrier: r.carrier,
                service_level: r.service_level,
                warehouse: r.warehouse,
                status: r.status,
                status_at: r.status_at,
                tracking_number: r.tracking_number,
                label_url: r.label_url,
                parcels: r.parcels,
                ship_to: r.ship_to,
                declared_value: Amount {
                    amount: r.declared_value,
                    currency: r.currency.clone(),
                },
                cash_on_delivery: r.cash_on_delivery.map(|amount| Amount {
                    amount,
                    currency: r.currency.clone(),
                }),
                label_attempts: r.label_attempts,
                tracking,
                created_at: r.created_at,
                updated_at: r.updated_at,
            }
        })
        .collect())
}

/// Shipping's view of one order: whether it ships or is held, and its shipments.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderShipments {
    pub order_id: Uuid,
    /// `shipping`, `on_hold`, `cancelled`, or `null` if shipping has not seen the order yet.
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,
    pub shipments: Vec<ShipmentView>,
}

/// An order's shipments with their tracking history and link.
#[utoipa::path(get, path = "/v1/shipments", tag = "shipments",
    description = "Role: `shop`, `staff`, `admin`.",
    params(("order_id" = Uuid, Query, description = "the order")),
    responses(
        (status = 200, description = "the order's shipments", body = OrderShipments),
        (status = 422, description = "`order_id` is missing or not a UUID"),
    ))]
async fn list_shipments(
    caller: Caller,
    State(pool): State<PgPool>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<OrderShipments>, Problem> {
    caller.require(Role::Shop)?;
    let order_id = match params
        .get("order_id")
        .map(|raw| Uuid::parse_str(raw.trim()))
    {
        Some(Ok(id)) => id,
        Some(Err(_)) => {
            return Err(Problem::validation(vec![FieldError::new(
                "order_id",
                "format",
                "order_id must be a UUID",
            )]));
        }
        None => {
            return Err(Problem::validation(vec![FieldError::new(
                "order_id",
                "required",
                "give the order: /v1/shipments?order_id=<uuid>",
            )]));
        }
    };
    let order: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT status, hold_reason FROM shipping_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&pool)
            .await?;
    let rows: Vec<ShipmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_SHIPMENTS} WHERE s.order_id = $1 ORDER BY s.warehouse"
    )))
    .bind(order_id)
    .fetch_all(&pool)
    .await?;
    let (status, hold_reason) = order.map_or((None, None), |(s, r)| (Some(s), r));
    Ok(Json(OrderShipments {
        order_id,
        status,
        hold_reason,
        shipments: with_tracking(&pool, rows).await?,
    }))
}

/// One shipment with its tracking history and link.
#[utoipa::path(get, path = "/v1/shipments/{id}", tag = "shipments",
    description = "Role: `shop`, `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the shipment's id")),
    responses(
        (status = 200, description = "the shipment", body = ShipmentView),
        (status = 404, description = "no such shipment"),
    ))]
async fn show_shipment(
    caller: Caller,
    State(pool): State<PgPool>,
    Path(id): Path<String>,
) -> Result<Json<ShipmentView>, Problem> {
    caller.require(Role::Shop)?;
    one_shipment(&pool, &id).await.map(Json)
}

/// Staff confirm an in-store collection; the shipment is `delivered`. Confirming twice is
/// harmless.
#[utoipa::path(post, path = "/v1/shipments/{id}/collected", tag = "shipments",
    description = "Role: `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the shipment's id")),
    responses(
        (status = 200, description = "collected", body = ShipmentView),
        (status = 404, description = "no such shipment"),
        (status = 409, description = "not an in-store collection, or not waiting for collection"),
    ))]
async fn collected(
    caller: Caller,
    State(pool): State<PgPool>,
    Path(id): Path<String>,
) -> Result<Json<ShipmentView>, Problem> {
    caller.require(Role::Staff)?;
    let shipment_id = Uuid::parse_str(id.trim())
        .map_err(|_| Problem::not_found(format!("no shipment `{id}`")))?;
    let mut tx = pool.begin().await?;
    let outcome = pickup::confirm(&mut tx, shipment_id)
        .await
        .map_err(|e| match e {
            HandleError::Transient(e) => Problem::internal(&e),
            HandleError::Permanent(why) => Problem::conflict(why),
        })?;
    match outcome {
        Collection::Collected => orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?,
        Collection::AlreadyCollected => {}
        Collection::Unknown => return Err(Problem::not_found(format!("no shipment `{id}`"))),
        Collection::OtherCarrier(carrier) => {
            return Err(Problem::conflict(format!(
                "shipment {shipment_id} travels with carrier `{carrier}`; only in-store collections (carrier `pickup`) are confirmed here"
            )));
        }
        Collection::NotReady(status) => {
            return Err(Problem::conflict(format!(
                "shipment {shipment_id} is `{status}`, not waiting for collection"
            )));
        }
    }
    one_shipment(&pool, &id).await.map(Json)
}

async fn one_shipment(pool: &PgPool, id: &str) -> Result<ShipmentView, Problem> {
    let not_found = || Problem::not_found(format!("no shipment `{id}`"));
    let shipment_id = Uuid::parse_str(id.trim()).map_err(|_| not_found())?;
    let row: Option<ShipmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_SHIPMENTS} WHERE s.shipment_id = $1"
    )))
    .bind(shipment_id)
    .fetch_optional(pool)
    .await?;
    let row = row.ok_or_else(not_found)?;
    with_tracking(pool, vec![row])
        .await?
        .pop()
        .ok_or_else(not_found)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Carriers {
    pub carriers: Vec<Carrier>,
}

/// Every registered carrier.
#[utoipa::path(get, path = "/v1/carriers", tag = "carriers",
    description = "Role: `staff`, `admin`.",
    responses((status = 200, description = "the carriers", body = Carriers)))]
async fn list_carriers(
    caller: Caller,
    State(pool): State<PgPool>,
) -> Result<Json<Carriers>, Problem> {
    caller.require(Role::Staff)?;
    Ok(Json(Carriers {
        carriers: registry::carriers(&pool).await?,
    }))
}
