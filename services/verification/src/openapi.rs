//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the code: each handler's
//! `#[utoipa::path]` describes its operation, the request and answer types derive their
//! schemas, and [`api::operations`](crate::api::operations) routes and documents the handlers
//! together, so a route cannot exist undocumented nor a documented one unrouted.
//! [`orderflow_runtime::openapi::complete`] adds the API key scheme, the `Problem` error body
//! and the answers every operation can give.
//!
//! The message types that bodies carry (`Dimensions`, `Address`, `ShortLine`) come from
//! `orderflow-messages`, which knows nothing of utoipa; their schemas are described here
//! (`Dimensions` in the runtime, which two services share), and the document test checks real
//! answers against them.

use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

/// What the operations do not say themselves: the title and the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow verification",
        description = "The catalogue, customers, warehouses and stock that orders are checked \
                       and reserved against, and the orders waiting for stock. Every `/v1` \
                       operation needs `Authorization: Bearer <API key>`; each names the roles \
                       it admits. Errors are `application/problem+json`."
    ),
    tags(
        (name = "catalogue", description = "Products"),
        (name = "customers", description = "Known and blocked customers"),
        (name = "stock", description = "Warehouses, stock levels, receipts, adjustments, backorders"),
    )
)]
pub struct Base;

/// A postal address.
#[derive(Serialize, ToSchema)]
#[schema(as = Address)]
pub struct AddressSchema {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// An order line short of stock.
#[derive(Serialize, ToSchema)]
#[schema(as = ShortLine)]
pub struct ShortLineSchema {
    pub line_no: u32,
    pub sku: String,
    /// Units that could not be reserved or were not found.
    pub missing: u32,
}

/// The document, as `/openapi.json` serves it.
pub fn document() -> Value {
    orderflow_runtime::openapi::complete(crate::api::operations().into_openapi())
}
