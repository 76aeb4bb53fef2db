//! The chaos suite: every stage as two separate processes (`orderflow run <stage>`) and the
//! simulated carrier, orders placed over intake's HTTP API (paid by card, one in 50 for an
//! unknown SKU),
//! while replicas are killed with SIGKILL and restarted, the broker closes their connections,
//! every `order.verified` is delivered twice and malformed messages are injected into every
//! queue. Afterwards every order ended as intended, `orderflow check` passes and every injected
//! message is in a dead-letter queue with its reason.
//!
//! `ORDERFLOW_CHAOS_ORDERS` sets the number of orders (default 2000, which a debug build on two
//! busy cores finishes in about three minutes), `ORDERFLOW_CHAOS_TIMEOUT_SECS` the time from the
//! start by which every order must be final (default 210; the whole test stays under four). Stopping and starting the
//! whole broker disturbs everyone else using it, so that variant is `#[ignore]`d and also needs
//! `ORDERFLOW_CHAOS_BROKER_RESTART=1`.

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

use disturbance::{close_connections, duplicate_verified, inject_poison, restart_broker};
use orderflow_runtime::CancellationToken;
use orderflow_runtime::testing::TestEnv;
use replicas::{Figures, System, supervise};
use support::{orderflow, orderflow_json};
use uuid::Uuid;

async fn chaos(broker_restart: bool) {
    let started = Instant::now();
    let orders: usize = std::env::var("ORDERFLOW_CHAOS_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let timeout: u64 = std::env::var("ORDERFLOW_CHAOS_TIMEOUT_SECS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(210);
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
    let duplicator = duplicate_verified(&env, chaos.clone(), figures.clone()).await;
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
    if broker_restart {
        tokio::time::sleep(Duration::from_secs(10)).await;
        restart_broker().await;
    }
    let placed = placing.await.expect("placing orders");
    let intended = shop::intended(&placed);
    let ids: Vec<Uuid> = intended.keys().copied().collect();
    let db = env.pool("order_intake").await;
    let statuses = shop::wait_until_final(&db, &ids, started + Duration::from_secs(timeout)).await;
    chaos.cancel();
    let _ = closer.await;
    let _ = duplicator.await;
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for (_, status) in &statuses {
        *by_status.entry(status.clone()).or_default() += 1;
    }
    let unintended = shop::unintended(&intended, &statuses);
    let diagnosis = if unintended.is_empty() {
        String::new()
    } else {
        let stuck: Vec<Uuid> = statuses
            .iter()
            .filter(|(id, s)| intended.get(id) != Some(&s.as_str()))
            .map(|(id, _)| *id)
            .take(5)
            .collect();
        diagnose(&env, &stuck).await
    };
    assert_eq!(statuses.len(), orders, "every placed order is stored");
    assert!(
        unintended.is_empty(),
        "{} of {orders} orders did not end as intended within {timeout} s ({by_status:?}; logs in {}): {:?}\n{diagnosis}",
        unintended.len(),
        logs.display(),
        &unintended[..unintended.len().min(10)]
    );

    // The replicas keep running undisturbed until the outboxes are drained and the checker
    // is satisfied (or 20 s have passed, and it reports what is wrong).
    let deadline = Instant::now() + Duration::from_secs(20);
    let check = loop {
        let check = orderflow(
            &env,
            &[
                "check",
                "--json",
                "--in-flight-secs",
                "0",
                "--outbox-secs",
                "0",
            ],
        )
        .await;
        if check.status.success() || Instant::now() > deadline {
            break check;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let report = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success(),
        "orderflow check failed:\n{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );

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

    println!(
        "chaos figures: orders={orders} kills={} restarts={} unexpected_exits={} closed_connections={} \
         duplicates={} poison={} dead_letters={} broker_restart={broker_restart} elapsed={:.0}s \
         result=every order final as intended, check passed, every poison message dead-lettered",
        figures.kills.load(Ordering::Relaxed),
        figures.restarts.load(Ordering::Relaxed),
        figures.exits.load(Ordering::Relaxed),
        figures.closed_connections.load(Ordering::Relaxed),
        figures.duplicates.load(Ordering::Relaxed),
        poison.len(),
        letters.len(),
        started.elapsed().as_secs_f64(),
    );
    println!("orders by status: {by_status:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_killed_replicas_closed_connections_duplicates_and_poison() {
    chaos(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops and starts the whole broker; also needs ORDERFLOW_CHAOS_BROKER_RESTART=1"]
async fn orders_survive_a_broker_restart_too() {
    if std::env::var("ORDERFLOW_CHAOS_BROKER_RESTART").as_deref() != Ok("1") {
        eprintln!("skipped: set ORDERFLOW_CHAOS_BROKER_RESTART=1 to stop and start the broker");
        return;
    }
    chaos(true).await;
}
