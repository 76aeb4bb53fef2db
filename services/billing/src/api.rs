//! The HTTP API (all behind an API key with at least the `staff` role):
//!
//! - `GET /v1/invoices/{number}`: an invoice with its lines, tax breakdown and totals;
//! - `GET /v1/payments?order_id=…`: the payments of an order.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use chrono::{DateTime, Utc};
use orderflow_messages::types::Money;
use orderflow_runtime::auth::{ApiKeys, Caller, Role, protect};
use orderflow_runtime::problem::{FieldError, Problem};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::invoice::{self, InvoiceView};
use crate::payment::{self, PaymentStatus};

pub fn router(pool: PgPool, keys: ApiKeys) -> Router {
    let api = Router::new()
        .route("/v1/invoices/{number}", get(get_invoice))
        .route("/v1/payments", get(list_payments))
        .with_state(pool);
    protect(api, keys)
}

async fn get_invoice(
    caller: Caller,
    State(pool): State<PgPool>,
    Path(number): Path<String>,
) -> Result<axum::Json<InvoiceView>, Problem> {
    caller.require(Role::Staff)?;
    let mut conn = pool.acquire().await?;
    match invoice::view(&mut conn, &number).await? {
        Some(invoice) => Ok(axum::Json(invoice)),
        None => Err(Problem::not_found(format!(
            "no invoice numbered `{number}`"
        ))),
    }
}

/// A payment as the API shows it.
#[derive(Debug, Serialize)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub method: String,
    pub status: PaymentStatus,
    pub amount: Money,
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
    State(pool): State<PgPool>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<PaymentList>, Problem> {
    caller.require(Role::Staff)?;
    let order_id = match query.get("order_id").map(|raw| Uuid::parse_str(raw.trim())) {
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
                "give the order: /v1/payments?order_id=<uuid>",
            )]));
        }
    };
    let mut conn = pool.acquire().await?;
    let mut payments = Vec::new();
    if let Some(p) = payment::of_order(&mut conn, order_id).await? {
        let (created_at, updated_at): (DateTime<Utc>, DateTime<Utc>) =
            sqlx::query_as("SELECT created_at, updated_at FROM payments WHERE payment_id = $1")
                .bind(p.payment_id)
                .fetch_one(&mut *conn)
                .await?;
        payments.push(PaymentView {
            payment_id: p.payment_id,
            order_id: p.order_id,
            method: p.method.as_str().to_owned(),
            status: p.status,
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
        });
    }
    Ok(axum::Json(PaymentList { payments }))
}
