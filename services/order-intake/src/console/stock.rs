//! Stock belongs to verification. The console reaches it through intake, which forwards the
//! caller's own `Authorization` header to `[console] verification_url`: verification still
//! decides who may do what (staff read, admin receive), intake holds no key of its own, and
//! the page talks to one origin only (its Content-Security-Policy allows no other).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Console;

/// Verification's answer, status, type and body as they came; field names of a refused receipt
/// are the console form's (`sku`, not `lines[0].sku`).
async fn relay(sent: reqwest::RequestBuilder, headers: &HeaderMap) -> Result<Response, Problem> {
    let mut request = sent;
    if let Some(key) = headers.get(AUTHORIZATION) {
        request = request.header(AUTHORIZATION, key.clone());
    }
    let answer = request.send().await.map_err(|e| {
        tracing::warn!(error = %e, "verification did not answer");
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "an upstream service failed",
        )
        .detail("verification (which owns the stock) did not answer; see intake's log")
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let body: Bytes = answer.bytes().await.unwrap_or_default();
    let body = String::from_utf8_lossy(&body).replace("\"lines[0].", "\"");
    Ok((status, [(CONTENT_TYPE, content_type)], body).into_response())
}

fn endpoint(console: &Console, segments: &[&str]) -> Result<reqwest::Url, Problem> {
    let mut url = reqwest::Url::parse(&console.own.verification_url).map_err(|e| {
        Problem::internal(&anyhow::anyhow!(
            "[console] verification_url is not a URL: {e}"
        ))
    })?;
    url.path_segments_mut()
        .map_err(|()| Problem::internal(&anyhow::anyhow!("[console] verification_url")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// `GET /v1/console/stock/low` → verification's `GET /v1/stock/low`: every stock row at or
/// below its reorder point, with the quantity to reorder.
pub async fn low(
    State(console): State<Console>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let url = endpoint(&console, &["v1", "stock", "low"])?;
    relay(console.upstream.get(url), &headers).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptForm {
    warehouse: Option<String>,
    sku: Value,
    quantity: Value,
    reason: Value,
}

/// `POST /v1/console/stock/receipts` `{"warehouse", "sku", "quantity", "reason"?}` →
/// verification's `POST /v1/warehouses/{warehouse}/receipts` with one line (admin there).
pub async fn receive(
    State(console): State<Console>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<JsonBody<ReceiptForm>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let JsonBody(form) = body?;
    let warehouse = form
        .warehouse
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty() && w.len() <= 64);
    let Some(warehouse) = warehouse else {
        return Err(Problem::validation(vec![FieldError::new(
            "warehouse",
            "required",
            "name the warehouse that received the goods (its code, 1 to 64 characters)",
        )]));
    };
    let mut receipt = json!({"lines": [{"sku": form.sku, "quantity": form.quantity}]});
    if !form.reason.is_null() {
        receipt["reason"] = form.reason;
    }
    let url = endpoint(&console, &["v1", "warehouses", warehouse, "receipts"])?;
    relay(console.upstream.post(url).json(&receipt), &headers).await
}
