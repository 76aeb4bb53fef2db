//! `POST /v1/orders/{id}/feedback` (the shop that owns the order, staff): the customer's rating,
//! once per delivered or completed order, announced as `order.feedback_received`; and
//! `GET /v1/feedback/summary?from=&to=` (staff): count, average and distribution per period.

use std::collections::BTreeMap;

use anyhow::Context;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use orderflow_messages::order::FeedbackReceived;
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::outbox;
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::cancelling::lock_visible;
use super::listing::instant;
use super::{Api, order_id, who};
use crate::NAME;
use crate::field_rules::Fields;
use crate::lifecycle::Status;
use crate::timeline::{self, Entry};

/// The body of `POST /v1/orders/{id}/feedback`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackRequest {
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 5)]
    pub rating: Value,
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub comment: Value,
}

/// The feedback as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackView {
    pub order_id: Uuid,
    pub rating: u8,
    pub comment: Option<String>,
}

/// Ratings in a period: how many, their average (two decimals) and how many of each.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackSummary {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub count: i64,
    /// Absent (null) without ratings.
    pub average: Option<f64>,
    /// Ratings `1` to `5`, each with its count (zero included).
    pub distribution: BTreeMap<String, i64>,
}

/// The customer's rating of a delivered or completed order, once.
#[utoipa::path(post, path = "/v1/orders/{id}/feedback", tag = "feedback",
    description = "Role: `shop` (its own orders), `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the order's id")),
    request_body(content = FeedbackRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "recorded; `order.feedback_received` follows", body = FeedbackView),
        (status = 400, description = "the id is not a UUID, or the body is malformed"),
        (status = 404, description = "no such order (or another shop's)"),
        (status = 409, description = "not delivered yet, or rated already"),
        (status = 422, description = "`rating` is not 1 to 5, or `comment` too long"),
    ))]
pub async fn give_feedback(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<JsonBody<FeedbackRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let id = order_id(&id)?;
    let JsonBody(request) = body?;
    let mut f = Fields::default();
    let rating = f.integer(&request.rating, "rating", 1..=5);
    let comment = f.optional_text(&request.comment, "comment", 2000);
    let Some(rating) = rating.and_then(|r| u8::try_from(r).ok()) else {
        return Err(Problem::validation(f.into_errors()));
    };
    if !f.is_empty() {
        return Err(Problem::validation(f.into_errors()));
    }

    let mut tx = api.pool.begin().await?;
    let stage = lock_visible(&mut tx, &caller, id).await?;
    let delivered =
        stage.has_delivered() && !matches!(stage.status, Status::Cancelled | Status::Rejected);
    if !delivered {
        return Err(Problem::conflict(format!(
            "order {id} is {}: feedback is taken once it is delivered",
            stage.status
        ))
        .with("status", stage.status.as_str()));
    }
    let recorded = sqlx::query(
        "INSERT INTO feedback (order_id, rating, comment) VALUES ($1, $2, $3) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(id)
    .bind(i16::from(rating))
    .bind(&comment)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !recorded {
        return Err(Problem::conflict(format!(
            "order {id} has feedback already; it is taken once per order"
        )));
    }
    let envelope = Envelope::new(NAME, id, FeedbackReceived { rating, comment });
    outbox::enqueue(&mut tx, &envelope, None).await?;
    let entry = Entry::new(
        envelope.message_id,
        FeedbackReceived::TYPE,
        NAME,
        envelope.occurred_at,
        stage.status,
        timeline::feedback(&envelope.payload),
    )
    .requested_by(Some(who(&caller)));
    timeline::append(&mut tx, id, &entry).await?;
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA)
        .await
        .context("committing the feedback")?;
    Ok((
        StatusCode::CREATED,
        axum::Json(FeedbackView {
            order_id: id,
            rating,
            comment: envelope.payload.comment,
        }),
    )
        .into_response())
}

/// The period of `GET /v1/feedback/summary`; either end may be open.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// From (inclusive): an RFC 3339 time or a date (`YYYY-MM-DD`, midnight UTC).
    from: Option<String>,
    /// To (exclusive): an RFC 3339 time or a date.
    to: Option<String>,
}

/// Count, average and distribution of the ratings given in a period.
#[utoipa::path(get, path = "/v1/feedback/summary", tag = "feedback",
    description = "Role: `staff`, `admin`.",
    params(PeriodQuery),
    responses(
        (status = 200, description = "the summary", body = FeedbackSummary),
        (status = 400, description = "a query parameter is malformed"),
        (status = 422, description = "`from` or `to` is neither a date nor an RFC 3339 time"),
    ))]
pub async fn feedback_summary(
    State(api): State<Api>,
    caller: Caller,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let mut errors = Vec::new();
    let mut bound = |field: &str, raw: &Option<String>| {
        let raw = raw.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
        let at = instant(raw);
        if at.is_none() {
            errors.push(FieldError::new(
                field,
                "format",
                format!("`{raw}` is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
            ));
        }
        at
    };
    let from = bound("from", &query.from);
    let to = bound("to", &query.to);
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let counts: Vec<(i16, i64)> = sqlx::query_as(
        "SELECT rating, count(*) FROM feedback \
         WHERE ($1::timestamptz IS NULL OR created_at >= $1) \
         AND ($2::timestamptz IS NULL OR created_at < $2) GROUP BY rating",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&api.pool)
    .await?;
    let mut distribution = BTreeMap::new();
    for rating in 1..=5i16 {
        let n = counts.iter().find(|(r, _)| *r == rating).map_or(0, |c| c.1);
        distribution.insert(rating.to_string(), n);
    }
    let count: i64 = counts.iter().map(|(_, n)| n).sum();
    let total: i64 = counts.iter().map(|(r, n)| i64::from(*r) * n).sum();
    // Two decimals are what a dashboard shows; the distribution holds the exact figures.
    let average = (count > 0).then(|| (total as f64 / count as f64 * 100.0).round() / 100.0);
    Ok(axum::Json(FeedbackSummary {
        from,
        to,
        count,
        average,
        distribution,
    })
    .into_response())
}
