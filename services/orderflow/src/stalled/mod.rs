//! `orderflow stalled`: orders that have stayed in one status longer than that status's limit
//! (settings section `[stalled]`), read from intake's orders (`updated_at` is when the order
//! last moved), with where they wait.
//!
//! `--publish` announces each newly stalled order with `order.stalled` (intake shows it in the
//! timeline). What was announced is remembered in `operations.stalled_orders`, keyed by order,
//! status and since, so an order is announced once per stall. The row, with the message id, is
//! written before the publish and marked published after the broker's confirm: a run that dies
//! in between publishes the same message id again next time, which the consumers' inbox drops.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use lapin::ConnectionProperties;
use lapin::options::ConfirmSelectOptions;
use orderflow_messages::{Envelope, order};
use orderflow_runtime::Settings;
use orderflow_runtime::amqp::Publisher;
use orderflow_runtime::topology::Names;
use serde::Serialize;
use uuid::Uuid;

mod watch;

#[derive(Args)]
pub struct StalledArgs {
    /// Publish `order.stalled` for every order not announced before.
    #[arg(long)]
    pub publish: bool,
    #[arg(long)]
    pub json: bool,
    /// Keep running: look again every SECS seconds (announcing with `--publish`) and serve the
    /// counts as the gauge `orderflow_orders_stalled{status,stage}` on `/metrics` at `--listen`.
    #[arg(long, value_name = "SECS")]
    pub watch: Option<u64>,
    /// Where `--watch` serves `/metrics` and `/healthz`.
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub listen: String,
}

// The limits and who waits where are shared with intake's ops console, which highlights the
// same stalled orders on its flow board.
pub use order_intake::console::stalled::{StalledSettings, waiting_for};

/// The stage (or party) an order in `status` waits for, as the metric's `stage` label.
pub fn stage_of(status: &str) -> &'static str {
    match status {
        "placed" => "verification",
        "verified" => "fulfilment",
        "packed" => "shipping",
        "shipped" => "carrier",
        "delivered" | "invoiced" => "billing",
        "paid" => "order-intake",
        "on_hold" => "person",
        "backordered" => "goods",
        _ => "unknown",
    }
}

#[derive(Debug, Serialize)]
pub struct StalledOrder {
    pub order_id: Uuid,
    pub status: String,
    pub since: DateTime<Utc>,
    pub waited_secs: i64,
    pub limit_secs: u64,
    pub waiting_for: &'static str,
}

/// Every non-final order past its status's limit, oldest first.
pub async fn find(
    pool: &sqlx::PgPool,
    limits: &StalledSettings,
) -> anyhow::Result<Vec<StalledOrder>> {
    let finals: Vec<String> = crate::check::FINAL.iter().map(|s| s.to_string()).collect();
    let rows: Vec<(Uuid, String, DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT id, status, updated_at, extract(epoch FROM now() - updated_at)::bigint \
         FROM order_intake.orders WHERE status <> ALL($1) ORDER BY updated_at",
    )
    .bind(&finals)
    .fetch_all(pool)
    .await
    .context("reading order_intake.orders")?;
    Ok(rows
        .into_iter()
        .filter(|(_, status, _, waited)| *waited >= 0 && (*waited as u64) >= limits.limit(status))
        .map(|(order_id, status, since, waited_secs)| StalledOrder {
            order_id,
            limit_secs: limits.limit(&status),
            waiting_for: waiting_for(&status),
            status,
            since,
            waited_secs,
        })
        .collect())
}

async fn remember_schema(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    sqlx::query("CREATE SCHEMA IF NOT EXISTS operations")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS operations.stalled_orders (
            order_id     UUID        NOT NULL,
            status       TEXT        NOT NULL,
            since        TIMESTAMPTZ NOT NULL,
            message_id   UUID        NOT NULL UNIQUE,
            published_at TIMESTAMPTZ,
            created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (order_id, status, since)
        )",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Publishes `order.stalled` for each order not yet announced; returns how many were published.
pub async fn publish(
    settings: &Settings,
    pool: &sqlx::PgPool,
    stalled: &[StalledOrder],
) -> anyhow::Result<usize> {
    remember_schema(pool).await?;
    let name = format!("{}orderflow/stalled", settings.amqp.prefix);
    let connection = orderflow_runtime::cluster::Target::from_settings(&settings.amqp)?
        .open(
            ConnectionProperties::default().with_connection_name(name.clone().into()),
            &name,
        )
        .await
        .context("connecting to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let publisher = Publisher::from_channel(
        channel,
        Names {
            prefix: settings.amqp.prefix.clone(),
        },
    );
    let mut published = 0;
    for s in stalled {
        let mut envelope = Envelope::new(
            "orderflow",
            s.order_id,
            order::Stalled {
                status: s.status.clone(),
                since: s.since,
                limit_seconds: s.limit_secs,
            },
        );
        let (message_id, sent): (Uuid, Option<DateTime<Utc>>) = sqlx::query_as(
            "INSERT INTO operations.stalled_orders (order_id, status, since, message_id) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (order_id, status, since) DO UPDATE SET updated_at = now() \
             RETURNING message_id, published_at",
        )
        .bind(s.order_id)
        .bind(&s.status)
        .bind(s.since)
        .bind(envelope.message_id)
        .fetch_one(pool)
        .await?;
        if sent.is_some() {
            continue;
        }
        envelope.message_id = message_id;
        publisher.publish(&envelope, None).await?;
        sqlx::query("UPDATE operations.stalled_orders SET published_at = now(), updated_at = now() WHERE message_id = $1")
            .bind(message_id)
            .execute(pool)
            .await?;
        published += 1;
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(published)
}

pub async fn run(settings: &Settings, args: StalledArgs) -> anyhow::Result<()> {
    let limits: StalledSettings = settings.section("stalled")?;
    let pool = crate::check::database(settings).await?;
    if let Some(every) = args.watch {
        let result = watch::run(settings, &pool, &limits, &args, every).await;
        pool.close().await;
        return result;
    }
    let stalled = find(&pool, &limits).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stalled)?);
    } else if stalled.is_empty() {
        println!("no stalled orders");
    } else {
        println!(
            "{:<38} {:<12} {:>10} {:>8}  WAITING FOR",
            "ORDER", "STATUS", "WAITED s", "LIMIT s"
        );
        for s in &stalled {
            println!(
                "{:<38} {:<12} {:>10} {:>8}  {}",
                s.order_id, s.status, s.waited_secs, s.limit_secs, s.waiting_for
            );
        }
        println!("{} stalled order(s)", stalled.len());
    }
    if args.publish {
        let published = publish(settings, &pool, &stalled).await?;
        if !args.json {
            println!("published order.stalled for {published} order(s)");
        }
    }
    pool.close().await;
    Ok(())
}
