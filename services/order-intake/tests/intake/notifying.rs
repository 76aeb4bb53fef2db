//! Notifications of status changes: the log sink, and shops' signed webhooks with retries.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use orderflow_runtime::testing::eventually;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ACME, App, GLOBEX, STAFF, WAIT, verified_order_of};

/// What a shop's endpoint received: each call's signature header and body. The first call
/// fails, so the worker has to retry.
#[derive(Clone, Default)]
struct Endpoint {
    calls: Arc<Mutex<Vec<Call>>>,
}

/// The signature header and the body of one call.
type Call = (String, Vec<u8>);

async fn receive(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-orderflow-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut calls = endpoint.calls.lock().expect("lock");
    calls.push((signature, body.to_vec()));
    if calls.len() == 1 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn serve(endpoint: Endpoint) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(endpoint);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hooks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shops_webhook_hears_its_orders_status_changes_signed_and_retried() {
    let app = App::spawn_with_shops_and(&[
        ("notification_first_backoff_ms", 50),
        ("notification_poll_ms", 20),
    ])
    .await;
    let endpoint = Endpoint::default();
    let url = serve(endpoint.clone()).await;

    let (status, problem) = app
        .subscribe_webhook(ACME, "http://example.com/x", "acme-webhook-secret-0001")
        .await;
    assert_eq!(status, 422, "plain http only to localhost: {problem}");
    assert_eq!(
        (
            &problem["errors"][0]["field"],
            &problem["errors"][0]["rule"]
        ),
        (&json!("url"), &json!("https"))
    );
    let secret = "acme-webhook-secret-0001";
    let (status, hook) = app.subscribe_webhook(ACME, &url, secret).await;
    assert_eq!(status, 201, "{hook}");
    let (_, theirs) = app.get("/v1/webhooks", GLOBEX).await;
    assert_eq!(theirs["webhooks"], json!([]), "another shop sees none");

    let id = verified_order_of(&app, ACME, "acme-hooked").await;

    eventually(
        "the webhook is delivered on the second attempt",
        WAIT,
        || async { endpoint.calls.lock().expect("lock").len() >= 2 },
    )
    .await;
    let (signature, body) = endpoint.calls.lock().expect("lock")[1].clone();
    assert_eq!(
        Some(signature),
        order_intake::delivery::signature(secret, &body),
        "signed with the subscription's secret"
    );
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["order_id"], id.to_string());
    assert_eq!(body["status"], "verified");

    let log_path = format!("/v1/orders/{id}/notifications");
    eventually(
        "the delivery log shows both sinks delivered",
        WAIT,
        || async {
            let (_, log) = app.get(&log_path, ACME).await;
            log["deliveries"]
                .as_array()
                .is_some_and(|d| d.len() == 2 && d.iter().all(|x| x["state"] == "delivered"))
        },
    )
    .await;
    let (_, log) = app.get(&log_path, STAFF).await;
    let webhook = log["deliveries"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["sink"] == "webhook"))
        .expect("webhook delivery");
    assert_eq!(webhook["attempts"], 2);
    let (status, _) = app.get(&log_path, GLOBEX).await;
    assert_eq!(status, 404);

    let hook_path = format!("/v1/webhooks/{}", hook["id"].as_str().unwrap_or(""));
    let (status, _) = app
        .send(Method::DELETE, &hook_path, GLOBEX, &Value::Null)
        .await;
    assert_eq!(status, 404, "not theirs to delete");
    let (status, _) = app
        .send(Method::DELETE, &hook_path, ACME, &Value::Null)
        .await;
    assert_eq!(status, 204);
    let (_, mine) = app.get("/v1/webhooks", ACME).await;
    assert_eq!(mine["webhooks"], json!([]));
    app.stop().await;
}
