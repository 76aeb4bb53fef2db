//! Registering carriers at runtime: `PUT /v1/carriers/{code}` (role `admin`).
//!
//! The carrier's queue `carrier.<code>` is declared (bound to `orderflow.carriers` with key
//! `<code>`) before the carrier is stored, so by the time a rule can route a shipment to it, a
//! request published with `mandatory` is routable. Rules read the registry for every order, so
//! every replica uses the new carrier from the next order on; at start each replica declares
//! the queues of every stored carrier, in case the broker lost them.

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use orderflow_runtime::amqp::Broker;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use orderflow_runtime::topology::{self, QueueSpec};
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::registry::{self, Carrier};
use crate::settings::{CarrierSettings, PICKUP, is_carrier_code};

/// What registering a carrier needs.
#[derive(Clone)]
pub struct Registrar {
    pub pool: PgPool,
    pub broker: Arc<Broker>,
    /// `amqp.delivery_limit`, for the queues it declares.
    pub delivery_limit: u32,
}

impl Registrar {
    /// Declares `carrier.<code>` and its dead-letter queue (idempotent). The built-in `pickup`
    /// has no queue: shipping is that carrier.
    pub async fn declare_queue(&self, code: &str) -> anyhow::Result<()> {
        if code == PICKUP {
            return Ok(());
        }
        topology::declare_queue(
            &self.broker.publish,
            &self.broker.names,
            &QueueSpec::carrier(code),
            self.delivery_limit,
        )
        .await
        .with_context(|| format!("declaring the queue of carrier {code}"))
    }

    /// Declares the queue of every stored carrier (those registered through the API too).
    pub async fn declare_stored(&self) -> anyhow::Result<()> {
        for carrier in registry::carriers(&self.pool).await? {
            self.declare_queue(&carrier.code).await?;
        }
        Ok(())
    }
}

/// The registry's operations, routed and documented.
pub fn operations() -> OpenApiRouter<Registrar> {
    OpenApiRouter::new().routes(routes!(register, show))
}

/// A carrier to register (its code is in the path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarrierBody {
    pub name: String,
    /// At least one, e.g. `standard`, `express`.
    pub service_levels: Vec<String>,
    /// Must contain `{tracking_number}`.
    pub tracking_url_template: String,
    /// Whether it collects cash on delivery.
    #[serde(default)]
    pub cash_on_delivery: bool,
}

fn parse(code: &str, body: CarrierBody) -> Result<CarrierSettings, Problem> {
    let mut errors = Vec::new();
    if !is_carrier_code(code) {
        errors.push(FieldError::new(
            "code",
            "format",
            "use up to 64 lower-case letters, digits, `-` and `_`, starting with a letter or digit (it becomes a routing key)",
        ));
    }
    if body.name.trim().is_empty() {
        errors.push(FieldError::new(
            "name",
            "required",
            "give the carrier a name",
        ));
    }
    if body.service_levels.is_empty() {
        errors.push(FieldError::new(
            "service_levels",
            "required",
            "list at least one service level",
        ));
    }
    for (i, level) in body.service_levels.iter().enumerate() {
        if level.trim().is_empty() {
            errors.push(FieldError::new(
                format!("service_levels[{i}]"),
                "required",
                "a service level cannot be empty",
            ));
        }
    }
    if !body.tracking_url_template.contains("{tracking_number}") {
        errors.push(FieldError::new(
            "tracking_url_template",
            "format",
            "must contain `{tracking_number}`",
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    Ok(CarrierSettings {
        code: code.to_owned(),
        name: body.name.trim().to_owned(),
        service_levels: body.service_levels,
        tracking_url_template: body.tracking_url_template,
        cash_on_delivery: body.cash_on_delivery,
    })
}

/// Registers or updates a carrier: its queue `carrier.<code>` is declared first, then it is
/// stored; shipping rules may route to it from the next order on.
#[utoipa::path(put, path = "/v1/carriers/{code}", tag = "carriers",
    description = "Role: `admin`.",
    params(("code" = String, Path, description = "up to 64 lower-case letters, digits, `-`, `_`")),
    request_body(content = CarrierBody, content_type = "application/json"),
    responses(
        (status = 201, description = "registered", body = Carrier),
        (status = 200, description = "updated", body = Carrier),
        (status = 422, description = "the code or a field failed its rule (named in `errors`)"),
        (status = 503, description = "the broker could not declare the queue; nothing was registered"),
    ))]
async fn register(
    caller: Caller,
    State(registrar): State<Registrar>,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<CarrierBody>,
) -> Result<(StatusCode, Json<Carrier>), Problem> {
    caller.require(Role::Admin)?;
    let carrier = parse(&code, body)?;
    // Queue first: a carrier stored without its queue would make its requests unroutable.
    registrar.declare_queue(&carrier.code).await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), carrier = %carrier.code, "cannot declare the carrier's queue");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "broker-unavailable",
            "the carrier's queue could not be declared; nothing was registered, try again",
        )
    })?;
    let mut conn = registrar.pool.acquire().await?;
    let created = registry::register(&mut conn, &carrier).await?;
    tracing::info!(carrier = %carrier.code, created, "carrier registered");
    let stored = registry::carrier(&registrar.pool, &carrier.code)
        .await?
        .ok_or_else(|| Problem::internal(&anyhow::anyhow!("carrier {code} vanished")))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)))
}

/// One carrier.
#[utoipa::path(get, path = "/v1/carriers/{code}", tag = "carriers",
    description = "Role: `staff`, `admin`.",
    params(("code" = String, Path, description = "the carrier's code")),
    responses(
        (status = 200, description = "the carrier", body = Carrier),
        (status = 404, description = "no such carrier"),
    ))]
async fn show(
    caller: Caller,
    State(registrar): State<Registrar>,
    Path(code): Path<String>,
) -> Result<Json<Carrier>, Problem> {
    caller.require(Role::Staff)?;
    registry::carrier(&registrar.pool, &code)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no carrier `{code}`")))
}
