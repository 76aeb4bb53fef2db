//! Requests about an order in flight: `POST /v1/orders/{id}/cancel` and
//! `PUT /v1/orders/{id}/payment-method`.
//!
//! Intake does not cancel by itself: it publishes `order.cancel_requested` and shipping, which
//! owns the point of no return (the handover to a carrier), answers `order.cancelled` or
//! `order.cancel_refused`. Intake refuses at once what it already knows is too late (the order
//! has shipped, or is finished), so the caller gets a 409 with the reason instead of a 202 that
//! can only end in a refusal.

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orderflow_messages::order::{CancelRequested, PaymentMethodChanged};
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::outbox;
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Api, no_such_order, order_id, who};
use crate::NAME;
use crate::field_rules::Fields;
use crate::lifecycle::{Stage, Status};
use crate::order_request::{PaymentRequest, parse_payment_request};
use crate::orders::{PaymentView, Reader};
use crate::timeline::{self, Entry};

/// The body of `POST /v1/orders/{id}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CancelRequest {
    /// Why, for the timeline and the stages.
    #[schema(required = true, value_type = String, max_length = 500)]
    pub reason: Value,
}

/// The answer to an accepted cancellation request.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancellationAccepted {
    pub order_id: Uuid,
    /// The order's status when the request was taken.
    pub status: String,
    /// Always `requested`: the stages undo their parts and the order becomes `cancelled`.
    pub cancellation: String,
    /// The `order.cancel_requested` message.
    pub message_id: Uuid,
    pub detail: String,
}

/// The answer to a changed payment method.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodChangedView {
    pub order_id: Uuid,
    pub status: String,
    pub payment: PaymentView,
    /// The `order.payment_method_changed` message.
    pub message_id: Uuid,
}

/// Asks to cancel the order: every stage undoes its part, and the order becomes `cancelled`
/// unless a parcel reaches a carrier first (then `order.cancel_refused` shows in its timeline).
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders",
    description = "Role: `shop` (its own orders), `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the order's id")),
    request_body(content = CancelRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "requested", body = CancellationAccepted),
        (status = 400, description = "the id is not a UUID, or the body is malformed"),
        (status = 404, description = "no such order (or another shop's)"),
        (status = 409, description = "too late: shipped, cancelled, rejected or completed (the reason in `detail`, the status in `status`)"),
        (status = 422, description = "`reason` is missing or too long"),
    ))]
pub async fn cancel_order(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<JsonBody<CancelRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let id = order_id(&id)?;
    let JsonBody(request) = body?;
    let mut f = Fields::default();
    let reason = f.text(&request.reason, "reason", 500);
    let Some(reason) = reason else {
        return Err(Problem::validation(f.into_errors()));
    };

    let mut tx = api.pool.begin().await?;
    let stage = lock_visible(&mut tx, &caller, id).await?;
    if let Some(refusal) = too_late_to_cancel(&mut tx, id, stage).await? {
        return Err(Problem::conflict(refusal).with("status", stage.status.as_str()));
    }
    let requested_by = who(&caller);
    let envelope = Envelope::new(
        NAME,
        id,
        CancelRequested {
            reason: reason.clone(),
            requested_by: Some(requested_by.clone()),
        },
    );
    outbox::enqueue(&mut tx, &envelope, None).await?;
    let entry = Entry::new(
        envelope.message_id,
        CancelRequested::TYPE,
        NAME,
        envelope.occurred_at,
        stage.status,
        format!("cancellation requested by {requested_by}: {reason}"),
    )
    .requested_by(Some(requested_by));
    timeline::append(&mut tx, id, &entry).await?;
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA)
        .await
        .context("committing the cancellation request")?;
    tracing::info!(order_id = %id, "cancellation requested");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(CancellationAccepted {
            order_id: id,
            status: stage.status.as_str().to_owned(),
            cancellation: "requested".to_owned(),
            message_id: envelope.message_id,
            detail: "every stage undoes its part; the order becomes `cancelled` unless it is \
                     handed to a carrier first (then `order.cancel_refused` shows in its timeline)"
                .to_owned(),
        }),
    )
        .into_response())
}

/// Why the order can no longer be cancelled, or `None` while it can.
async fn too_late_to_cancel(
    conn: &mut PgConnection,
    id: Uuid,
    stage: Stage,
) -> Result<Option<String>, Problem> {
    Ok(match stage.status {
        Status::Cancelled => Some(format!("order {id} is already cancelled")),
        Status::Rejected => Some(format!(
            "order {id} was rejected; there is nothing to cancel"
        )),
        Status::Completed => Some(format!("order {id} is completed; ask for a return instead")),
        _ if !stage.may_cancel() => {
            let tracking: Vec<String> = sqlx::query_scalar(
                "SELECT carrier || ' ' || tracking_number FROM order_shipments \
                 WHERE order_id = $1 ORDER BY created_at",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            let tracking = if tracking.is_empty() {
                String::new()
            } else {
                format!(" (tracking {})", tracking.join(", "))
            };
            Some(format!(
                "order {id} has shipped{tracking}: it is with the carrier and can no longer be \
                 cancelled; ask for a return once it is delivered"
            ))
        }
        _ => None,
    })
}

/// Locks the order's row and reads its stage, if the caller may see the order.
pub async fn lock_visible(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
) -> Result<Stage, Problem> {
    let row: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT status, progress, shop FROM orders WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((status, progress, shop)) = row else {
        return Err(no_such_order(id));
    };
    if !Reader::of(caller).can_see(shop.as_deref()) {
        return Err(no_such_order(id));
    }
    match (Status::parse(&status), Status::parse(&progress)) {
        (Some(status), Some(progress)) => Ok(Stage { status, progress }),
        _ => Err(anyhow::anyhow!("order {id} has an unknown status {status}/{progress}").into()),
    }
}

/// A new payment method for an order not yet invoiced; billing authorises again.
#[utoipa::path(put, path = "/v1/orders/{id}/payment-method", tag = "orders",
    description = "Role: `shop` (its own orders), `staff`, `admin`. The body is the `payment` \
                   of an order.",
    params(("id" = Uuid, Path, description = "the order's id")),
    request_body(content = PaymentRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "changed; billing authorises again", body = PaymentMethodChangedView),
        (status = 400, description = "the id is not a UUID, or the body is malformed"),
        (status = 404, description = "no such order (or another shop's)"),
        (status = 409, description = "invoiced or finished"),
        (status = 422, description = "method or token failed their rules"),
    ))]
pub async fn change_payment_method(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<JsonBody<PaymentRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Role::Shop)?;
    let id = order_id(&id)?;
    let JsonBody(request) = body?;
    let payment = parse_payment_request(&request).map_err(|errors| {
        // The rules speak of `payment.…`; here the body is the payment itself.
        Problem::validation(
            errors
                .into_iter()
                .map(|e| {
                    let field = e.field.trim_start_matches("payment.").to_owned();
                    FieldError { field, ..e }
                })
                .collect(),
        )
    })?;

    let mut tx = api.pool.begin().await?;
    let stage = lock_visible(&mut tx, &caller, id).await?;
    let invoiced: Option<String> =
        sqlx::query_scalar("SELECT invoice_number FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if stage.status.is_terminal() || invoiced.is_some() || stage.is_invoiced() {
        return Err(Problem::conflict(format!(
            "order {id} is {} and invoiced or finished: its payment method can no longer change",
            stage.status
        ))
        .with("status", stage.status.as_str()));
    }
    sqlx::query(
        "UPDATE orders SET payment_method = $2, payment_state = 'pending', updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(payment.method.as_str())
    .execute(&mut *tx)
    .await?;
    let method = payment.method;
    let envelope = Envelope::new(NAME, id, PaymentMethodChanged { payment });
    outbox::enqueue(&mut tx, &envelope, None).await?;
    let requested_by = who(&caller);
    let entry = Entry::new(
        envelope.message_id,
        PaymentMethodChanged::TYPE,
        NAME,
        envelope.occurred_at,
        stage.status,
        format!(
            "payment method changed to {} by {requested_by}",
            method.as_str()
        ),
    )
    .requested_by(Some(requested_by));
    timeline::append(&mut tx, id, &entry).await?;
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA)
        .await
        .context("committing the payment method")?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(PaymentMethodChangedView {
            order_id: id,
            status: stage.status.as_str().to_owned(),
            payment: PaymentView {
                method: method.as_str().to_owned(),
                state: "pending".to_owned(),
            },
            message_id: envelope.message_id,
        }),
    )
        .into_response())
}
