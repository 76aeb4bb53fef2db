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
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Api, order_id, visible_order};
use crate::field_rules::Fields;
use crate::orders::Reader;

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookRequest {
    /// `https://`; plain `http://` only to localhost in development, or where the deployment
    /// allows it (rule `https`).
    #[schema(required = true, value_type = String, format = "uri", max_length = 2000)]
    pub url: Value,
    /// Signs every delivery; generated when not given.
    #[schema(value_type = Option<String>, min_length = 16, max_length = 200)]
    pub secret: Value,
}

/// A subscription.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct WebhookView {
    id: Uuid,
    /// The shop (API key name) whose orders it hears.
    shop: Option<String>,
    url: String,
    created_at: DateTime<Utc>,
}

/// A new subscription, with its secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    webhook: WebhookView,
    /// Each delivery carries `X-Orderflow-Signature: sha256=<hex HMAC-SHA256 of the body under
    /// this secret>`.
    secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    webhooks: Vec<WebhookView>,
}

/// Subscribes a URL to the status changes of the shop's orders.
#[utoipa::path(post, path = "/v1/webhooks", tag = "notifications",
    description = "Role: `shop` (its own orders' changes), `staff`, `admin`. Each change is \
                   POSTed as `{\"event\": \"order.status_changed\", \"order_id\", \"status\", \
                   \"message_id\"}`, signed, and retried with backoff until a 2xx.",
    request_body(content = WebhookRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "subscribed; the secret is shown this once", body = WebhookCreated),
        (status = 422, description = "`url` or `secret` failed their rules"),
    ))]
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
        axum::Json(WebhookCreated {
            webhook: WebhookView {
                id,
                shop: caller.key_name,
                url,
                created_at,
            },
            secret,
        }),
    )
        .into_response())
}

/// The subscriptions: a shop's own, or (staff) every one.
#[utoipa::path(get, path = "/v1/webhooks", tag = "notifications",
    description = "Role: `shop` (its own), `staff`, `admin` (all).",
    responses((status = 200, description = "the subscriptions", body = WebhookList)))]
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
    Ok(axum::Json(WebhookList { webhooks }).into_response())
}

/// Ends a subscription; its deliveries still queued fail (`the subscription was deleted`).
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "notifications",
    description = "Role: `shop` (its own), `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the subscription's id")),
    responses(
        (status = 204, description = "unsubscribed"),
        (status = 400, description = "the id is not a UUID"),
        (status = 404, description = "no such subscription (or another shop's)"),
    ))]
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

/// One notification to one sink.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DeliveryView {
    id: i64,
    /// `log` or `webhook`.
    sink: String,
    url: Option<String>,
    /// `pending`, `delivered` or `failed` (attempts used up).
    state: String,
    attempts: i32,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    next_attempt_at: DateTime<Utc>,
    /// What was (or will be) sent.
    #[schema(value_type = Object)]
    body: Value,
    created_at: DateTime<Utc>,
}

/// An order's delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryLog {
    order_id: Uuid,
    deliveries: Vec<DeliveryView>,
}

/// Every notification about the order, per sink: its state, attempts and last error.
#[utoipa::path(get, path = "/v1/orders/{id}/notifications", tag = "notifications",
    description = "Role: `shop` (its own orders), `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the order's id")),
    responses(
        (status = 200, description = "the delivery log", body = DeliveryLog),
        (status = 400, description = "the id is not a UUID"),
        (status = 404, description = "no such order (or another shop's)"),
    ))]
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
    Ok(axum::Json(DeliveryLog {
        order_id: order.id,
        deliveries,
    })
    .into_response())
}
