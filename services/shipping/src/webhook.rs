//! Webhook ingress: `POST /v1/carriers/{code}/webhook`, for carriers that push HTTP callbacks
//! instead of publishing on the broker.
//!
//! The request is authenticated by its signature alone (no API key): header
//! `X-Orderflow-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body with the carrier's
//! secret (`shipping.webhook_secrets.<code>`), compared in constant time. The body is
//!
//! ```json
//! {"event_id": "carrier's unique id, the same on every retry",
//!  "type": "shipment.tracking_updated",
//!  "payload": { …exactly the payload of the broker message… }}
//! ```
//!
//! A call that passes the checks a carrier can fix at once (signature, shape, carrier, known
//! shipment) becomes the broker message the carrier would have published: written to the
//! outbox for `orderflow.carrier-events` with key `<code>.<type>`, so it is handled by the same
//! consumer as every reply, with the same matching, ordering and dead-lettering. Its
//! `message_id` is derived from (carrier, `event_id`) and recorded in `webhook_calls` in the
//! same transaction, so a retried call is answered as a duplicate and handled once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use orderflow_messages::shipment::{LabelCreated, TrackingUpdated};
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::config::Secret;
use orderflow_runtime::outbox;
use orderflow_runtime::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-orderflow-signature";

/// What the ingress needs: the database and the carriers' secrets.
#[derive(Clone)]
pub struct Ingress {
    pool: PgPool,
    secrets: Arc<HashMap<String, Secret>>,
}

impl Ingress {
    pub fn new(pool: PgPool, secrets: HashMap<String, Secret>) -> Ingress {
        Ingress {
            pool,
            secrets: Arc::new(secrets),
        }
    }
}

/// The webhook operation, routed and documented; it is not behind the API keys.
pub fn operations() -> OpenApiRouter<Ingress> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// `sha256=<hex>` of `body` under `secret`: what a carrier sends (and what tests sign with).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is a valid signature of `body`; the comparison takes the same time
/// wherever the signatures differ.
fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(tag) = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// A carrier's callback.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Call {
    /// The carrier's unique id of the event, the same on every retry.
    event_id: String,
    /// `shipment.label_created` or `shipment.tracking_updated`.
    #[serde(rename = "type")]
    kind: String,
    /// Exactly the payload of the broker message of that type (see the message schemas).
    #[schema(value_type = Object)]
    payload: Value,
}

/// The call was taken: the broker message it became.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAccepted {
    message_id: Uuid,
    /// A retry of a call already taken (handled once).
    duplicate: bool,
}

/// The same message id for the same (carrier, event id): a retried call is a duplicate.
fn message_id(code: &str, event_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("{code}\n{event_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> Problem {
    Problem::validation(vec![FieldError::new(field, rule, message)])
}

/// A carrier's HTTP callback, taken as the broker message the carrier would have published.
#[utoipa::path(post, path = "/v1/carriers/{code}/webhook", tag = "carriers",
    description = "Role: none: no API key; the call is authenticated by \
                   `X-Orderflow-Signature: sha256=<hex HMAC-SHA256 of the raw body under the \
                   carrier's secret>` (`shipping.webhook_secrets.<code>`).",
    security(()),
    params(("code" = String, Path, description = "the carrier's code"),
        ("X-Orderflow-Signature" = String, Header, description = "`sha256=<hex>`")),
    request_body(content = Call, content_type = "application/json"),
    responses(
        (status = 202, description = "taken (or a retry of a call taken before)", body = WebhookAccepted),
        (status = 401, description = "no secret for this carrier, or the signature does not match"),
        (status = 422, description = "the type, payload, carrier or shipment is not right (named in `errors`)"),
    ))]
async fn receive(
    State(ingress): State<Ingress>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookAccepted>), Problem> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let authentic = ingress
        .secrets
        .get(&code)
        .is_some_and(|secret| verify(secret.expose().as_bytes(), &body, signature));
    if !authentic {
        tracing::warn!(carrier = %code, "webhook call with a missing or invalid signature");
        return Err(Problem::unauthorized(
            "sign the raw body with HMAC-SHA256 and the carrier's webhook secret and send it as `X-Orderflow-Signature: sha256=<hex>`",
        ));
    }
    let call: Call = serde_json::from_slice(&body).map_err(|e| {
        let mut p = Problem::bad_request("the body is not a webhook call");
        p.errors = vec![FieldError::new("body", "schema", e.to_string())];
        p
    })?;
    if call.event_id.trim().is_empty() {
        return Err(invalid(
            "event_id",
            "required",
            "give the callback a unique id, the same on every retry",
        ));
    }
    match call.kind.as_str() {
        LabelCreated::TYPE => {
            let label: LabelCreated = decode(&call)?;
            let shipment_id = label.shipment_id;
            accept(
                &ingress.pool,
                &code,
                &call,
                shipment_id,
                &label.carrier.clone(),
                label,
            )
            .await
        }
        TrackingUpdated::TYPE => {
            let event: TrackingUpdated = decode(&call)?;
            let shipment_id = event.shipment_id;
            accept(
                &ingress.pool,
                &code,
                &call,
                shipment_id,
                &event.carrier.clone(),
                event,
            )
            .await
        }
        other => Err(invalid(
            "type",
            "enum",
            format!(
                "`{other}` is not a carrier event: use `{}` or `{}`",
                LabelCreated::TYPE,
                TrackingUpdated::TYPE
            ),
        )),
    }
}

fn decode<E: Event>(call: &Call) -> Result<E, Problem> {
    serde_json::from_value(call.payload.clone())
        .map_err(|e| invalid("payload", "schema", format!("not a `{}`: {e}", E::TYPE)))
}

/// Puts the reply in the outbox as the carrier's broker message.
async fn accept<E: Event>(
    pool: &PgPool,
    code: &str,
    call: &Call,
    shipment_id: Uuid,
    claimed: &str,
    payload: E,
) -> Result<(StatusCode, Json<WebhookAccepted>), Problem> {
    if claimed != code {
        return Err(invalid(
            "payload.carrier",
            "match",
            format!("the URL is carrier `{code}`'s, the payload names `{claimed}`"),
        ));
    }
    let mut tx = pool.begin().await?;
    let shipment: Option<(Uuid, String, Option<Uuid>, Option<Uuid>)> = sqlx::query_as(
        "SELECT order_id, carrier, correlation_id, request_message_id FROM shipments \
         WHERE shipment_id = $1",
    )
    .bind(shipment_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((order_id, carrier, correlation_id, request_message_id)) = shipment else {
        return Err(invalid(
            "payload.shipment_id",
            "exists",
            format!("no shipment {shipment_id}"),
        ));
    };
    if carrier != code {
        return Err(invalid(
            "payload.shipment_id",
            "match",
            format!("shipment {shipment_id} is with carrier `{carrier}`, not `{code}`"),
        ));
    }
    let id = message_id(code, &call.event_id);
    let answer = |duplicate: bool| {
        (
            StatusCode::ACCEPTED,
            Json(WebhookAccepted {
                message_id: id,
                duplicate,
            }),
        )
    };
    // A concurrent retry waits here for this transaction, then finds the row.
    let first = sqlx::query(
        "INSERT INTO webhook_calls (message_id, carrier, event_id) VALUES ($1, $2, $3) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(id)
    .bind(code)
    .bind(&call.event_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !first {
        return Ok(answer(true));
    }
    let mut envelope = Envelope::new(&format!("{code}-webhook"), order_id, payload);
    envelope.message_id = id;
    envelope.correlation_id = correlation_id.unwrap_or(order_id);
    envelope.causation_id = request_message_id;
    outbox::enqueue(&mut tx, &envelope, Some(code)).await?;
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok(answer(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_and_secret() {
        let secret = b"0123456789abcdef-acme";
        let body = br#"{"event_id":"1"}"#;
        let header = sign(secret, body);
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        assert!(verify(secret, body, &header));
        assert!(!verify(secret, br#"{"event_id":"2"}"#, &header));
        assert!(!verify(b"another-secret-of-acme", body, &header));
        assert!(!verify(secret, body, "sha256=zz"));
        assert!(!verify(secret, body, ""));
    }

    #[test]
    fn a_retried_call_gets_the_same_message_id() {
        assert_eq!(message_id("acme", "e-1"), message_id("acme", "e-1"));
        assert_ne!(message_id("acme", "e-1"), message_id("acme", "e-2"));
        assert_ne!(message_id("acme", "e-1"), message_id("dhl", "e-1"));
    }
}
