//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the code: each handler's
//! `#[utoipa::path]` describes its operation, the request and answer types derive their
//! schemas, and [`api::operations`](crate::api::operations) routes and documents the handlers
//! together, so a route cannot exist undocumented nor a documented one unrouted.
//! [`orderflow_runtime::openapi::complete`] adds the API key scheme, the `Problem` error body
//! and the answers every operation can give.
//!
//! `Money` comes from `orderflow-messages`, which knows nothing of utoipa; its schema is
//! described here, and the document test checks real answers against it.

use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

/// What the operations do not say themselves: the title and the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow billing",
        description = "Invoices and credit notes (gapless numbers per series), payments, \
                       refunds, coupons. Every `/v1` operation needs `Authorization: Bearer \
                       <API key>`; each names the roles it admits. Errors are \
                       `application/problem+json`."
    ),
    tags(
        (name = "invoices", description = "Invoices, credit notes and the accounting export"),
        (name = "payments", description = "Payments, transfers received, refunds"),
        (name = "coupons", description = "Coupons"),
    )
)]
pub struct Base;

/// An amount in integer minor units of its currency (negative only on credits and discounts).
#[derive(Serialize, ToSchema)]
#[schema(as = Money)]
pub struct MoneySchema {
    pub amount: i64,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
}

/// The document, as `/openapi.json` serves it.
pub fn document() -> Value {
    orderflow_runtime::openapi::complete(crate::api::operations().into_openapi())
}
