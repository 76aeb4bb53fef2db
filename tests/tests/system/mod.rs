//! The whole system in one test process, started through the services' own `build` functions
//! as `orderflow up` does, and a small client for their HTTP APIs.

use std::net::SocketAddr;

use orderflow_runtime::{CancellationToken, Settings};
use serde_json::Value;
use tokio::task::JoinHandle;

pub struct System {
    pub intake: SocketAddr,
    pub verification: SocketAddr,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl System {
    /// Every stage and the simulated carrier. Verification starts first, so intake's console
    /// can be pointed at it.
    pub async fn start(settings: &Settings) -> System {
        let stop = CancellationToken::new();
        let verification = verification::build(settings).await.expect("verification");
        let verification_addr = verification.local_addr();
        let intake_settings = settings
            .with(
                "console.verification_url",
                format!("http://{verification_addr}"),
            )
            .expect("console settings");
        let intake = order_intake::build(&intake_settings)
            .await
            .expect("order-intake");
        let intake_addr = intake.local_addr();
        let fulfilment = fulfilment::build(settings).await.expect("fulfilment");
        let shipping = shipping::build(settings).await.expect("shipping");
        let billing = billing::build(settings).await.expect("billing");
        let mut tasks = Vec::new();
        for service in [intake, verification, fulfilment, shipping, billing] {
            tasks.push(tokio::spawn(service.run_until_stopped(stop.clone())));
        }
        tasks.push(tokio::spawn(shipping::carrier_sim::run(
            settings.clone(),
            stop.clone(),
        )));
        System {
            intake: intake_addr,
            verification: verification_addr,
            stop,
            tasks,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.await.expect("join").expect("clean stop");
        }
    }
}

/// One API call with a key; the status and the JSON body (`null` if there is none).
pub async fn call(
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Warehouse `berlin`, `products` (SKU and the rest of its body), and `stock` received there.
pub async fn seed_catalogue(
    verification: SocketAddr,
    admin_key: &str,
    products: &[(&str, Value)],
    stock: &[(&str, i64)],
) {
    let base = format!("http://{verification}/v1");
    let (status, body) = call(
        reqwest::Method::PUT,
        format!("{base}/warehouses/berlin"),
        admin_key,
        Some(serde_json::json!({"name": "Berlin"})),
    )
    .await;
    assert!(status < 300, "warehouse: {status} {body}");
    for (sku, product) in products {
        let (status, body) = call(
            reqwest::Method::PUT,
            format!("{base}/products/{sku}"),
            admin_key,
            Some(product.clone()),
        )
        .await;
        assert!(status < 300, "product {sku}: {status} {body}");
    }
    let lines: Vec<Value> = stock
        .iter()
        .map(|(sku, quantity)| serde_json::json!({"sku": sku, "quantity": quantity}))
        .collect();
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{base}/warehouses/berlin/receipts"),
        admin_key,
        Some(serde_json::json!({ "lines": lines })),
    )
    .await;
    assert!(status < 300, "receipt: {status} {body}");
}
