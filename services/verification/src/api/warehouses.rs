//! `/v1/warehouses`: warehouses, and the goods people put in or take out of them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use orderflow_messages::types::Sku;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, in_range, required, text};
use crate::backorder;
use crate::stock::{self, Level, ReceiptLine, StockChangeError};
use crate::warehouse::{self, Warehouse, WarehouseCode};

/// Most units one receipt line or adjustment may move.
const MAX_UNITS: i64 = 1_000_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseBody {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    lines: Option<Vec<ReceiptLineBody>>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLineBody {
    sku: Option<String>,
    quantity: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentBody {
    sku: Option<String>,
    delta: Option<i64>,
    reason: Option<String>,
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

/// Creates (201) or renames (200) a warehouse. Admin only.
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

/// Every warehouse by code: `{"items": [...]}`.
pub async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let items = warehouse::list(&state.pool).await?;
    Ok(Json(json!({ "items": items })))
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

/// Books received goods: `{"lines": [{"sku", "quantity"}], "reason"?}` → the stock levels after.
/// Admin only.
pub async fn receive(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<ReceiptBody>,
) -> Result<Json<Value>, Problem> {
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
    Ok(Json(json!({ "warehouse": code.as_str(), "stock": levels })))
}

/// Corrects stock: `{"sku", "delta", "reason"}` → the stock level after. Admin only.
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
