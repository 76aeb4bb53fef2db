//! One order through all five services and the simulated carrier, over the real RabbitMQ and
//! PostgreSQL, through the services' own `build`/`run` functions — what `orderflow up` runs.

mod system;

use std::net::SocketAddr;
use std::time::Duration;

use orderflow_runtime::testing::{TestEnv, eventually};
use orderflow_runtime::{CancellationToken, Settings};
use serde_json::{Value, json};
use system::{System, call};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(60);
const ADMIN: &str = "dev-admin-key";
const SHOP: &str = "dev-shop-key";

async fn seed_catalogue(verification: SocketAddr) {
    let product = |price: i64, tax_class: &str| {
        json!({"name": "a product", "unit_price": price, "currency": "EUR",
            "tax_class": tax_class, "weight_grams": 400})
    };
    system::seed_catalogue(
        verification,
        ADMIN,
        &[
            ("MUG-BLUE", product(1250, "standard")),
            ("TEA-EARLGREY", product(690, "reduced")),
        ],
        &[("MUG-BLUE", 10), ("TEA-EARLGREY", 10)],
    )
    .await;
}

fn order(external_reference: &str, sku_override: Option<&str>) -> Value {
    json!({
        "channel": "web",
        "external_reference": external_reference,
        "customer": {"email": "ann@example.com", "name": "Ann Example"},
        "currency": "EUR",
        "lines": [
            {"sku": sku_override.unwrap_or("MUG-BLUE"), "quantity": 2, "unit_price": 1250},
            {"sku": "TEA-EARLGREY", "quantity": 1, "unit_price": 690}
        ],
        "shipping_address": {"name": "Ann Example", "line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "delivery": {"shipping_method": "standard"},
        "payment": {"method": "card", "token": "tok_visa"}
    })
}

async fn wait_for_status(intake: SocketAddr, id: &str, wanted: &str) -> Value {
    let url = format!("http://{intake}/v1/orders/{id}");
    eventually(&format!("order {id} reaches {wanted}"), WAIT, || {
        let url = url.clone();
        async move {
            let (_, body) = call(reqwest::Method::GET, url, SHOP, None).await;
            body["status"] == wanted
        }
    })
    .await;
    call(reqwest::Method::GET, url, SHOP, None).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_travels_through_every_stage_to_completed() {
    let env = TestEnv::new();
    let system = System::start(&env.settings).await;
    seed_catalogue(system.verification).await;

    let (status, placed) = call(
        reqwest::Method::POST,
        format!("http://{}/v1/orders", system.intake),
        SHOP,
        Some(order("web-1", None)),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    let id = placed["id"].as_str().expect("order id").to_owned();

    let done = wait_for_status(system.intake, &id, "completed").await;
    let timeline = done["timeline"].as_array().expect("timeline");
    let producers: std::collections::BTreeSet<&str> = timeline
        .iter()
        .filter_map(|entry| entry["producer"].as_str())
        .collect();
    for stage in [
        "order-intake",
        "verification",
        "fulfilment",
        "shipping",
        "billing",
    ] {
        assert!(
            producers.contains(stage),
            "no timeline entry from {stage}: {timeline:#?}"
        );
    }
    let types: Vec<&str> = timeline
        .iter()
        .filter_map(|entry| entry["type"].as_str())
        .collect();
    for event in [
        "order.placed",
        "order.verified",
        "order.packed",
        "order.shipped",
        "order.delivered",
        "order.invoiced",
        "order.paid",
        "order.completed",
    ] {
        assert_eq!(
            types.iter().filter(|t| **t == event).count(),
            1,
            "{event} once in {types:?}"
        );
    }
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_for_an_unknown_product_is_rejected_with_the_reason() {
    let env = TestEnv::new();
    let system = System::start(&env.settings).await;
    seed_catalogue(system.verification).await;

    let (status, placed) = call(
        reqwest::Method::POST,
        format!("http://{}/v1/orders", system.intake),
        SHOP,
        Some(order("web-2", Some("NO-SUCH-SKU"))),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    let id = placed["id"].as_str().expect("order id").to_owned();
    let rejected = wait_for_status(system.intake, &id, "rejected").await;
    let text = rejected["timeline"].to_string();
    assert!(text.contains("unknown_sku"), "the reason is shown: {text}");
    system.stop().await;
}

/// One stage of the system, started on its own so a test can hold it (stop it) and let it go
/// (start it again) while the others run on.
struct Stage {
    addr: Option<SocketAddr>,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Stage {
    async fn start(name: &str, settings: &Settings) -> Stage {
        let stop = CancellationToken::new();
        let bound = match name {
            "order-intake" => order_intake::build(settings).await,
            "verification" => verification::build(settings).await,
            "fulfilment" => fulfilment::build(settings).await,
            "shipping" => shipping::build(settings).await,
            "billing" => billing::build(settings).await,
            "carrier-sim" => {
                let task = tokio::spawn(shipping::carrier_sim::run(settings.clone(), stop.clone()));
                return Stage {
                    addr: None,
                    stop,
                    task,
                };
            }
            other => panic!("no stage {other}"),
        }
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let addr = Some(bound.local_addr());
        let task = tokio::spawn(bound.run_until_stopped(stop.clone()));
        Stage { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("join").expect("clean stop");
    }

    fn addr(&self) -> SocketAddr {
        self.addr.expect("an HTTP stage")
    }
}

const STAGES: [&str; 6] = [
    "order-intake",
    "verification",
    "fulfilment",
    "shipping",
    "billing",
    "carrier-sim",
];

/// Places an order while `held` is stopped, so it waits at `status`; cancels it there; lets the
/// held stage go; and checks that nothing of the order is left anywhere: the order is
/// cancelled, no stock is reserved or missing (unpacked goods are back on the shelf), no
/// shipment is on its way, and no money is held or taken.
async fn cancel_while_waiting_at(status: &str, held: &str) {
    let env = TestEnv::new();
    let mut stages: Vec<(&str, Stage)> = Vec::new();
    // Every stage declares its queues once, so messages wait for a held stage.
    for name in STAGES {
        stages.push((name, Stage::start(name, &env.settings).await));
    }
    let addr = |stages: &[(&str, Stage)], name: &str| {
        stages
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.addr())
            .expect("stage")
    };
    seed_catalogue(addr(&stages, "verification")).await;
    let position = stages.iter().position(|(n, _)| *n == held).expect("held");
    stages.remove(position).1.stop().await;

    let intake = addr(&stages, "order-intake");
    let (code, placed) = call(
        reqwest::Method::POST,
        format!("http://{intake}/v1/orders"),
        SHOP,
        Some(order(&format!("web-cancel-{status}"), None)),
    )
    .await;
    assert_eq!(code, 201, "{placed}");
    let id = placed["id"].as_str().expect("order id").to_owned();
    wait_for_status(intake, &id, status).await;

    let (code, accepted) = call(
        reqwest::Method::POST,
        format!("http://{intake}/v1/orders/{id}/cancel"),
        SHOP,
        Some(json!({"reason": "the customer changed their mind"})),
    )
    .await;
    assert_eq!(code, 202, "{accepted}");
    let cancelled = wait_for_status(intake, &id, "cancelled").await;
    let types = cancelled["timeline"].to_string();
    assert!(types.contains("order.cancel_requested"), "{types}");
    stages.push((held, Stage::start(held, &env.settings).await));

    let verification = addr(&stages, "verification");
    eventually("no stock reserved, none missing", WAIT, || async move {
        let (_, stock) = call(
            reqwest::Method::GET,
            format!("http://{verification}/v1/stock"),
            ADMIN,
            None,
        )
        .await;
        stock["items"].as_array().is_some_and(|items| {
            !items.is_empty()
                && items
                    .iter()
                    .all(|i| i["reserved"] == 0 && i["on_hand"] == 10)
        })
    })
    .await;
    let billing = addr(&stages, "billing");
    let payments_url = format!("http://{billing}/v1/payments?order_id={id}");
    eventually("no money held or taken", WAIT, || {
        let url = payments_url.clone();
        async move {
            let (_, list) = call(reqwest::Method::GET, url, ADMIN, None).await;
            list["payments"].as_array().is_some_and(|payments| {
                payments.iter().all(|p| {
                    let status = p["status"].as_str().unwrap_or("");
                    let held_or_taken = matches!(
                        status,
                        "authorization_pending" | "authorized" | "capture_pending" | "captured"
                    );
                    !held_or_taken || p["refunded"] == p["amount"]
                })
            })
        }
    })
    .await;
    let shipping = addr(&stages, "shipping");
    let shipments_url = format!("http://{shipping}/v1/shipments?order_id={id}");
    eventually("no shipment on its way", WAIT, || {
        let url = shipments_url.clone();
        async move {
            let (_, list) = call(reqwest::Method::GET, url, ADMIN, None).await;
            list["shipments"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["status"] == "cancelled"))
        }
    })
    .await;
    let (_, order) = call(
        reqwest::Method::GET,
        format!("http://{intake}/v1/orders/{id}"),
        SHOP,
        None,
    )
    .await;
    assert_eq!(order["status"], "cancelled", "{order}");
    for (_, stage) in stages {
        stage.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_before_verification_leaves_no_reservation_and_no_payment() {
    cancel_while_waiting_at("placed", "verification").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_after_verification_releases_its_stock_and_voids_its_payment() {
    cancel_while_waiting_at("verified", "fulfilment").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_once_packed_is_unpacked_and_leaves_no_stock_or_money_behind() {
    cancel_while_waiting_at("packed", "carrier-sim").await;
}
