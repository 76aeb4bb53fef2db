//! The chaos suite: every stage as two separate processes (`orderflow run <stage>`) and the
//! simulated carrier, orders placed over intake's HTTP API (paid by card, one in 50 for an
//! unknown SKU), while replicas are killed with SIGKILL and restarted, the broker closes their
//! connections, the broker itself is stopped and started once (`rabbitmqctl stop_app` /
//! `start_app`, once a third of the orders are final), every `order.verified` is delivered twice
//! and malformed messages are injected into every queue. Afterwards every order ended as
//! intended, every `order.verified` was duplicated, `orderflow check` passes and every
//! injected message is in a dead-letter queue with its reason.
//!
//! Stopping the broker closes every connection on it, so nothing else of ours may run
//! meanwhile: this binary holds exactly one test (the tests of one binary run in parallel,
//! cargo runs the binaries one after another, so during `cargo test --workspace` the restart
//! meets no other test). Add no second test here. On a machine whose broker others use too,
//! `ORDERFLOW_CHAOS_BROKER_RESTART=0` leaves the broker alone (the rest of the chaos runs).
//!
//! `ORDERFLOW_CHAOS_ORDERS` sets the number of orders (default 2000, which a debug build on two
//! busy cores finishes in about three minutes), `ORDERFLOW_CHAOS_TIMEOUT_SECS` the time from
//! the start by which every order must be final (default 240; the whole test stays under five
//! minutes).

mod support;

#[path = "support/disturbance.rs"]
mod disturbance;
#[path = "support/replicas.rs"]
mod replicas;
#[path = "support/shop.rs"]
mod shop;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use disturbance::{
    BrokerRestart, close_connections, duplicate_verified, inject_poison, restart_broker,
};
use orderflow_runtime::CancellationToken;
use orderflow_runtime::testing::TestEnv;
use replicas::{Figures, System, supervise};
use support::{assert_check_passes, orderflow, orderflow_json};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_killed_replicas_closed_connections_a_broker_restart_duplicates_and_poison()
{
    let started = Instant::now();
    let broker_restart = std::env::var("ORDERFLOW_CHAOS_BROKER_RESTART").as_deref() != Ok("0");
    let orders: usize = std::env::var("ORDERFLOW_CHAOS_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let timeout: u64 = std::env::var("ORDERFLOW_CHAOS_TIMEOUT_SECS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(240);
    let System {
        env,
        logs,
        replicas: all,
        ports,
        client,
    } = System::start("chaos", 2, None).await;
    let figures = Arc::new(Figures::default());
    let chaos = CancellationToken::new();
    let stop = CancellationToken::new();
    let (duplicator, duplicated) = duplicate_verified(&env, chaos.clone(), figures.clone()).await;
    let supervisor = tokio::spawn(supervise(all, chaos.clone(), stop.clone(), figures.clone()));
    let closer = tokio::spawn(close_connections(
        env.prefix.clone(),
        chaos.clone(),
        figures.clone(),
    ));

    let intake = format!("http://127.0.0.1:{}", ports["order-intake"]);
    let run = Uuid::now_v7().simple().to_string();
    let placing = {
        let (client, intake, run) = (client.clone(), intake.clone(), format!("chaos-{run}"));
        tokio::spawn(async move { shop::place_all(&client, &intake, &run, 0..orders, 16).await })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let poison = inject_poison(&env).await;
    let db = env.pool("order_intake").await;
    let restart = if broker_restart {
        // While orders flow, with a backlog in the queues: once a third of the orders are
        // final (or after two minutes at the latest).
        let until = Instant::now() + Duration::from_secs(120);
        let mut progress = order_progress(&db).await;
        while progress.1 < orders as i64 / 3 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            progress = order_progress(&db).await;
        }
        let restart = restart_broker().await;
        println!(
            "broker stop_app at {} ({} orders stored, {} final) and start_app done at {}",
            restart.stopped.format("%T"),
            progress.0,
            progress.1,
            restart.started.format("%T"),
        );
        Some(restart)
    } else {
        None
    };
    let placed = placing.await.expect("placing orders");
    let outcome = shop::outcome(&db, &placed, started + Duration::from_secs(timeout)).await;
    // Every `order.verified` (one per completed order) was delivered a second time: the
    // duplicator may be a moment behind the consumers, so give it a little while.
    let completed = outcome.with_status("completed");
    let not_duplicated = |duplicated: &disturbance::Duplicated| -> Vec<Uuid> {
        let seen = duplicated.lock().expect("the duplicator's record");
        completed
            .iter()
            .filter(|id| !seen.contains(id))
            .copied()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !not_duplicated(&duplicated).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    chaos.cancel();
    let _ = closer.await;
    let stopped = tokio::time::timeout(Duration::from_secs(30), duplicator).await;
    assert!(stopped.is_ok(), "the duplicator did not stop within 30 s");
    let diagnosis = if outcome.unintended.is_empty() {
        String::new()
    } else {
        diagnose(&env, outcome.stuck(5)).await
    };
    outcome.assert_as_intended(&logs, &diagnosis);
    let missed = not_duplicated(&duplicated);
    assert!(
        missed.is_empty(),
        "the order.verified of {} of {} completed orders was not delivered twice \
         (duplicator reconnects: {}): {:?}",
        missed.len(),
        completed.len(),
        figures.duplicator_reconnects.load(Ordering::Relaxed),
        &missed[..missed.len().min(10)]
    );

    // The replicas keep running undisturbed until the outboxes are drained and the checker
    // is satisfied (or 20 s have passed, and it reports what is wrong).
    assert_check_passes(&env, Duration::from_secs(20)).await;

    let letters = orderflow_json(&env, &["dlq", "list", "--json"]).await;
    let letters = letters.as_array().expect("a list");
    let mut reasons: BTreeMap<String, String> = BTreeMap::new();
    for l in letters {
        reasons.insert(
            l["id"].as_str().unwrap_or_default().to_owned(),
            l["reason"].as_str().unwrap_or_default().to_owned(),
        );
    }
    for (id, queue) in &poison {
        let reason = reasons
            .get(&id.to_string())
            .unwrap_or_else(|| panic!("injected message {id} ({queue}) is not dead-lettered"));
        // The simulated carrier is an outside party: it rejects what it cannot read and the
        // broker dead-letters it (reason `rejected`); our consumers name the parse error.
        let expected = if *queue == "carrier.sim" {
            "rejected"
        } else {
            "malformed envelope"
        };
        assert!(reason.starts_with(expected), "{id} ({queue}): {reason}");
    }
    stop.cancel();
    let _ = supervisor.await;

    let restart = match restart {
        Some(BrokerRestart { stopped, started }) => format!(
            "stopped {} started {} ({:.1}s down)",
            stopped.format("%T"),
            started.format("%T"),
            (started - stopped).as_seconds_f64()
        ),
        None => "no (ORDERFLOW_CHAOS_BROKER_RESTART=0)".into(),
    };
    println!(
        "chaos figures: orders={orders} kills={} restarts={} unexpected_exits={} closed_connections={} \
         broker_restart={restart} duplicated_verified={} of {} completed (copies={}, duplicator_reconnects={}) \
         poison={} dead_letters={} elapsed={:.0}s \
         result=every order final as intended, every order.verified delivered twice, check passed, \
         every poison message dead-lettered",
        figures.kills.load(Ordering::Relaxed),
        figures.restarts.load(Ordering::Relaxed),
        figures.exits.load(Ordering::Relaxed),
        figures.closed_connections.load(Ordering::Relaxed),
        completed.len(),
        completed.len(),
        figures.duplicates.load(Ordering::Relaxed),
        figures.duplicator_reconnects.load(Ordering::Relaxed),
        poison.len(),
        letters.len(),
        started.elapsed().as_secs_f64(),
    );
    println!("orders by status: {:?}", outcome.by_status());
    let _ = std::fs::remove_dir_all(&logs);
}

/// Where each of `stuck` stopped: intake's timeline, shipping's record and shipments, and the
/// dead letters that are not injected poison.
async fn diagnose(env: &TestEnv, stuck: &[Uuid]) -> String {
    let intake = env.pool("order_intake").await;
    let shipping = env.pool("shipping").await;
    let mut out = String::new();
    for id in stuck {
        let timeline: Vec<(String, String)> =
            sqlx::query_as("SELECT kind, producer FROM timeline WHERE order_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&intake)
                .await
                .unwrap_or_default();
        let record: Option<(String, Option<i32>)> = sqlx::query_as(
            "SELECT status, expected_shipments FROM shipping_orders WHERE order_id = $1",
        )
        .bind(id)
        .fetch_optional(&shipping)
        .await
        .unwrap_or_default();
        let shipments: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT shipment_id::text, warehouse, status FROM shipments WHERE order_id = $1",
        )
        .bind(id)
        .fetch_all(&shipping)
        .await
        .unwrap_or_default();
        out.push_str(&format!(
            "{id}: timeline {timeline:?}; shipping {record:?}; shipments {shipments:?}\n"
        ));
    }
    let letters = orderflow(env, &["dlq", "list", "--json"]).await;
    let letters: serde_json::Value =
        serde_json::from_slice(&letters.stdout).unwrap_or(serde_json::Value::Null);
    let real: Vec<String> = letters
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|l| {
                    !l["reason"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("malformed envelope")
                })
                .map(|l| format!("{} {} {}", l["original_queue"], l["kind"], l["reason"]))
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&format!("dead letters besides the poison: {real:?}\n"));
    out
}

/// How many orders intake has stored so far, and how many of them are final.
async fn order_progress(db: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status IN ('completed', 'rejected', 'cancelled')) \
         FROM orders",
    )
    .fetch_one(db)
    .await
    .unwrap_or((0, 0))
}
