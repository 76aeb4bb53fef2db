//! Shops' webhook subscriptions — `POST /v1/webhooks {"url", "secret"?}`, `GET /v1/webhooks`,
//! `DELETE /v1/webhooks/{id}` — and an order's delivery log,
//! `GET /v1/orders/{id}/notifications`. A shop key manages its own subscriptions, which hear the
//! status changes of its own orders; staff see all. A URL must be `https://`; plain `http://`
//! only where [`PlainHttp`](crate::delivery::PlainHttp) allows it (rule `https`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{JsonBody, Problem};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Api, order_id, visible_order};
use crate::field_rules::Fields;
use crate::orders::Reader;

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookRequest {
    pub url: Value,
    /// Signs every delivery; generated when not given.
    pub secret: Value,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct WebhookView {
    id: Uuid,
    shop: Option<String>,
    url: String,
    created_at: DateTime<Utc>,
}

pub async fn subscribe(
    State(api): State<Api>,
    caller: Caller,
    body: Result<JsonBody<WebhookRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let JsonBody(request) = body?;
    let mut f = Fields::default();
    let url = f.text(&request.url, "url", 2000);
    if let Some(raw) = &url {
        match reqwest::Url::parse(raw) {
            Err(e) => f.fail("url", "format", format!("not a URL: {e}")),
            Ok(parsed) => {
                if let Err((rule, message)) = api.plain_http.check(&parsed) {
                    f.fail("url", rule, message);
                }
            }
        }
    }
    let secret = f.optional_text(&request.secret, "secret", 200);
    if let Some(secret) = &secret
        && secret.len() < 16
    {
        f.fail("secret", "length", "at least 16 characters");
    }
    let (Some(url), true) = (url, f.is_empty()) else {
        return Err(Problem::validation(f.into_errors()));
    };
    let secret =
        secret.unwrap_or_else(|| format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()));
    let id = Uuid::now_v7();
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO webhooks (id, shop, url, secret) VALUES ($1, $2, $3, $4) RETURNING created_at",
    )
    .bind(id)
    .bind(&caller.key_name)
    .bind(&url)
    .bind(&secret)
    .fetch_one(&api.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "id": id,
            "shop": caller.key_name,
            "url": url,
            // Shown this once: the receiver checks each delivery's signature with it.
            "secret": secret,
            "created_at": created_at,
        })),
    )
        .into_response())
}

pub async fn list(State(api): State<Api>, caller: Caller) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let (only_shop, shop) = match Reader::of(&caller) {
        Reader::Everyone => (false, None),
        Reader::Shop(name) => (true, name),
    };
    let webhooks: Vec<WebhookView> = sqlx::query_as(
        "SELECT id, shop, url, created_at FROM webhooks \
         WHERE NOT $1 OR shop IS NOT DISTINCT FROM $2 ORDER BY created_at, id",
    )
    .bind(only_shop)
    .bind(shop)
    .fetch_all(&api.pool)
    .await?;
    Ok(axum::Json(json!({ "webhooks": webhooks })).into_response())
}

pub async fn unsubscribe(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| Problem::bad_request(format!("`{id}` is not a webhook id (a UUID)")))?;
    let (only_shop, shop) = match Reader::of(&caller) {
        Reader::Everyone => (false, None),
        Reader::Shop(name) => (true, name),
    };
    let deleted = sqlx::query(
        "DELETE FROM webhooks WHERE id = $1 AND (NOT $2 OR shop IS NOT DISTINCT FROM $3)",
    )
    .bind(id)
    .bind(only_shop)
    .bind(shop)
    .execute(&api.pool)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Err(Problem::not_found(format!("there is no webhook {id}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct DeliveryView {
    id: i64,
    sink: String,
    url: Option<String>,
    state: String,
    attempts: i32,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    next_attempt_at: DateTime<Utc>,
    body: Value,
    created_at: DateTime<Utc>,
}

/// `GET /v1/orders/{id}/notifications`: every notification about the order, by sink.
pub async fn delivery_log(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let order = visible_order(&api, &caller, order_id(&id)?).await?;
    let deliveries: Vec<DeliveryView> = sqlx::query_as(
        "SELECT id, sink, url, state, attempts, last_error, delivered_at, next_attempt_at, body, \
         created_at FROM deliveries WHERE order_id = $1 ORDER BY id",
    )
    .bind(order.id)
    .fetch_all(&api.pool)
    .await?;
    Ok(axum::Json(json!({ "order_id": order.id, "deliveries": deliveries })).into_response())
}
