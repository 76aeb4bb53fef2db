//! `/v1/stock`: what each warehouse holds, has promised, and can still promise.

use axum::Json;
use axum::extract::State;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::Problem;
use serde_json::{Value, json};

use super::{AppState, Params, params};
use crate::{backorder, catalogue, low_stock, stock};

/// `GET /v1/stock?sku=&warehouse=` (both optional) → `{"items": [{"warehouse", "sku",
/// "on_hand", "reserved", "available", "updated_at"}]}` in (SKU, warehouse) order. An unknown SKU
/// is a 404, so a typo does not look like an empty shelf.
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    query: Params,
) -> Result<Json<Value>, Problem> {
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
    Ok(Json(json!({ "items": items })))
}

/// `GET /v1/stock/low` → `{"items": [{"warehouse", "sku", "on_hand", "reserved", "available",
/// "reorder_point", "reorder_quantity", "low_since"}]}`: every stock row at or below its
/// product's reorder point, by SKU and warehouse: what needs replenishing.
pub async fn low(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let items = low_stock::list(&state.pool).await?;
    Ok(Json(json!({ "items": items })))
}

/// `GET /v1/backorders` → `{"items": [{"order_id", "status": "backordered|on_hold", "lines":
/// [{"line_no", "sku", "missing"}], "short_warehouse"?, "waiting_since"}]}`, oldest first.
pub async fn backorders(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let items = backorder::list(&state.pool).await?;
    Ok(Json(json!({ "items": items })))
}
