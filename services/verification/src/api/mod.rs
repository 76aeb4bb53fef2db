//! The HTTP API, all under `/v1` and behind API keys: admins write the catalogue, warehouses and
//! stock; staff read them.
//!
//! Request bodies are read with every field optional and then checked as a whole, so a 422 lists
//! every field that is missing or wrong, not just the first.
//!
//! Each handler carries its `#[utoipa::path]`; [`operations`] routes and documents them in one
//! go, and `/openapi.json` serves the document ([`crate::openapi`]).

mod customers;
mod product_import;
mod products;
mod stock_levels;
mod warehouses;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use orderflow_runtime::auth::{ApiKeys, protect};
use orderflow_runtime::problem::{FieldError, Problem};
use sqlx::PgPool;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::settings::VerificationSettings;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// For re-verifying backorders after a receipt or an adjustment.
    pub settings: Arc<VerificationSettings>,
}

/// Every route behind the API keys, and `/openapi.json` (no key) describing them.
pub fn router(pool: PgPool, keys: ApiKeys, settings: VerificationSettings) -> Router {
    let (v1, document) = operations()
        .with_state(AppState {
            pool,
            settings: Arc::new(settings),
        })
        .split_for_parts();
    protect(v1, keys).merge(orderflow_runtime::openapi::route(document))
}

/// Every operation, each routed and documented from its handler's `#[utoipa::path]`.
pub fn operations() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::Base::openapi())
        .routes(routes!(products::list))
        .routes(routes!(product_import::import))
        .routes(routes!(products::put, products::get))
        .routes(routes!(customers::list))
        .routes(routes!(customers::put, customers::get))
        .routes(routes!(warehouses::list))
        .routes(routes!(warehouses::put))
        .routes(routes!(warehouses::receive))
        .routes(routes!(warehouses::adjust))
        .routes(routes!(stock_levels::get))
        .routes(routes!(stock_levels::low))
        .routes(routes!(stock_levels::backorders))
}

/// The query string as plain pairs; a malformed one is a 400.
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(raw: Params) -> Result<HashMap<String, String>, Problem> {
    raw.map(|Query(q)| q)
        .map_err(|e| Problem::bad_request(e.body_text()))
}

/// `limit` (1–500, default 50) and `offset` (≥ 0, default 0) of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    const MAX_LIMIT: i64 = 500;

    fn from_params(params: &HashMap<String, String>) -> Result<Page, Problem> {
        let mut errors = Vec::new();
        let mut read = |name: &str, default: i64, min: i64, max: i64| match params.get(name) {
            None => default,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        name,
                        "range",
                        format!("`{raw}` is not a whole number in {min}..={max}"),
                    ));
                    default
                }
            },
        };
        let page = Page {
            limit: read("limit", 50, 1, Page::MAX_LIMIT),
            offset: read("offset", 0, 0, i64::MAX),
        };
        if errors.is_empty() {
            Ok(page)
        } else {
            Err(Problem::validation(errors))
        }
    }
}

/// A required field, or a `required` error.
fn required<T>(value: Option<T>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    if value.is_none() {
        errors.push(FieldError::new(
            field,
            "required",
            format!("`{field}` is required"),
        ));
    }
    value
}

/// A whole number in `min..=max`, or a `range` error.
fn in_range(value: i64, min: i64, max: i64, field: &str, errors: &mut Vec<FieldError>) -> bool {
    let ok = (min..=max).contains(&value);
    if !ok {
        errors.push(FieldError::new(
            field,
            "range",
            format!("`{field}` must be in {min}..={max}, got {value}"),
        ));
    }
    ok
}

/// Text of 1 to `max` characters after trimming, or a `length` error.
fn text(value: String, max: usize, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "length",
            format!("`{field}` must be 1 to {max} characters"),
        ));
        return None;
    }
    Some(trimmed.to_owned())
}
