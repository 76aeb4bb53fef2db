//! `GET /v1/orders` with its filters and cursor, and `GET /v1/orders/stats`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use orderflow_messages::types::EmailAddress;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Api;
use crate::lifecycle::Status;
use crate::order_request::CHANNELS;
use crate::orders::{self, Cursor, ListFilter, OrderSummary, Reader, Stats};

/// Orders listed when `limit` is not given, and the most one page may hold.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// The filters of `GET /v1/orders`, every one optional. Read as text and checked by `parse`,
/// so that a bad value is a 422 naming the parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status.
    #[param(schema_with = status_names)]
    status: Option<String>,
    /// Only orders from this channel.
    #[param(schema_with = channel_names)]
    channel: Option<String>,
    #[param(format = Email)]
    customer_email: Option<String>,
    /// Placed at or after: an RFC 3339 time or a date (`YYYY-MM-DD`, midnight UTC).
    placed_after: Option<String>,
    /// Placed before: an RFC 3339 time or a date.
    placed_before: Option<String>,
    /// Orders per page, 1 to 500 (50 when not given).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `next_cursor` of the previous page, as it was.
    cursor: Option<String>,
}

fn status_names() -> utoipa::openapi::Object {
    crate::order_request::names(Status::ALL.map(|s| s.as_str()))
}

fn channel_names() -> utoipa::openapi::Object {
    crate::order_request::names(CHANNELS.map(|c| c.as_str()))
}

/// One page of `GET /v1/orders`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Orders newest first, filtered, paged by a keyset cursor (stable while orders arrive).
#[utoipa::path(get, path = "/v1/orders", tag = "orders",
    description = "Role: `shop` (its own orders only), `staff`, `admin`.",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of orders", body = OrderPage),
        (status = 400, description = "a query parameter is malformed"),
        (status = 422, description = "a filter failed its rule (named in `errors`)"),
    ))]
pub async fn list_orders(
    State(api): State<Api>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let filter = parse(&query, Reader::of(&caller)).map_err(Problem::validation)?;
    let (orders, next) = orders::list(&api.pool, &filter).await?;
    Ok(axum::Json(OrderPage {
        orders,
        next_cursor: next.map(|c| c.encode()),
    })
    .into_response())
}

fn given(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse(query: &ListQuery, reader: Reader) -> Result<ListFilter, Vec<FieldError>> {
    let mut errors = Vec::new();
    let status = given(&query.status).and_then(|raw| {
        let status = Status::parse(raw);
        if status.is_none() {
            let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            errors.push(FieldError::new(
                "status",
                "one_of",
                format!("`{raw}` is not one of: {}", names.join(", ")),
            ));
        }
        status
    });
    let channel = given(&query.channel).and_then(|raw| {
        let known = CHANNELS.iter().any(|c| c.as_str() == raw);
        if !known {
            let names: Vec<&str> = CHANNELS.iter().map(|c| c.as_str()).collect();
            errors.push(FieldError::new(
                "channel",
                "one_of",
                format!("`{raw}` is not one of: {}", names.join(", ")),
            ));
        }
        known.then(|| raw.to_owned())
    });
    let customer_email =
        given(&query.customer_email).and_then(|raw| match EmailAddress::parse(raw) {
            Ok(email) => Some(email.as_str().to_owned()),
            Err(message) => {
                errors.push(FieldError::new("customer_email", "format", message));
                None
            }
        });
    let mut time = |field: &str, raw: &Option<String>| {
        given(raw).and_then(|raw| match instant(raw) {
            Some(at) => Some(at),
            None => {
                errors.push(FieldError::new(
                    field,
                    "format",
                    format!("`{raw}` is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
                ));
                None
            }
        })
    };
    let placed_after = time("placed_after", &query.placed_after);
    let placed_before = time("placed_before", &query.placed_before);
    let limit = match given(&query.limit) {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "range",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    let after = given(&query.cursor).and_then(|raw| {
        let cursor = Cursor::decode(raw);
        if cursor.is_none() {
            errors.push(FieldError::new(
                "cursor",
                "format",
                "not a cursor of this API; pass `next_cursor` of the previous page as it is",
            ));
        }
        cursor
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ListFilter {
        status,
        channel,
        customer_email,
        placed_after,
        placed_before,
        reader,
        after,
        limit,
    })
}

/// An RFC 3339 time, or a date meaning its midnight UTC.
pub fn instant(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// How many orders are in each status (every status listed, zero included), and in all.
#[utoipa::path(get, path = "/v1/orders/stats", tag = "orders",
    description = "Role: `staff`, `admin`.",
    responses((status = 200, description = "the counts", body = Stats)))]
pub async fn order_stats(State(api): State<Api>, caller: Caller) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    Ok(axum::Json(orders::stats(&api.pool).await?).into_response())
}
