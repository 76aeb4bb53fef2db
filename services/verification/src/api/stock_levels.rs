//! `/v1/stock`: what each warehouse holds, has promised, and can still promise.

use axum::Json;
use axum::extract::State;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::Problem;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, Params, params};
use crate::backorder::Backorder;
use crate::low_stock::Replenishment;
use crate::stock::Level;
use crate::{backorder, catalogue, low_stock, stock};

#[derive(Debug, Serialize, ToSchema)]
pub struct StockLevels {
    items: Vec<Level>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LowStock {
    items: Vec<Replenishment>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Backorders {
    items: Vec<Backorder>,
}

/// `GET /v1/stock?sku=&warehouse=` (both optional) → `{"items": [{"warehouse", "sku",
/// "on_hand", "reserved", "available", "updated_at"}]}` in (SKU, warehouse) order. An unknown SKU
/// is a 404, so a typo does not look like an empty shelf.
#[utoipa::path(get, path = "/v1/stock", tag = "stock",
    description = "Role: `staff`, `admin`.",
    params(
        ("sku" = Option<String>, Query, description = "only this product"),
        ("warehouse" = Option<String>, Query, description = "only this warehouse"),
    ),
    responses(
        (status = 200, description = "the stock levels", body = StockLevels),
        (status = 400, description = "the query string is malformed"),
        (status = 404, description = "no product with this SKU"),
    ))]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    query: Params,
) -> Result<Json<StockLevels>, Problem> {
    caller.require(Role::Staff)?;
    let params = params(query)?;
    let sku = params.get("sku").map(String::as_str);
    let warehouse = params.get("warehouse").map(String::as_str);
    if let Some(sku) = sku
        && catalogue::get(&state.pool, sku).await?.is_none()
    {
        return Err(Problem::not_found(format!("no product with SKU `{sku}`")));
    }
    let items = stock::levels(&state.pool, sku, warehouse).await?;
    Ok(Json(StockLevels { items }))
}

/// `GET /v1/stock/low` → `{"items": [{"warehouse", "sku", "on_hand", "reserved", "available",
/// "reorder_point", "reorder_quantity", "low_since"}]}`: every stock row at or below its
/// product's reorder point, by SKU and warehouse: what needs replenishing.
#[utoipa::path(get, path = "/v1/stock/low", tag = "stock",
    description = "Role: `staff`, `admin`.",
    responses((status = 200, description = "what needs replenishing", body = LowStock)))]
pub async fn low(caller: Caller, State(state): State<AppState>) -> Result<Json<LowStock>, Problem> {
    caller.require(Role::Staff)?;
    let items = low_stock::list(&state.pool).await?;
    Ok(Json(LowStock { items }))
}

/// `GET /v1/backorders` → `{"items": [{"order_id", "status": "backordered|on_hold", "lines":
/// [{"line_no", "sku", "missing"}], "short_warehouse"?, "waiting_since"}]}`, oldest first.
#[utoipa::path(get, path = "/v1/backorders", tag = "stock",
    description = "Role: `staff`, `admin`.",
    responses((status = 200, description = "the orders waiting for stock", body = Backorders)))]
pub async fn backorders(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Backorders>, Problem> {
    caller.require(Role::Staff)?;
    let items = backorder::list(&state.pool).await?;
    Ok(Json(Backorders { items }))
}
