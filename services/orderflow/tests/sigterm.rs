//! Shutdown under load: every stage runs as two processes (`orderflow run <stage>`) with the
//! simulated carrier, and while a shop's orders flow each process in turn gets SIGTERM. Each
//! must exit with status 0 within 15 s (finishing its batch in hand and flushing its outbox)
//! and is started again; afterwards every order ended as intended, `orderflow check` passes
//! and nothing was dead-lettered — a graceful stop loses nothing and breaks nothing.

mod support;

#[path = "support/replicas.rs"]
mod replicas;
#[path = "support/shop.rs"]
mod shop;

use std::time::{Duration, Instant};

use replicas::System;
use support::{assert_check_passes, orderflow_json};
use uuid::Uuid;

const ORDERS: usize = 600;
const EXIT_LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_stops_on_sigterm_under_load_within_15_s_and_loses_nothing() {
    let started = Instant::now();
    // Each step of a stop in the log, should one take too long.
    let System {
        env,
        logs,
        replicas: mut all,
        ports,
        client,
    } = System::start("sigterm", 2, Some("warn,orderflow_runtime::service=info")).await;
    let intake = format!("http://127.0.0.1:{}", ports["order-intake"]);
    let run = format!("sigterm-{}", Uuid::now_v7().simple());
    let placing = {
        let (client, intake, run) = (client.clone(), intake.clone(), run.clone());
        tokio::spawn(async move { shop::place_all(&client, &intake, &run, 0..ORDERS, 8).await })
    };

    // One process after another, while orders are placed and handled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut exits: Vec<(String, Duration)> = Vec::new();
    let mut failures = Vec::new();
    for (i, r) in all.iter_mut().enumerate() {
        let name = format!("{}#{i}", r.stage());
        match r.terminate(EXIT_LIMIT).await {
            Some((status, took)) if status.success() => exits.push((name, took)),
            Some((status, took)) => failures.push(format!(
                "{name} exited with {status} after {took:?}:\n{}",
                r.log()
            )),
            None => failures.push(format!(
                "{name} did not exit within {EXIT_LIMIT:?}:\n{}",
                r.log()
            )),
        }
        r.start();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    let placed = placing.await.expect("placing orders");
    let db = env.pool("order_intake").await;
    shop::assert_final_as_intended(&db, &placed, Duration::from_secs(180), &logs).await;
    assert_check_passes(&env, Duration::from_secs(20)).await;
    let letters = orderflow_json(&env, &["dlq", "list", "--json"]).await;
    assert_eq!(
        letters.as_array().map(Vec::len),
        Some(0),
        "a graceful stop dead-letters nothing: {letters}"
    );
    for r in &mut all {
        r.kill().await;
    }

    let slowest = exits.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let mean = exits.iter().map(|(_, d)| d.as_secs_f64()).sum::<f64>() / exits.len() as f64;
    println!(
        "sigterm figures: orders={ORDERS} processes_stopped={} exit_status=0 mean_exit={mean:.2}s \
         slowest_exit={:.2}s limit={}s elapsed={:.0}s result=every order final as intended, \
         check passed, no dead letters",
        exits.len(),
        slowest.as_secs_f64(),
        EXIT_LIMIT.as_secs(),
        started.elapsed().as_secs_f64()
    );
    for (name, took) in &exits {
        println!("  {name:<16} {:.2}s", took.as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&logs);
}
