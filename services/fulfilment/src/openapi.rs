//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the code: each handler's
//! `#[utoipa::path]` describes its operation, the request and answer types derive their
//! schemas, and [`api::operations`](crate::api::operations) routes and documents the handlers
//! together, so a route cannot exist undocumented nor a documented one unrouted.
//! [`orderflow_runtime::openapi::complete`] adds the API key scheme, the `Problem` error body
//! and the answers every operation can give.
//!
//! The message types that answers carry (`Dimensions`, `ParcelLine`, `Parcel`) come from
//! `orderflow-messages`, which knows nothing of utoipa; their schemas are described here
//! (`Dimensions` in the runtime, which two services share), and the document test checks real
//! answers against them.

use orderflow_runtime::openapi::DimensionsSchema;
use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

/// What the operations do not say themselves: the title and the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow fulfilment",
        description = "The warehouse floor: pick lists, customisation tasks and parcels. In a \
                       `manual` warehouse staff confirm picks, complete tasks and close parcels \
                       through this API; an `automatic` one does it on its own. Every `/v1` \
                       operation needs `Authorization: Bearer <API key>`; each names the roles \
                       it admits. Errors are `application/problem+json`."
    ),
    tags(
        (name = "warehouses", description = "Warehouses, their modes and their open work"),
        (name = "picking", description = "Pick lists, tasks and parcels"),
    )
)]
pub struct Base;

/// Units of one order line in a parcel.
#[derive(Serialize, ToSchema)]
#[schema(as = ParcelLine)]
pub struct ParcelLineSchema {
    pub line_no: u32,
    pub sku: String,
    pub quantity: u32,
}

/// A closed parcel, ready for a carrier.
#[derive(Serialize, ToSchema)]
#[schema(as = Parcel)]
pub struct ParcelSchema {
    pub parcel_id: Uuid,
    pub weight_grams: u32,
    pub dimensions: DimensionsSchema,
    pub lines: Vec<ParcelLineSchema>,
}

/// The document, as `/openapi.json` serves it.
pub fn document() -> Value {
    orderflow_runtime::openapi::complete(crate::api::operations().into_openapi())
}
