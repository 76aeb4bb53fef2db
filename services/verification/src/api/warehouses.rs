//! `/v1/warehouses`: warehouses, and the goods people put in or take out of them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use orderflow_messages::types::Sku;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, in_range, required, text};
use crate::backorder;
use crate::stock::{self, Level, ReceiptLine, StockChangeError};
use crate::warehouse::{self, Warehouse, WarehouseCode};

/// Most units one receipt line or adjustment may move.
const MAX_UNITS: i64 = 1_000_000_000;

/// A warehouse as `PUT /v1/warehouses/{code}` takes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseBody {
    #[schema(required = true, max_length = 200)]
    name: Option<String>,
}

/// Goods received.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    #[schema(required = true, min_items = 1)]
    lines: Option<Vec<ReceiptLineBody>>,
    #[schema(max_length = 200)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLineBody {
    #[schema(required = true)]
    sku: Option<String>,
    #[schema(required = true, minimum = 1, maximum = 1_000_000_000)]
    quantity: Option<i64>,
}

/// A correction of stock, up or down (never below what is reserved).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentBody {
    #[schema(required = true)]
    sku: Option<String>,
    /// Not 0.
    #[schema(required = true, minimum = -1_000_000_000, maximum = 1_000_000_000)]
    delta: Option<i64>,
    #[schema(required = true, max_length = 200)]
    reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseList {
    items: Vec<Warehouse>,
}

/// The stock levels of a warehouse after a receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    warehouse: String,
    stock: Vec<Level>,
}

fn code_of(raw: &str, errors: &mut Vec<FieldError>) -> Option<WarehouseCode> {
    WarehouseCode::parse(raw)
        .map_err(|e| errors.push(FieldError::new("warehouse", "format", e)))
        .ok()
}

fn sku_of(raw: Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<Sku> {
    required(raw, field, errors).and_then(|s| {
        Sku::parse(&s)
            .map_err(|e| errors.push(FieldError::new(field, "format", e)))
            .ok()
    })
}

/// Creates or renames a warehouse.
#[utoipa::path(put, path = "/v1/warehouses/{code}", tag = "stock",
    description = "Role: `admin`.",
    params(("code" = String, Path, description = "the warehouse's code")),
    request_body(content = WarehouseBody, content_type = "application/json"),
    responses(
        (status = 201, description = "created", body = Warehouse),
        (status = 200, description = "renamed", body = Warehouse),
        (status = 422, description = "the code or the name failed its rule"),
    ))]
pub async fn put(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<WarehouseBody>,
) -> Result<(StatusCode, Json<Warehouse>), Problem> {
    caller.require(Role::Admin)?;
    let mut errors = Vec::new();
    let code = code_of(&code, &mut errors);
    let name =
        required(body.name, "name", &mut errors).and_then(|n| text(n, 200, "name", &mut errors));
    let (Some(code), Some(name)) = (code, name) else {
        return Err(Problem::validation(errors));
    };
    let (warehouse, created) = warehouse::put(&state.pool, &code, &name).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(warehouse)))
}

/// Every warehouse by code.
#[utoipa::path(get, path = "/v1/warehouses", tag = "stock",
    description = "Role: `staff`, `admin`.",
    responses((status = 200, description = "the warehouses", body = WarehouseList)))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<WarehouseList>, Problem> {
    caller.require(Role::Staff)?;
    let items = warehouse::list(&state.pool).await?;
    Ok(Json(WarehouseList { items }))
}

/// A refused stock change as a problem; `sku_field` names the field of the n-th SKU.
fn refused(error: StockChangeError, sku_field: impl Fn(usize) -> String) -> Problem {
    match error {
        StockChangeError::UnknownWarehouse(code) => Problem::validation(vec![FieldError::new(
            "warehouse",
            "exists",
            format!("warehouse `{code}` does not exist; create it with PUT /v1/warehouses/{code}"),
        )]),
        StockChangeError::UnknownSkus(unknown) => Problem::validation(
            unknown
                .into_iter()
                .map(|(i, sku)| {
                    FieldError::new(
                        sku_field(i),
                        "exists",
                        format!("SKU `{sku}` is not in the catalogue; add it with PUT /v1/products/{sku}"),
                    )
                })
                .collect(),
        ),
        e @ StockChangeError::BelowReserved { .. } => {
            Problem::validation(vec![FieldError::new("delta", "range", e.to_string())])
        }
        StockChangeError::Unexpected(e) => Problem::internal(&e),
    }
}

/// Books received goods; waiting backorders are served from them at once.
#[utoipa::path(post, path = "/v1/warehouses/{code}/receipts", tag = "stock",
    description = "Role: `admin`.",
    params(("code" = String, Path, description = "the warehouse's code")),
    request_body(content = ReceiptBody, content_type = "application/json"),
    responses(
        (status = 200, description = "booked: the stock levels after", body = Receipt),
        (status = 422, description = "an unknown warehouse or SKU, or a line failed its rule"),
    ))]
pub async fn receive(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<ReceiptBody>,
) -> Result<Json<Receipt>, Problem> {
    caller.require(Role::Admin)?;
    let mut errors = Vec::new();
    let code = code_of(&code, &mut errors);
    let note = match body.reason {
        Some(r) => text(r, 200, "reason", &mut errors).map(Some),
        None => Some(None),
    };
    let raw_lines = required(body.lines, "lines", &mut errors).unwrap_or_default();
    if raw_lines.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "lines",
            "length",
            "a receipt needs at least one line",
        ));
    }
    let mut lines = Vec::with_capacity(raw_lines.len());
    for (i, line) in raw_lines.into_iter().enumerate() {
        let sku = sku_of(line.sku, &format!("lines[{i}].sku"), &mut errors);
        let field = format!("lines[{i}].quantity");
        let quantity = required(line.quantity, &field, &mut errors)
            .filter(|q| in_range(*q, 1, MAX_UNITS, &field, &mut errors));
        if let (Some(sku), Some(quantity)) = (sku, quantity) {
            lines.push(ReceiptLine { sku, quantity });
        }
    }
    let (Some(code), Some(note), true) = (code, note, errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    let levels: Vec<Level> = stock::receive(&state.pool, code.as_str(), &lines, note.as_deref())
        .await
        .map_err(|e| refused(e, |i| format!("lines[{i}].sku")))?;
    let skus: Vec<String> = lines.iter().map(|l| l.sku.as_str().to_owned()).collect();
    refill(&state, skus).await;
    Ok(Json(Receipt {
        warehouse: code.as_str().to_owned(),
        stock: levels,
    }))
}

/// Corrects stock (a count, breakage); never below what is reserved.
#[utoipa::path(post, path = "/v1/warehouses/{code}/adjustments", tag = "stock",
    description = "Role: `admin`.",
    params(("code" = String, Path, description = "the warehouse's code")),
    request_body(content = AdjustmentBody, content_type = "application/json"),
    responses(
        (status = 200, description = "the stock level after", body = Level),
        (status = 422, description = "an unknown warehouse or SKU, a delta of 0, or below what is reserved"),
    ))]
pub async fn adjust(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<AdjustmentBody>,
) -> Result<Json<Level>, Problem> {
    caller.require(Role::Admin)?;
    let mut errors = Vec::new();
    let code = code_of(&code, &mut errors);
    let sku = sku_of(body.sku, "sku", &mut errors);
    let delta = required(body.delta, "delta", &mut errors).filter(|d| {
        if *d == 0 {
            errors.push(FieldError::new("delta", "range", "`delta` must not be 0"));
            return false;
        }
        in_range(*d, -MAX_UNITS, MAX_UNITS, "delta", &mut errors)
    });
    let reason = required(body.reason, "reason", &mut errors)
        .and_then(|r| text(r, 200, "reason", &mut errors));
    let (Some(code), Some(sku), Some(delta), Some(reason)) = (code, sku, delta, reason) else {
        return Err(Problem::validation(errors));
    };
    let level = stock::adjust(&state.pool, code.as_str(), &sku, delta, &reason)
        .await
        .map_err(|e| refused(e, |_| "sku".to_owned()))?;
    if delta > 0 {
        refill(&state, vec![sku.as_str().to_owned()]).await;
    }
    Ok(Json(level))
}

/// Serves the backorders the new stock allows, first come first served. The stock is booked
/// whatever happens here: a failure is logged, and the periodic sweep tries again.
async fn refill(state: &AppState, skus: Vec<String>) {
    match backorder::refill(&state.pool, &state.settings, Some(skus)).await {
        Ok(0) => {}
        Ok(served) => tracing::info!(served, "backorders served from new stock"),
        Err(e) => tracing::warn!(error = format!("{e:#}"), "refilling backorders"),
    }
}
