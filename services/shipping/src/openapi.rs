//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the code: each handler's
//! `#[utoipa::path]` describes its operation and the request and answer types derive their
//! schemas; [`api::router`](crate::api::router) routes and documents the handlers together, so
//! a route cannot exist undocumented nor a documented one unrouted.
//! [`orderflow_runtime::openapi::complete`] adds the API key scheme, the `Problem` error body
//! and the answers every operation can give.

use serde_json::Value;
use utoipa::OpenApi;

/// What the operations do not say themselves: the title and the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow shipping",
        description = "Shipments and their tracking, in-store collections, the carrier registry \
                       and the carriers' webhook ingress. Every `/v1` operation but the webhook \
                       needs `Authorization: Bearer <API key>`; each names the roles it admits. \
                       Errors are `application/problem+json`."
    ),
    tags(
        (name = "shipments", description = "Shipments, tracking, collections"),
        (name = "carriers", description = "The carrier registry and the webhook ingress"),
    )
)]
pub struct Base;

/// The document, as `/openapi.json` serves it.
pub fn document() -> Value {
    let mut document = crate::api::operations().into_openapi();
    document.merge(crate::carriers::operations().into_openapi());
    document.merge(crate::webhook::operations().into_openapi());
    orderflow_runtime::openapi::complete(document)
}
