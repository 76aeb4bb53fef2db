//! The ops console in headless Chromium against the whole system, started in-process as
//! `orderflow up` does: `tests/console/console.mjs` (playwright-core driving Debian's
//! `chromium`) logs in, finds an order placed through the API and watches it complete, cancels
//! another, replays a dead letter and records a stock receipt; this test prepares all that,
//! runs the script and then checks through the API that what the browser did really happened.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/console` (`.ci/run` and
//! `deploy/local/start.sh` see to them). Screenshots go to a temporary directory, or to
//! `ORDERFLOW_CONSOLE_SCREENSHOTS` (the README's come from `docs/console`).

mod system;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use orderflow_messages::{Envelope, Event, Exchange, order};
use orderflow_runtime::testing::{TestEnv, eventually};
use orderflow_runtime::{CancellationToken, Settings};
use serde_json::{Value, json};
use system::{System, call};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(60);
/// The browser run as a whole; each step inside has its own 30 s deadline.
const BROWSER_DEADLINE: Duration = Duration::from_secs(240);
const ADMIN: &str = "dev-admin-key";
const STAFF: &str = "dev-staff-key";
const SHOP: &str = "dev-shop-key";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A warehouse; MUG-BLUE below its reorder point (10 on hand, reorder at 20); LAMP-BRASS with
/// no stock at all, so its orders wait (backordered).
async fn seed_catalogue(verification: SocketAddr) {
    let product = |price: i64, backorder: bool| {
        json!({"name": "a product", "unit_price": price, "currency": "EUR",
            "tax_class": "standard", "weight_grams": 400, "allow_backorder": backorder,
            "reorder_point": 20, "reorder_quantity": 40})
    };
    system::seed_catalogue(
        verification,
        ADMIN,
        &[
            ("MUG-BLUE", product(1250, false)),
            ("LAMP-BRASS", product(8900, true)),
        ],
        &[("MUG-BLUE", 10)],
    )
    .await;
}

async fn place(intake: SocketAddr, reference: &str, sku: &str, unit_price: i64) -> String {
    let body = json!({
        "channel": "web",
        "external_reference": reference,
        "customer": {"email": "ann@example.com", "name": "Ann Example"},
        "currency": "EUR",
        "lines": [{"sku": sku, "quantity": 1, "unit_price": unit_price}],
        "shipping_address": {"name": "Ann Example", "line1": "Hauptstr. 1",
            "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "delivery": {"shipping_method": "standard"},
        "payment": {"method": "card", "token": "tok_visa"}
    });
    let (status, placed) = call(
        reqwest::Method::POST,
        format!("http://{intake}/v1/orders"),
        SHOP,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    placed["id"].as_str().expect("order id").to_owned()
}

async fn order_of(intake: SocketAddr, id: &str) -> Value {
    call(
        reqwest::Method::GET,
        format!("http://{intake}/v1/orders/{id}"),
        STAFF,
        None,
    )
    .await
    .1
}

async fn wait_for_status(intake: SocketAddr, id: &str, wanted: &str) -> Value {
    eventually(&format!("order {id} reaches {wanted}"), WAIT, || async {
        order_of(intake, id).await["status"] == wanted
    })
    .await;
    order_of(intake, id).await
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.to_owned()))
}

/// An `order.stalled` for `order` that intake's consumer gave up on, as it would after a
/// database outage outlasted the delivery limit. Returns the message id.
async fn dead_letter_for(env: &TestEnv, order: &Value) -> String {
    let id: uuid::Uuid = order["id"].as_str().expect("id").parse().expect("uuid");
    let stalled: order::Stalled = serde_json::from_value(json!({
        "status": order["status"], "since": order["updated_at"], "limit_seconds": 1
    }))
    .expect("an order.stalled payload");
    let envelope = Envelope::new("orderflow", id, stalled);
    let body = serde_json::to_value(&envelope).expect("json");
    dead_letter(
        env,
        &envelope.message_id.to_string(),
        order::Stalled::TYPE,
        &body,
    )
    .await;
    envelope.message_id.to_string()
}

/// Puts `body` into `order-intake.events.dead` as intake's consumer would have, with the reason
/// `database unavailable: …` and the route it first took (`kind` on the events exchange).
async fn dead_letter(env: &TestEnv, message_id: &str, kind: &str, body: &Value) {
    let names = env.names();
    let mut headers = FieldTable::default();
    for (key, value) in [
        (
            "x-orderflow-reason",
            "database unavailable: connection reset by peer",
        ),
        ("x-orderflow-queue", order_intake::EVENTS_QUEUE),
        ("x-orderflow-deliveries", "11"),
        ("x-orderflow-routing-key", kind),
        ("x-orderflow-exchange", &names.exchange(Exchange::Events)),
    ] {
        headers.insert(ShortString::from(key), text(value));
    }
    // Dead-lettered right after it happened.
    if let Some(at) = body["occurred_at"].as_str() {
        headers.insert(ShortString::from("x-orderflow-dead-lettered-at"), text(at));
    }
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    channel
        .basic_publish(
            names.exchange(Exchange::DeadLetters).as_str().into(),
            names.queue(order_intake::EVENTS_QUEUE).as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            &serde_json::to_vec(body).expect("json"),
            BasicProperties::default()
                .with_message_id(message_id.into())
                .with_type(kind.into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_headers(headers),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    let _ = connection.close(200, "done".into()).await;
}

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// What the browser run needs, each with how to get it.
fn browser_prerequisites() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get install -y chromium` (deploy/local/start.sh does it)"
    );
    assert!(
        project().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: `npm ci` in tests/console (deploy/local/start.sh does it)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_flow_finds_orders_cancels_replays_dead_letters_and_receives_stock() {
    browser_prerequisites();
    let env = TestEnv::new();
    // Backordered orders count as stalled after a second, so the board has some to highlight.
    let settings = env
        .settings
        .with("stalled.limits.backordered", 1)
        .expect("stalled settings");
    let system = System::start(&settings).await;
    seed_catalogue(system.verification).await;

    let done = place(system.intake, "console-done-1", "MUG-BLUE", 1250).await;
    let to_cancel = place(system.intake, "console-cancel-1", "LAMP-BRASS", 8900).await;
    let waiting = place(system.intake, "console-waiting-1", "LAMP-BRASS", 8900).await;
    wait_for_status(system.intake, &to_cancel, "backordered").await;
    let waiting_order = wait_for_status(system.intake, &waiting, "backordered").await;
    let letter = dead_letter_for(&env, &waiting_order).await;

    // Kept where asked; otherwise in a temporary directory, removed after a passing run (a
    // failing one names it, to look at what the browser saw).
    let kept = std::env::var("ORDERFLOW_CONSOLE_SCREENSHOTS").ok();
    let screenshots = kept
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("orderflow-console-{}", env.prefix)));
    let script = tokio::process::Command::new("node")
        .arg("console.mjs")
        .current_dir(project())
        .env("CONSOLE_URL", format!("http://{}/console", system.intake))
        .env("STAFF_KEY", STAFF)
        .env("ADMIN_KEY", ADMIN)
        .env("SHOP_KEY", SHOP)
        .env("DONE_REF", "console-done-1")
        .env("CANCEL_REF", "console-cancel-1")
        .env("STALLED_REF", "console-waiting-1")
        .env("DEAD_LETTER_ID", &letter)
        .env("SCREENSHOTS", &screenshots)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BROWSER_DEADLINE, script)
        .await
        .expect("the browser run finishes within its deadline")
        .expect("node runs (is it installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed (screenshots in {})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        screenshots.display()
    );
    for step in [
        "a shop key is refused with a message",
        "the flow board shows the stalled backordered orders",
        "the board's card leads to the orders in that status",
        "the order placed through the API is found and reaches completed",
        "an order is cancelled with a reason",
        "a dead letter is replayed after confirming",
        "the replayed event shows in the order's timeline",
        "a stock receipt is recorded from the low-stock list",
        "every control has a name and the keyboard reaches the sections",
        "the flow board fits a tablet",
        "no script errors and no CSP violations",
    ] {
        assert!(
            stdout.contains(&format!("ok: {step}")),
            "missing step `{step}`:\n{stdout}"
        );
    }

    // What the browser did, seen through the API.
    assert_eq!(order_of(system.intake, &done).await["status"], "completed");
    let cancelled = wait_for_status(system.intake, &to_cancel, "cancelled").await;
    assert!(
        cancelled["timeline"]
            .to_string()
            .contains("customer called: no longer needed"),
        "{cancelled}"
    );
    let timeline = order_of(system.intake, &waiting).await["timeline"].clone();
    let replayed: Vec<&Value> = timeline
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["message_id"] == letter.as_str())
        .collect();
    assert_eq!(replayed.len(), 1, "the replayed event, once: {timeline}");
    let (_, letters) = call(
        reqwest::Method::GET,
        format!("http://{}/v1/console/dead-letters", system.intake),
        STAFF,
        None,
    )
    .await;
    assert_eq!(letters["letters"], json!([]), "{letters}");
    let (_, stock) = call(
        reqwest::Method::GET,
        format!(
            "http://{}/v1/stock?sku=MUG-BLUE&warehouse=berlin",
            system.verification
        ),
        STAFF,
        None,
    )
    .await;
    // 10 received at the start, 1 shipped to the completed order, 25 received in the console.
    assert_eq!(stock["items"][0]["on_hand"], 34, "{stock}");
    system.stop().await;
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(&screenshots);
    }
}

/// Intake alone, its console pointed at a verification that is not there.
async fn intake_alone(
    settings: &Settings,
) -> (
    SocketAddr,
    CancellationToken,
    JoinHandle<anyhow::Result<()>>,
) {
    let settings = settings
        .with("console.verification_url", "http://127.0.0.1:9")
        .expect("console settings");
    let intake = order_intake::build(&settings).await.expect("order-intake");
    let addr = intake.local_addr();
    let stop = CancellationToken::new();
    let task = tokio::spawn(intake.run_until_stopped(stop.clone()));
    (addr, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_allows_only_its_own_scripts_and_its_api_needs_staff_and_names_bad_fields()
{
    let env = TestEnv::new();
    let (intake, stop, task) = intake_alone(&env.settings).await;
    let base = format!("http://{intake}");

    let page = reqwest::get(format!("{base}/console")).await.expect("page");
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe"),
        "{policy}"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains(r#"<script src="/console/app.js" defer></script>"#));
    assert_eq!(html.matches("<script").count(), 1, "no inline script");

    let flow = format!("{base}/v1/console/flow");
    let anonymous = reqwest::get(&flow).await.expect("flow");
    assert_eq!(anonymous.status(), 401);
    let (status, refused) = call(reqwest::Method::GET, flow.clone(), SHOP, None).await;
    assert_eq!(status, 403);
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`staff`")),
        "{refused}"
    );
    let (status, board) = call(reqwest::Method::GET, flow, STAFF, None).await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["by_status"].as_object().map(|m| m.len()), Some(12));
    assert_eq!(
        board["last_hour"]["reached"]["placed"]
            .as_array()
            .map(Vec::len),
        Some(60)
    );

    let (status, search) = call(
        reqwest::Method::GET,
        format!("{base}/v1/console/orders?q=%20"),
        STAFF,
        None,
    )
    .await;
    assert_eq!(
        (status, search["errors"][0]["field"].clone()),
        (422, json!("q")),
        "{search}"
    );

    let purge = format!("{base}/v1/console/dead-letters/purge");
    let (status, _) = call(
        reqwest::Method::POST,
        purge.clone(),
        STAFF,
        Some(json!({"queue": "x"})),
    )
    .await;
    assert_eq!(status, 403, "purging needs an admin key");
    let (status, wrong) = call(
        reqwest::Method::POST,
        purge,
        ADMIN,
        Some(json!({"queue": "orders.dead; rm -rf"})),
    )
    .await;
    assert_eq!(status, 422, "{wrong}");
    assert_eq!(wrong["errors"][0]["field"], "queue");
    assert_eq!(wrong["errors"][0]["rule"], "one_of");

    let (status, down) = call(
        reqwest::Method::GET,
        format!("{base}/v1/console/stock/low"),
        STAFF,
        None,
    )
    .await;
    assert_eq!(status, 502, "{down}");
    assert!(
        down["detail"]
            .as_str()
            .is_some_and(|d| d.contains("verification")),
        "{down}"
    );

    // The management API samples every few seconds: intake's consumer shows up within a deadline.
    let queues = format!("{base}/v1/console/queues");
    eventually(
        "intake's queue is listed with its consumer",
        WAIT,
        || async {
            let (status, body) = call(reqwest::Method::GET, queues.clone(), STAFF, None).await;
            status == 200
                && body["queues"].as_array().is_some_and(|qs| {
                    qs.iter().any(|q| {
                        q["name"] == order_intake::EVENTS_QUEUE
                            && q["consumers"].as_u64() >= Some(1)
                    })
                })
        },
    )
    .await;

    // A dead `order.placed` carries the card token; the console lists it, token masked.
    let letter = uuid::Uuid::now_v7().to_string();
    let placed = json!({"message_id": letter, "type": "order.placed",
        "payload": {"payment": {"method": "card", "token": "tok_visa_4242"}}});
    dead_letter(&env, &letter, "order.placed", &placed).await;
    let (_, letters) = call(
        reqwest::Method::GET,
        format!("{base}/v1/console/dead-letters"),
        STAFF,
        None,
    )
    .await;
    let listed = &letters["letters"][0];
    assert_eq!(listed["id"], letter.as_str(), "{letters}");
    assert!(
        listed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("database unavailable"))
    );
    let body = listed["body"].as_str().expect("the body");
    assert!(
        body.contains(r#""token": "***""#) && !body.contains("tok_visa_4242"),
        "{body}"
    );

    stop.cancel();
    task.await.expect("join").expect("clean stop");
}
