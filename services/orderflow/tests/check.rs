//! `orderflow check` and `orderflow stalled` against a real database and broker: a clean system
//! passes; an order lost between stages, stock that disagrees with its ledger and a stuck
//! outbox row are each named; an order waiting past its status's limit is listed and
//! announced with `order.stalled` once.

mod support;

use std::time::Duration;

use orderflow_messages::{Exchange, order};
use orderflow_runtime::testing::TestEnv;
use support::{declare_topology, orderflow, orderflow_json, stdout};
use uuid::Uuid;

async fn migrated() -> TestEnv {
    let env = TestEnv::new();
    let migrated = orderflow(&env, &["migrate"]).await;
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    declare_topology(&env).await;
    env
}

/// An accepted order that last moved an hour ago and now sits in `status`.
async fn order_stuck_in(env: &TestEnv, status: &str, progress: &str) -> Uuid {
    let id = Uuid::now_v7();
    let mut db = env.connect_db("order_intake").await;
    sqlx::query(
        "INSERT INTO orders (id, channel, status, progress, customer_email, customer_name, \
         currency, shipping_address, delivery, payment_method, created_at, updated_at) \
         VALUES ($1, 'web', $2, $3, 'a@example.com', 'A', 'EUR', '{}', '{}', 'card', \
         now() - interval '1 hour', now() - interval '1 hour')",
    )
    .bind(id)
    .bind(status)
    .bind(progress)
    .execute(&mut db)
    .await
    .expect("insert an order");
    id
}

fn finding<'a>(report: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no check {check:?} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_system_passes_and_each_breach_is_named() {
    let env = migrated().await;
    let clean = orderflow_json(&env, &["check", "--json"]).await;
    for f in clean["findings"].as_array().expect("findings") {
        assert_ne!(f["outcome"], "breached", "{f}");
    }

    let lost = order_stuck_in(&env, "verified", "verified").await;
    let mut db = env.connect_db("verification").await;
    for sql in [
        "INSERT INTO warehouses (code, name) VALUES ('berlin', 'Berlin')",
        "INSERT INTO products (sku, name, unit_price, currency, tax_class, weight_grams) \
         VALUES ('MUG', 'Mug', 1250, 'EUR', 'standard', 300)",
        // Stock that no ledger entry explains.
        "INSERT INTO stock (warehouse, sku, on_hand, reserved) VALUES ('berlin', 'MUG', 5, 0)",
    ] {
        sqlx::query(sql).execute(&mut db).await.expect(sql);
    }
    let mut billing = env.connect_db("billing").await;
    sqlx::query(
        "INSERT INTO outbox (message_id, exchange, routing_key, kind, body, created_at) \
         VALUES ($1, 'orderflow.events', 'order.paid', 'order.paid', '\\x7b7d', now() - interval '1 hour')",
    )
    .bind(Uuid::now_v7())
    .execute(&mut billing)
    .await
    .expect("an old outbox row");

    let output = orderflow(&env, &["check", "--json"]).await;
    assert!(!output.status.success(), "a breach exits non-zero");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let stuck = finding(&report, "every accepted order is final or waiting");
    assert_eq!(stuck["outcome"], "breached");
    assert!(
        stuck["details"][0]
            .as_str()
            .is_some_and(|d| d.contains(&lost.to_string()))
    );
    let stock = finding(&report, "stock on hand and reserved equal the ledger");
    assert_eq!(stock["outcome"], "breached");
    assert!(
        stock["details"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("berlin/MUG"))
    );
    assert_eq!(
        finding(&report, "no outbox row is stuck")["outcome"],
        "breached"
    );
    assert_eq!(
        finding(&report, "no order has two invoices")["outcome"],
        "passed"
    );

    let readable = stdout(&orderflow(&env, &["check"]).await);
    assert!(readable.contains("BREACHED"), "{readable}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_waiting_past_its_limit_is_listed_and_announced_once() {
    let env = migrated().await;
    let waiting = order_stuck_in(&env, "packed", "packed").await;
    let recent = Uuid::now_v7();
    let mut db = env.connect_db("order_intake").await;
    sqlx::query(
        "INSERT INTO orders (id, channel, status, progress, customer_email, customer_name, \
         currency, shipping_address, delivery, payment_method) \
         VALUES ($1, 'web', 'placed', 'placed', 'b@example.com', 'B', 'EUR', '{}', '{}', 'card')",
    )
    .bind(recent)
    .execute(&mut db)
    .await
    .expect("a recent order");

    let listed = orderflow_json(&env, &["stalled", "--json"]).await;
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["order_id"], waiting.to_string());
    assert_eq!(listed[0]["status"], "packed");
    assert_eq!(listed[0]["waiting_for"], "shipping (carrier handover)");

    let mut probe = env.probe(&[(Exchange::Events, "order.stalled")]).await;
    let first = orderflow(&env, &["stalled", "--publish"]).await;
    assert!(
        stdout(&first).contains("published order.stalled for 1 order(s)"),
        "{}{}",
        stdout(&first),
        String::from_utf8_lossy(&first.stderr)
    );
    let stalled = probe
        .next_of::<order::Stalled>(Duration::from_secs(10))
        .await;
    assert_eq!(stalled.order_id, waiting);
    assert_eq!(stalled.payload.status, "packed");
    assert_eq!(stalled.payload.limit_seconds, 1800);

    let again = orderflow(&env, &["stalled", "--publish"]).await;
    assert!(
        stdout(&again).contains("published order.stalled for 0 order(s)"),
        "{}",
        stdout(&again)
    );

    // A tighter limit from the settings makes the recent order stalled as well.
    let mut tight = support::command(&env, &["stalled", "--json"]);
    tight.env("ORDERFLOW_STALLED__DEFAULT_SECS", "0");
    tight.env("ORDERFLOW_STALLED__LIMITS__PLACED", "0");
    let tight = tokio::task::spawn_blocking(move || tight.output())
        .await
        .expect("join")
        .expect("run");
    let tight: serde_json::Value = serde_json::from_slice(&tight.stdout).expect("JSON");
    assert_eq!(tight.as_array().map(Vec::len), Some(2), "{tight}");
}

/// One sample of `metrics` (Prometheus text) whose name and labels contain every `part`.
fn sample(metrics: &str, parts: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_exports_stalled_orders_per_status_as_a_gauge_and_follows_them() {
    let env = migrated().await;
    let first = order_stuck_in(&env, "packed", "packed").await;
    order_stuck_in(&env, "packed", "packed").await;
    order_stuck_in(&env, "verified", "verified").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let mut watcher = tokio::process::Command::from(support::command(
        &env,
        &["stalled", "--watch", "1", "--listen", &listen],
    ))
    .kill_on_drop(true)
    .spawn()
    .expect("start the watcher");

    let client = reqwest::Client::new();
    let url = format!("http://{listen}/metrics");
    let scrape = || async {
        match client.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    let packed = [
        "orderflow_orders_stalled{",
        "status=\"packed\"",
        "stage=\"shipping\"",
    ];
    let verified = ["orderflow_orders_stalled{", "status=\"verified\""];
    let placed = ["orderflow_orders_stalled{", "status=\"placed\""];
    orderflow_runtime::testing::eventually(
        "two packed and one verified order reported stalled",
        Duration::from_secs(20),
        || async {
            let m = scrape().await;
            sample(&m, &packed) == Some(2.0)
                && sample(&m, &verified) == Some(1.0)
                && sample(&m, &placed) == Some(0.0)
        },
    )
    .await;

    // The order moves on: the gauge follows at the next look.
    let mut db = env.connect_db("order_intake").await;
    sqlx::query("UPDATE orders SET status = 'shipped', progress = 'shipped', updated_at = now() WHERE id = $1")
        .bind(first)
        .execute(&mut db)
        .await
        .expect("move the order on");
    orderflow_runtime::testing::eventually(
        "one packed order left stalled",
        Duration::from_secs(20),
        || async { sample(&scrape().await, &packed) == Some(1.0) },
    )
    .await;
    let checked = sample(
        &scrape().await,
        &["orderflow_stalled_checked_timestamp_seconds"],
    );
    assert!(checked.is_some_and(|t| t > 0.0), "{checked:?}");

    // SIGTERM stops it cleanly.
    let pid = watcher.id().expect("a pid").to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(10), watcher.wait())
        .await
        .expect("the watcher stops within 10 s")
        .expect("its status");
    assert!(status.success(), "{status}");
}
