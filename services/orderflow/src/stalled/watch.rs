//! `orderflow stalled --watch SECS`: looks for stalled orders every SECS seconds until SIGTERM
//! and serves what it found for Prometheus on `--listen` (`/metrics`, and `/healthz`):
//!
//! - `orderflow_orders_stalled{status, stage}`: orders past their status's limit, per status and
//!   the stage (or party) they wait for; 0 for a status with none, so an alert clears by itself;
//! - `orderflow_stalled_checked_timestamp_seconds`: when the last look succeeded (an alert on
//!   its age catches a watcher that cannot reach the database).
//!
//! With `--publish` each newly stalled order is also announced with `order.stalled`, once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use orderflow_runtime::Settings;
use tokio::net::TcpListener;

use super::{StalledArgs, StalledOrder, StalledSettings, find, publish, stage_of};

pub async fn run(
    settings: &Settings,
    pool: &sqlx::PgPool,
    limits: &StalledSettings,
    args: &StalledArgs,
    every: u64,
) -> anyhow::Result<()> {
    let every = Duration::from_secs(every.max(1));
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("--listen {}: cannot listen there", args.listen))?;
    let handle = orderflow_runtime::telemetry::metrics();
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        handle.render(),
                    )
                }
            }),
        );
    println!(
        "watching for stalled orders every {} s; metrics on http://{}/metrics",
        every.as_secs(),
        listener.local_addr()?
    );
    let shutdown = orderflow_runtime::service::shutdown_token();
    let server = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        })
    };
    // Every status ever reported keeps its series (at 0 once it has no stalled orders).
    let mut statuses: BTreeSet<String> = limits.limits.keys().cloned().collect();
    loop {
        match find(pool, limits).await {
            Ok(stalled) => {
                record(&stalled, &mut statuses);
                if args.publish
                    && let Err(e) = publish(settings, pool, &stalled).await
                {
                    eprintln!("orderflow stalled: announcing failed (next round retries): {e:#}");
                }
            }
            Err(e) => eprintln!("orderflow stalled: {e:#}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    server.await.context("metrics server")??;
    Ok(())
}

fn record(stalled: &[StalledOrder], statuses: &mut BTreeSet<String>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in stalled {
        *counts.entry(s.status.as_str()).or_default() += 1;
        statuses.insert(s.status.clone());
    }
    for status in statuses.iter() {
        let n = counts.get(status.as_str()).copied().unwrap_or(0);
        metrics::gauge!("orderflow_orders_stalled",
            "status" => status.clone(), "stage" => stage_of(status))
        .set(n as f64);
    }
    metrics::gauge!("orderflow_stalled_checked_timestamp_seconds")
        .set(chrono::Utc::now().timestamp() as f64);
}
