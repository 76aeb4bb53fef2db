//! Hostile input: every stage runs as its own process (`orderflow run <stage>`) with the
//! simulated carrier, and while a shop's orders flow, every consumer queue is fed malformed
//! messages and every HTTP operation of the five services malformed requests, both from a
//! seeded generator (`ORDERFLOW_HOSTILE_SEED` replays a run; the seed is printed). Afterwards
//! every hostile message is in its queue's dead-letter queue with a reason, no request got a
//! 5xx, no process exited or panicked, and every order ended as intended.

mod support;

#[path = "support/hostile_messages.rs"]
mod hostile_messages;
#[path = "support/hostile_requests.rs"]
mod hostile_requests;
#[path = "support/replicas.rs"]
mod replicas;
#[path = "support/shop.rs"]
mod shop;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use replicas::System;
use uuid::Uuid;

const ORDERS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_are_dead_lettered_and_hostile_requests_refused_while_orders_flow() {
    let seed: u64 = std::env::var("ORDERFLOW_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("hostile input seed: {seed} (ORDERFLOW_HOSTILE_SEED={seed} replays it)");
    let mut dice = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let System {
        env,
        logs,
        replicas: mut all,
        ports,
        client,
    } = System::start("hostile", 1, None).await;
    let intake = format!("http://127.0.0.1:{}", ports["order-intake"]);
    let run = Uuid::now_v7().simple().to_string();
    let placing = {
        let (client, intake, run) = (client.clone(), intake.clone(), format!("hostile-{run}"));
        tokio::spawn(async move { shop::place_all(&client, &intake, &run, 0..ORDERS, 4).await })
    };

    // Three waves of hostile messages, the HTTP attack between them, while orders are placed.
    let mut hostile = hostile_messages::inject(&env, &mut dice, 6, true).await;
    let (requests, failures) = hostile_requests::attack(&ports, &mut dice, 2).await;
    hostile.extend(hostile_messages::inject(&env, &mut dice, 10, false).await);
    let placed = placing.await.expect("placing orders");
    hostile.extend(hostile_messages::inject(&env, &mut dice, 6, false).await);

    // Every order ends as intended.
    let db = env.pool("order_intake").await;
    shop::assert_final_as_intended(&db, &placed, Duration::from_secs(180), &logs).await;

    // Every hostile message is dead-lettered with a reason: ours name what is wrong; the
    // simulated carrier, an outside party, rejects and the broker says so.
    let mut letters: BTreeMap<String, String> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        letters.extend(hostile_messages::dead_letters(&env).await);
        let missing = hostile
            .iter()
            .filter(|h| !letters.contains_key(&h.id.to_string()))
            .count();
        if missing == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut wrong = Vec::new();
    let mut reasons: BTreeMap<&str, String> = BTreeMap::new();
    for h in &hostile {
        match letters.get(&h.id.to_string()) {
            None => wrong.push(format!(
                "{} ({}, {} bytes): not dead-lettered",
                h.queue, h.kind, h.bytes
            )),
            Some(reason) => {
                let expected_ours = h.queue != "carrier.sim";
                let ours = !reason.starts_with("broker:");
                if reason.is_empty() || ours != expected_ours {
                    wrong.push(format!("{} ({}): reason {reason:?}", h.queue, h.kind));
                }
                reasons.entry(h.kind).or_insert_with(|| reason.clone());
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} hostile messages (seed {seed}):\n{}",
        wrong.len(),
        hostile.len(),
        wrong.join("\n")
    );

    assert!(
        failures.is_empty(),
        "{} of {requests} malformed requests got a server error (seed {seed}):\n{}",
        failures.len(),
        failures.join("\n")
    );

    // No process exited or panicked.
    for r in &mut all {
        assert!(
            r.exited().is_none(),
            "{} exited: {:?}\n{}",
            r.stage(),
            r.exited(),
            r.log()
        );
        assert!(
            !r.log().contains("panicked"),
            "{} panicked:\n{}",
            r.stage(),
            r.log()
        );
    }
    for r in &mut all {
        r.kill().await;
    }

    let huge = hostile
        .iter()
        .filter(|h| h.bytes >= 5 * 1024 * 1024)
        .count();
    println!(
        "hostile figures: seed={seed} orders={ORDERS} hostile_messages={} (of them {huge} of 5 MB) \
         queues={} dead_lettered={} malformed_requests={requests} server_errors=0 exits=0 \
         elapsed={:.0}s",
        hostile.len(),
        hostile_messages::QUEUES.len(),
        hostile.len(),
        started.elapsed().as_secs_f64()
    );
    for (kind, reason) in reasons {
        let reason: String = reason.chars().take(120).collect();
        println!("  {kind:<34} {reason}");
    }
    // The carriers the request suite registered (its own and those of mutated paths) were
    // declared by a replica, not by this process, so the environment's clean-up does not know
    // their queues: remove every carrier queue under the prefix here.
    let carriers = env.names().queue("carrier.");
    let listed = std::process::Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "--no-table-headers", "name"])
        .output()
        .expect("rabbitmqctl list_queues");
    let broker = env.connect_broker().await;
    if let Ok(channel) = broker.create_channel().await {
        for queue in String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::trim)
            .filter(|q| q.starts_with(&carriers))
        {
            let _ = channel.queue_delete(queue.into(), Default::default()).await;
        }
    }
    let _ = std::fs::remove_dir_all(&logs);
}
