//! The HTTP side every service has: `/healthz` (alive), `/readyz` (database and broker reachable),
//! `/metrics` (Prometheus), next to the service's own routes, with a body size limit.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use sqlx::PgPool;

use crate::amqp::Broker;

/// Largest request body any service accepts; larger bodies get 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone)]
struct Health {
    pool: PgPool,
    broker: Arc<Broker>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    let database = sqlx::query("SELECT 1").execute(&health.pool).await.is_ok();
    let broker = health.broker.is_ready();
    let status = if database && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({"database": database, "broker": broker})),
    )
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::telemetry::metrics().render(),
    )
}

/// `api` plus the health and metrics endpoints and the body limit.
pub fn with_health(api: Router, pool: PgPool, broker: Arc<Broker>) -> Router {
    let health = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Health { pool, broker });
    api.merge(health)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
