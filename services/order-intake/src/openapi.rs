//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the code: each handler's
//! `#[utoipa::path]` describes its operation, the request and answer types derive their
//! schemas, and [`api::operations`](crate::api::operations) routes and documents the handlers
//! together, so a route cannot exist undocumented nor a documented one unrouted.
//! [`orderflow_runtime::openapi::complete`] adds what every service shares: the API key scheme,
//! the `Problem` error body and the 401/403/500 any operation can answer.

use serde_json::Value;
use utoipa::OpenApi;

/// What the operations do not say themselves: the title and the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow order-intake",
        description = "Where an order enters orderflow and where its customer-facing status \
                       lives. Every `/v1` operation needs `Authorization: Bearer <API key>`; \
                       each names the roles it admits. Errors are `application/problem+json`."
    ),
    tags(
        (name = "orders", description = "Placing, importing, reading, cancelling orders"),
        (name = "feedback", description = "Customers' ratings of delivered orders"),
        (name = "notifications", description = "Shops' webhooks and each order's delivery log"),
    )
)]
pub struct Base;

/// The document, as `/openapi.json` serves it.
pub fn document() -> Value {
    orderflow_runtime::openapi::complete(crate::api::operations().into_openapi())
}
