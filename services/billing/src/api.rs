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
//!
//! Each handler carries its `#[utoipa::path]`; [`operations`] routes and documents them in one
//! go, and `/openapi.json` serves the document ([`crate::openapi`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use orderflow_messages::types::Money;
use orderflow_runtime::auth::{ApiKeys, Caller, Role, protect};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::coupon::{self, Coupon, CouponRequest};
use crate::invoice_view::InvoiceView;
use crate::openapi::MoneySchema;
use crate::payment::{self, PaymentStatus};
use crate::received::{self, Balance, ReceiveError, ReceivedRequest};
use crate::refund::{Done, RefundError, RefundRequest};
use crate::settlement::{Billing, Cause};
use crate::{accounting, invoice_print, invoice_view, orders};

#[derive(Clone)]
pub struct Api {
    pool: PgPool,
    billing: Arc<Billing>,
}

/// Every route behind the API keys, and `/openapi.json` (no key) describing them.
pub fn router(pool: PgPool, billing: Arc<Billing>, keys: ApiKeys) -> Router {
    let (api, document) = operations()
        .with_state(Api { pool, billing })
        .split_for_parts();
    protect(api, keys).merge(orderflow_runtime::openapi::route(document))
}

/// Every operation, each routed and documented from its handler's `#[utoipa::path]`.
pub fn operations() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(crate::openapi::Base::openapi())
        .routes(routes!(export_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(list_payments, receive_payment))
        .routes(routes!(refund))
        .routes(routes!(put_coupon, get_coupon))
}

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> Problem {
    Problem::validation(vec![FieldError::new(field, rule, message)])
}

/// An invoice or credit note, as JSON or as a printable page.
#[utoipa::path(get, path = "/v1/invoices/{number}", tag = "invoices",
    description = "Role: `staff`, `admin`. HTML with `Accept: text/html` or `{number}.html`.",
    params(("number" = String, Path, description = "e.g. `INV-2026-000001`, optionally with `.html`")),
    responses(
        (status = 200, description = "the invoice", content(
            (InvoiceView = "application/json"),
            (String = "text/html"),
        )),
        (status = 404, description = "no invoice or credit note with this number"),
    ))]
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

/// The accounting export: every invoice and credit note issued in a period, one CSV row per
/// line.
#[utoipa::path(get, path = "/v1/invoices", tag = "invoices",
    description = "Role: `staff`, `admin`.",
    params(
        ("from" = chrono::NaiveDate, Query, description = "first day (UTC), inclusive"),
        ("to" = chrono::NaiveDate, Query, description = "last day (UTC), inclusive"),
    ),
    responses(
        (status = 200, description = "the export", body = String, content_type = "text/csv"),
        (status = 422, description = "`from` or `to` is missing, not a date, or `to` is before `from`"),
    ))]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// 0 for the first payment, then one more per change of payment method.
    pub attempt: i32,
    pub method: String,
    pub status: PaymentStatus,
    #[schema(value_type = MoneySchema)]
    pub amount: Money,
    #[schema(value_type = MoneySchema)]
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

/// Why the provider declined or failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureView {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentList {
    pub payments: Vec<PaymentView>,
}

/// An order's payments (every attempt), or those with a reference.
#[utoipa::path(get, path = "/v1/payments", tag = "payments",
    description = "Role: `staff`, `admin`. Give `order_id` or `reference`.",
    params(
        ("order_id" = Option<Uuid>, Query, description = "the order"),
        ("reference" = Option<String>, Query, description = "an authorisation or settlement reference"),
    ),
    responses(
        (status = 200, description = "the payments", body = PaymentList),
        (status = 422, description = "neither given, or `order_id` is not a UUID"),
    ))]
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

/// A bank transfer received for an invoice; the same reference twice is recorded once.
#[utoipa::path(post, path = "/v1/payments", tag = "payments",
    description = "Role: `staff`, `admin`.",
    request_body(content = ReceivedRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "recorded: the invoice's balance", body = Balance),
        (status = 200, description = "this reference was recorded before: the balance", body = Balance),
        (status = 409, description = "the invoice is not paid by transfer"),
        (status = 422, description = "unknown invoice, wrong currency, amount not positive, or no reference"),
    ))]
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
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    let status = if balance.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(balance)).into_response())
}

/// Gives back units of invoice lines and/or the shipping: a credit note and a refund.
#[utoipa::path(post, path = "/v1/orders/{id}/refunds", tag = "payments",
    description = "Role: `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the order's id")),
    request_body(content = RefundRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "refunded", body = Done),
        (status = 404, description = "billing knows no such order"),
        (status = 409, description = "nothing can be refunded in the payment's state"),
        (status = 422, description = "no reason, an unknown line, more than is left, or the shipping twice"),
    ))]
async fn refund(
    caller: Caller,
    State(api): State<Api>,
    Path(order_id): Path<String>,
    JsonBody(request): JsonBody<RefundRequest>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let order_id = Uuid::parse_str(&order_id)
        .map_err(|_| Problem::bad_request(format!("`{order_id}` is not an order id (a UUID)")))?;
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
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok((StatusCode::CREATED, axum::Json(done)).into_response())
}

/// Creates or replaces a coupon.
#[utoipa::path(put, path = "/v1/coupons/{code}", tag = "coupons",
    description = "Role: `admin`. `kind` `percent` takes `percent`; `fixed` takes `amount` \
                   (minor units) and `currency`.",
    params(("code" = String, Path, description = "the coupon's code (case-insensitive)")),
    request_body(content = CouponRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "created", body = Coupon),
        (status = 200, description = "replaced", body = Coupon),
        (status = 422, description = "a field failed its rule (named in `errors`)"),
    ))]
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

/// One coupon.
#[utoipa::path(get, path = "/v1/coupons/{code}", tag = "coupons",
    description = "Role: `staff`, `admin`.",
    params(("code" = String, Path, description = "the coupon's code (case-insensitive)")),
    responses(
        (status = 200, description = "the coupon", body = Coupon),
        (status = 404, description = "no such coupon"),
    ))]
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
