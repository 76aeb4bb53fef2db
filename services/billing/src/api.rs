//! The HTTP API (every route needs an API key; `staff` unless noted):
//!
//! - `GET /v1/invoices/{number}`: an invoice or credit note as JSON, or as printable HTML
//!   (`Accept: text/html`, or `{number}.html`);
//! - `GET /v1/invoices?from=YYYY-MM-DD&to=YYYY-MM-DD`: the accounting export, CSV
//!   ([`crate::accounting`]);
//! - `GET /v1/payments?order_id=…` or `?reference=…`: payments (every attempt);
//! - `POST /v1/payments`: a bank transfer received for an invoice ([`crate::received`]);
//! - `POST /v1/orders/{id}/refunds`: give back lines and/or shipping ([`crate::refund`]);
//! - `PUT /v1/coupons/{code}` (`admin`), `GET /v1/coupons/{code}`: coupons ([`crate::coupon`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, NaiveDate, Utc};
use orderflow_messages::types::Money;
use orderflow_runtime::auth::{ApiKeys, Caller, Role, protect};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::coupon::{self, Coupon, CouponRequest};
use crate::payment::{self, PaymentStatus};
use crate::received::{self, ReceiveError, ReceivedRequest};
use crate::refund::{RefundError, RefundRequest};
use crate::settlement::{Billing, Cause};
use crate::{accounting, invoice_print, invoice_view, orders};

#[derive(Clone)]
struct Api {
    pool: PgPool,
    billing: Arc<Billing>,
}

pub fn router(pool: PgPool, billing: Arc<Billing>, keys: ApiKeys) -> Router {
    let api = Router::new()
        .route("/v1/invoices", get(export_invoices))
        .route("/v1/invoices/{number}", get(get_invoice))
        .route("/v1/payments", get(list_payments).post(receive_payment))
        .route("/v1/orders/{id}/refunds", post(refund))
        .route("/v1/coupons/{code}", put(put_coupon).get(get_coupon))
        .with_state(Api { pool, billing });
    protect(api, keys)
}

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> Problem {
    Problem::validation(vec![FieldError::new(field, rule, message)])
}

async fn get_invoice(
    caller: Caller,
    State(api): State<Api>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let (number, html) = match number.strip_suffix(".html") {
        Some(number) => (number.to_owned(), true),
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            (number, accept.contains("text/html"))
        }
    };
    let mut conn = api.pool.acquire().await?;
    let Some(doc) = invoice_view::view(&mut conn, &number).await? else {
        return Err(Problem::not_found(format!(
            "no invoice or credit note numbered `{number}`"
        )));
    };
    if html {
        let page = invoice_print::render(&doc);
        Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response())
    } else {
        Ok(axum::Json(doc).into_response())
    }
}

async fn export_invoices(
    caller: Caller,
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let date = |field: &str| -> Result<NaiveDate, Problem> {
        let raw = query.get(field).ok_or_else(|| {
            invalid(
                field,
                "required",
                format!("give {field}=YYYY-MM-DD (UTC, inclusive)"),
            )
        })?;
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
            invalid(
                field,
                "format",
                format!("{field} must be a date YYYY-MM-DD"),
            )
        })
    };
    let (from, to) = (date("from")?, date("to")?);
    if to < from {
        return Err(invalid("to", "range", "to must not be before from"));
    }
    let mut conn = api.pool.acquire().await?;
    let csv = accounting::export(&mut conn, from, to).await?;
    let disposition = format!("attachment; filename=\"invoices-{from}-{to}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

/// A payment as the API shows it.
#[derive(Debug, Serialize)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// 0 for the first payment, then one more per change of payment method.
    pub attempt: i32,
    pub method: String,
    pub status: PaymentStatus,
    pub amount: Money,
    pub refunded: Money,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct FailureView {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct PaymentList {
    pub payments: Vec<PaymentView>,
}

async fn list_payments(
    caller: Caller,
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<PaymentList>, Problem> {
    caller.require(Role::Staff)?;
    let order_id = match query.get("order_id").map(|raw| Uuid::parse_str(raw.trim())) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return Err(invalid("order_id", "format", "order_id must be a UUID")),
        None => None,
    };
    let reference = query.get("reference").map(|r| r.trim());
    if order_id.is_none() && reference.is_none() {
        return Err(invalid(
            "order_id",
            "required",
            "give the order (/v1/payments?order_id=<uuid>) or a reference (?reference=…)",
        ));
    }
    let mut conn = api.pool.acquire().await?;
    let payments = payment::list(&mut conn, order_id, reference)
        .await?
        .into_iter()
        .map(|(p, created_at, updated_at)| PaymentView {
            payment_id: p.payment_id,
            order_id: p.order_id,
            attempt: p.attempt,
            method: p.method.as_str().to_owned(),
            status: p.status,
            refunded: Money::new(p.refunded, p.amount.currency.clone()),
            amount: p.amount,
            provider: p.provider,
            authorization_reference: p.authorization_reference,
            settlement_reference: p.settlement_reference,
            failure: p
                .failure_code
                .zip(p.failure_message)
                .map(|(code, message)| FailureView { code, message }),
            created_at,
            updated_at,
        })
        .collect();
    Ok(axum::Json(PaymentList { payments }))
}

async fn receive_payment(
    caller: Caller,
    State(api): State<Api>,
    JsonBody(request): JsonBody<ReceivedRequest>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    if request.reference.trim().is_empty() {
        return Err(invalid(
            "reference",
            "required",
            "give the bank's reference of the transfer",
        ));
    }
    let mut tx = api.pool.begin().await?;
    let balance = match received::record(&mut tx, &request).await {
        Ok(balance) => balance,
        Err(ReceiveError::UnknownInvoice(n)) => {
            return Err(invalid(
                "invoice_number",
                "unknown",
                format!("no invoice numbered `{n}`"),
            ));
        }
        Err(e @ ReceiveError::NotByTransfer(..)) => return Err(Problem::conflict(e.to_string())),
        Err(e @ ReceiveError::Currency { .. }) => {
            return Err(invalid("amount.currency", "currency", e.to_string()));
        }
        Err(e @ ReceiveError::NotPositive) => {
            return Err(invalid("amount.amount", "range", e.to_string()));
        }
        Err(ReceiveError::Unexpected(e)) => return Err(e.into()),
    };
    tx.commit().await?;
    let status = if balance.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(balance)).into_response())
}

async fn refund(
    caller: Caller,
    State(api): State<Api>,
    Path(order_id): Path<Uuid>,
    JsonBody(request): JsonBody<RefundRequest>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    if request.reason.trim().is_empty() {
        return Err(invalid("reason", "required", "say why the money goes back"));
    }
    let mut tx = api.pool.begin().await?;
    orders::lock(&mut tx, order_id).await?;
    let Some(order) = orders::load(&mut tx, order_id).await? else {
        return Err(Problem::not_found(format!(
            "billing knows no order {order_id}"
        )));
    };
    let Some(mut p) = payment::of_order(&mut tx, order_id).await? else {
        return Err(Problem::conflict("the order has no payment to refund"));
    };
    let cause = Cause {
        order_id,
        correlation_id: order.correlation_id,
        // No message caused it: a fresh id stands for the HTTP request.
        message_id: Uuid::now_v7(),
    };
    let done = match api
        .billing
        .refund(&mut tx, cause, &order, &mut p, &request)
        .await
    {
        Ok(done) => done,
        Err(RefundError::Unexpected(e)) => return Err(e.into()),
        Err(e @ (RefundError::UnknownLine(_) | RefundError::TooMany { .. })) => {
            return Err(invalid("lines", "refundable", e.to_string()));
        }
        Err(e @ (RefundError::ShippingAlreadyRefunded | RefundError::Nothing)) => {
            return Err(invalid("shipping", "refundable", e.to_string()));
        }
        Err(e) => return Err(Problem::conflict(e.to_string())),
    };
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(done)).into_response())
}

async fn put_coupon(
    caller: Caller,
    State(api): State<Api>,
    Path(code): Path<String>,
    JsonBody(request): JsonBody<CouponRequest>,
) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let coupon = request.parse(&code).map_err(Problem::validation)?;
    let mut conn = api.pool.acquire().await?;
    let created = coupon::save(&mut conn, &coupon).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(coupon)).into_response())
}

async fn get_coupon(
    caller: Caller,
    State(api): State<Api>,
    Path(code): Path<String>,
) -> Result<axum::Json<Coupon>, Problem> {
    caller.require(Role::Staff)?;
    let mut conn = api.pool.acquire().await?;
    let code = coupon::normalise_code(&code);
    coupon::load(&mut conn, &code)
        .await?
        .map(axum::Json)
        .ok_or_else(|| Problem::not_found(format!("no coupon `{code}`")))
}
