//! `POST /v1/orders`.

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{JsonBody, Problem};

use super::{Api, who};
use crate::order_request::OrderRequest;
use crate::orders::OrderView;
use crate::placement::{self, Placement, PlacementError};

/// Longest `Idempotency-Key` accepted (a UUID needs 36).
const MAX_KEY_LEN: usize = 255;

/// Places an order. The same `Idempotency-Key` and body replay the first answer (status and
/// body, with `Idempotent-Replayed: true`); the same key with another body is a 422.
#[utoipa::path(post, path = "/v1/orders", tag = "orders",
    description = "Role: `shop` (the order becomes the shop's), `staff`, `admin`.",
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1 to 255 visible ASCII characters, e.g. a UUID; remembered for a \
                       configurable time (24 h by default)")),
    request_body(content = OrderRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "placed, or the replay of an earlier placement",
            body = OrderView,
            headers(("Location" = String, description = "`/v1/orders/{id}`"),
                ("Idempotent-Replayed" = Option<String>, description = "`true` on a replay"))),
        (status = 400, description = "malformed JSON, an unknown field, or a malformed Idempotency-Key"),
        (status = 409, description = "an order with this channel and external_reference exists: its id is `order_id`"),
        (status = 422, description = "fields failed their rules (each named in `errors`), or the Idempotency-Key was used with another body"),
    ))]
pub async fn place_order(
    State(api): State<Api>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<JsonBody<OrderRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let key = idempotency_key(&headers)?;
    let JsonBody(request) = body?;
    let order = request.parse().map_err(Problem::validation)?;
    let (channel, reference) = (order.channel, order.external_reference.clone());
    // Only a request with a key is ever compared with another.
    let fingerprint = match key {
        Some(_) => serde_json::to_value(&request).context("fingerprinting the request")?,
        None => serde_json::Value::Null,
    };
    // Keys are the caller's own: two shops that happen to pick the same key do not collide.
    let scoped_key = key.map(|k| format!("{}/{k}", who(&caller)));
    let requested_by = who(&caller);
    let placement = placement::place(
        &api.pool,
        order,
        placement::Request {
            body: &fingerprint,
            idempotency_key: scoped_key.as_deref(),
            key_lifetime: api.key_lifetime,
            shop: caller.key_name.as_deref(),
            requested_by: &requested_by,
        },
    )
    .await
    .map_err(|e| placement_problem(e, channel.as_str(), reference.as_deref()))?;
    Ok(match placement {
        Placement::Created { order_id, body } => (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/v1/orders/{order_id}"))],
            axum::Json(body),
        )
            .into_response(),
        Placement::Replayed { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
            let mut response = (status, axum::Json(&body)).into_response();
            if let Some(id) = body["id"].as_str()
                && let Ok(location) = HeaderValue::from_str(&format!("/v1/orders/{id}"))
            {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
    })
}

pub fn placement_problem(e: PlacementError, channel: &str, reference: Option<&str>) -> Problem {
    match e {
        PlacementError::Duplicate { existing } => Problem::conflict(format!(
            "an order from channel `{channel}` with external reference `{}` exists already",
            reference.unwrap_or_default()
        ))
        .with("order_id", existing),
        PlacementError::KeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key reused with another request",
        )
        .detail(
            "this Idempotency-Key was sent before with a different body; \
             use a new key for a new order",
        ),
        PlacementError::Unexpected(e) => Problem::internal(&e),
    }
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().unwrap_or_default();
    let valid =
        !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(Some(key))
    } else {
        Err(Problem::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters, e.g. a UUID"
        )))
    }
}
