//! The flow board (`GET /v1/console/flow`) and the order search (`GET /v1/console/orders?q=`),
//! both read from intake's own tables: the order's `status` and `updated_at` (when it last
//! moved), and the timeline, whose every entry records the status right after it.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use orderflow_messages::types::EmailAddress;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::Console;
use super::stalled::waiting_for;
use crate::lifecycle::Status;
use crate::orders::{self, OrderSummary};

/// Minutes the board looks back.
const WINDOW_MINUTES: i64 = 60;
/// Stalled orders listed on the board (all are counted).
const STALLED_LISTED: i64 = 50;
/// Orders a search returns.
const SEARCH_LIMIT: i64 = 50;

#[derive(Debug, Serialize, sqlx::FromRow)]
struct StalledOrder {
    order_id: Uuid,
    external_reference: Option<String>,
    status: String,
    since: DateTime<Utc>,
    waited_secs: i64,
}

/// The statuses that are not final, with their limits in seconds, as two parallel arrays.
fn limits(console: &Console) -> (Vec<String>, Vec<i64>) {
    Status::ALL
        .iter()
        .filter(|s| !s.is_terminal())
        .map(|s| {
            let secs = console.stalled.limit(s.as_str());
            (
                s.as_str().to_owned(),
                i64::try_from(secs).unwrap_or(i64::MAX),
            )
        })
        .unzip()
}

/// An order is stalled when it is in a non-final status for longer than that status's limit.
const STALLED: &str = "FROM orders o \
     JOIN unnest($1::text[], $2::bigint[]) AS l(status, secs) ON l.status = o.status \
     WHERE o.updated_at <= now() - make_interval(secs => l.secs::double precision)";

/// `GET /v1/console/flow` → `{"now", "statuses" (in journey order), "by_status", "total",
/// "stalled_by_status", "stalled": [...], "last_hour": {"from", "reached": {status: [60 counts,
/// oldest minute first]}}, "limits"}`. `reached` counts the orders that moved into each status
/// in each minute.
pub async fn board(State(console): State<Console>, caller: Caller) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let stats = orders::stats(&console.pool).await?;
    let (statuses, secs) = limits(&console);

    let stalled_counts: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT o.status, count(*) {STALLED} GROUP BY o.status"
    )))
    .bind(&statuses)
    .bind(&secs)
    .fetch_all(&console.pool)
    .await?;
    let stalled: Vec<StalledOrder> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT o.id AS order_id, o.external_reference, o.status, o.updated_at AS since, \
         extract(epoch FROM now() - o.updated_at)::bigint AS waited_secs {STALLED} \
         ORDER BY o.updated_at LIMIT $3"
    )))
    .bind(&statuses)
    .bind(&secs)
    .bind(STALLED_LISTED)
    .fetch_all(&console.pool)
    .await?;
    let stalled: Vec<_> = stalled
        .into_iter()
        .map(|o| {
            let limit = console.stalled.limit(&o.status);
            let waits_for = waiting_for(&o.status);
            json!({
                "order_id": o.order_id, "external_reference": o.external_reference,
                "status": o.status, "since": o.since, "waited_secs": o.waited_secs,
                "limit_secs": limit, "waiting_for": waits_for,
            })
        })
        .collect();

    let from = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .map_err(|e| Problem::internal(&anyhow::anyhow!(e)))?
        - TimeDelta::minutes(WINDOW_MINUTES - 1);
    // A move is an entry whose status differs from the entry before it (payments, say, leave
    // the status as it was); the entry before may be older than the window. The hour's entries
    // come from `timeline_by_time`, each one's predecessor from `timeline_of_order`, so the
    // query reads the last hour, not the whole history.
    let moves: Vec<(i32, String, i64)> = sqlx::query_as(
        "SELECT floor(extract(epoch FROM t.occurred_at - $1) / 60)::int AS minute, t.status, \
             count(*) FROM timeline t \
         WHERE t.occurred_at >= $1 AND t.status IS DISTINCT FROM ( \
             SELECT p.status FROM timeline p \
             WHERE p.order_id = t.order_id AND (p.occurred_at, p.id) < (t.occurred_at, t.id) \
             ORDER BY p.occurred_at DESC, p.id DESC LIMIT 1) \
         GROUP BY 1, 2",
    )
    .bind(from)
    .fetch_all(&console.pool)
    .await?;
    let mut reached: BTreeMap<&'static str, Vec<i64>> = Status::ALL
        .iter()
        .map(|s| (s.as_str(), vec![0; WINDOW_MINUTES as usize]))
        .collect();
    for (minute, status, n) in moves {
        let slot = usize::try_from(minute)
            .ok()
            .filter(|m| *m < WINDOW_MINUTES as usize);
        if let (Some(series), Some(slot)) = (reached.get_mut(status.as_str()), slot) {
            series[slot] += n;
        }
    }

    Ok(axum::Json(json!({
        "now": Utc::now(),
        "statuses": Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "by_status": stats.by_status,
        "total": stats.total,
        "stalled_by_status": stalled_counts.into_iter().collect::<BTreeMap<_, _>>(),
        "stalled": stalled,
        "last_hour": {"from": from, "reached": reached},
        "limits": statuses.iter().zip(&secs).collect::<BTreeMap<_, _>>(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

/// `GET /v1/console/orders?q=` → `{"orders": [...]}`, newest first: the order with that id,
/// or the orders with that external reference or customer e-mail.
pub async fn search(
    State(console): State<Console>,
    caller: Caller,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    if q.is_empty() || q.chars().count() > 200 {
        return Err(Problem::validation(vec![FieldError::new(
            "q",
            "length",
            "give an order id, an external reference or a customer e-mail (1 to 200 characters)",
        )]));
    }
    let id = Uuid::parse_str(q).ok();
    let email = EmailAddress::parse(q).ok().map(|e| e.as_str().to_owned());
    let found: Vec<OrderSummary> = sqlx::query_as(
        "SELECT id, status, channel, external_reference, customer_email, shop, created_at \
         FROM orders WHERE id = $1 OR external_reference = $2 OR customer_email = $3 \
         ORDER BY created_at DESC, id DESC LIMIT $4",
    )
    .bind(id)
    .bind(q)
    .bind(email)
    .bind(SEARCH_LIMIT)
    .fetch_all(&console.pool)
    .await?;
    Ok(axum::Json(json!({ "orders": found })).into_response())
}
