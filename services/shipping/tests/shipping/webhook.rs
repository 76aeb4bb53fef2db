//! Carriers that call back over HTTP: signed webhooks become the same tracking events.

use orderflow_messages::Exchange;
use orderflow_messages::order::Shipped;
use orderflow_messages::shipment::Requested;
use orderflow_runtime::testing::{TestEnv, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use shipping::webhook::sign;

use crate::support::{Running, SHOP_KEY, WAIT, configure, packed};

const SECRET: &str = "whsec-sim-0123456789abcdef";

async fn call(running: &Running, body: &Value, signature: Option<&str>) -> (u16, Value) {
    let raw = serde_json::to_vec(body).expect("json");
    let signed = sign(SECRET.as_bytes(), &raw);
    let signature = signature.unwrap_or(&signed);
    running
        .send(
            Method::POST,
            "/v1/carriers/sim/webhook",
            &[("X-Orderflow-Signature", signature)],
            Some(raw),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_carrier_callbacks_ship_the_order_and_unsigned_ones_are_refused() {
    let mut env = TestEnv::new();
    configure(&mut env, "shipping.webhook_secrets.sim", json!(SECRET));
    let running = Running::shipping(env).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::Events, "order.shipped"),
        ])
        .await;
    let packed = packed("standard", &[("WH-A", &[900])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");
    let request = probe.next_of::<Requested>(WAIT).await;
    let shipment_id = request.payload.shipment_id;

    let label = json!({"event_id": "evt-1", "type": "shipment.label_created", "payload": {
        "shipment_id": shipment_id, "carrier": "sim",
        "tracking_number": "SIM000000000123", "label_url": "https://labels.example/123.pdf"}});
    let (status, _) = call(&running, &label, Some("sha256=00")).await;
    assert_eq!(status, 401, "a wrong signature");
    let (status, _) = running
        .send(
            Method::POST,
            "/v1/carriers/sim/webhook",
            &[("Authorization", "Bearer dev-carrier-key")],
            Some(serde_json::to_vec(&label).expect("json")),
        )
        .await;
    assert_eq!(status, 401, "an API key is no signature");
    let (_, shipment) = running
        .get(&format!("/v1/shipments/{shipment_id}"), SHOP_KEY)
        .await;
    assert_eq!(
        shipment["status"], "requested",
        "refused calls change nothing"
    );

    let (status, accepted) = call(&running, &label, None).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["duplicate"], false);
    let (status, retried) = call(&running, &label, None).await;
    assert_eq!(status, 202);
    assert_eq!(retried["duplicate"], true);
    assert_eq!(retried["message_id"], accepted["message_id"]);

    let (status, problem) = call(
        &running,
        &json!({"event_id": "evt-2", "type": "shipment.tracking_updated", "payload": {
            "shipment_id": shipment_id, "carrier": "sim", "tracking_number": "SIM000000000123",
            "status": "teleported", "status_at": "2026-11-27T10:00:00Z"}}),
        None,
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "payload");
    let (status, problem) = call(
        &running,
        &json!({"event_id": "evt-3", "type": "shipment.label_created", "payload": {
            "shipment_id": uuid::Uuid::now_v7(), "carrier": "sim",
            "tracking_number": "X", "label_url": "https://x"}}),
        None,
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "payload.shipment_id");

    let picked_up = json!({"event_id": "evt-4", "type": "shipment.tracking_updated", "payload": {
        "shipment_id": shipment_id, "carrier": "sim", "tracking_number": "SIM000000000123",
        "status": "in_transit", "status_at": chrono::Utc::now(), "location": "Hub"}});
    let (status, _) = call(&running, &picked_up, None).await;
    assert_eq!(status, 202);

    let shipped = probe.next_of::<Shipped>(WAIT).await;
    assert_eq!(shipped.order_id, packed.order_id);
    assert_eq!(
        shipped.payload.shipments[0].tracking_number,
        "SIM000000000123"
    );
    eventually("the shipment is in transit", WAIT, || async {
        let (_, shipment) = running
            .get(&format!("/v1/shipments/{shipment_id}"), SHOP_KEY)
            .await;
        shipment["status"] == "in_transit" && shipment["tracking"][0]["location"] == "Hub"
    })
    .await;
    assert_eq!(
        running
            .total("SELECT count(*) FROM inbox WHERE consumer = 'shipping.carrier-events'")
            .await,
        2,
        "the retried label was handled once"
    );
    running.stop().await;
}
