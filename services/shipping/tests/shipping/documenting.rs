//! The OpenAPI document against the running service: every documented operation is routed and
//! guarded (by an API key, or the webhook by its signature), every schema is valid JSON Schema,
//! and what the service answers conforms to it.

use orderflow_messages::Exchange;
use orderflow_messages::order::Shipped;
use orderflow_runtime::openapi::checks;
use orderflow_runtime::testing::TestEnv;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{ADMIN_KEY, Running, SHOP_KEY, STAFF_KEY, WAIT, configure, packed};

/// The operations; a new one shows up here as a failing test until it is listed.
const OPERATIONS: [(&str, &str); 7] = [
    ("get", "/v1/shipments"),
    ("get", "/v1/shipments/{id}"),
    ("post", "/v1/shipments/{id}/collected"),
    ("get", "/v1/carriers"),
    ("get", "/v1/carriers/{code}"),
    ("put", "/v1/carriers/{code}"),
    ("post", "/v1/carriers/{code}/webhook"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_guarded() {
    let running = Running::shipping(TestEnv::new()).await;
    let (status, document) = running.get("/openapi.json", "").await;
    assert_eq!(status, 200, "served without a key");
    assert_eq!(checks::faults(&document), Vec::<String>::new());
    assert_eq!(document, shipping::openapi::document(), "served as built");
    checks::assert_operations(&document, &OPERATIONS);
    for (method, path) in OPERATIONS {
        let concrete = path
            .replace("{id}", &Uuid::now_v7().to_string())
            .replace("{code}", "sim");
        let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let (status, _) = running.send(verb, &concrete, &[], None).await;
        assert_eq!(status, 401, "{method} {path} is routed and guarded");
    }
    let webhook = &document["paths"]["/v1/carriers/{code}/webhook"]["post"];
    assert_eq!(webhook["security"], json!([{}]), "signed, not keyed");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_service_answers_conforms_to_the_document() {
    let mut env = TestEnv::new();
    configure(
        &mut env,
        "shipping.rules",
        json!([{"shipping_method": "pickup", "carrier": "pickup", "service_level": "pickup"}]),
    );
    let running = Running::shipping(env).await;
    let document = shipping::openapi::document();
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        checks::assert_answer(&document, method, path, status, body);
    };
    let mut probe = running
        .env
        .probe(&[(Exchange::Events, "order.shipped")])
        .await;
    let packed = packed("pickup", &[("STORE-BERLIN", &[900])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");
    let shipped = probe.next_of::<Shipped>(WAIT).await;
    let id = shipped.payload.shipments[0].shipment_id;

    let (status, list) = running
        .get(
            &format!("/v1/shipments?order_id={}", packed.order_id),
            SHOP_KEY,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    check("get", "/v1/shipments", 200, &list);
    let (status, shipment) = running.get(&format!("/v1/shipments/{id}"), SHOP_KEY).await;
    assert_eq!(status, 200, "{shipment}");
    check("get", "/v1/shipments/{id}", 200, &shipment);
    let (status, collected) = running
        .send(
            Method::POST,
            &format!("/v1/shipments/{id}/collected"),
            &[("Authorization", STAFF_KEY)],
            None,
        )
        .await;
    assert_eq!(status, 200, "{collected}");
    check("post", "/v1/shipments/{id}/collected", 200, &collected);
    let (status, problem) = running.get("/v1/shipments", SHOP_KEY).await;
    assert_eq!(status, 422);
    check("get", "/v1/shipments", 422, &problem);

    let (status, carriers) = running.get("/v1/carriers", STAFF_KEY).await;
    assert_eq!(status, 200, "{carriers}");
    check("get", "/v1/carriers", 200, &carriers);
    let acme = json!({"name": "ACME Parcel", "service_levels": ["standard"],
        "tracking_url_template": "https://acme.example/t/{tracking_number}"});
    checks::assert_request(&document, "put", "/v1/carriers/{code}", &acme);
    let body = serde_json::to_vec(&acme).expect("json");
    let (status, registered) = running
        .send(
            Method::PUT,
            "/v1/carriers/acme",
            &[("Authorization", ADMIN_KEY)],
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    check("put", "/v1/carriers/{code}", 201, &registered);
    let (status, shown) = running.get("/v1/carriers/acme", STAFF_KEY).await;
    assert_eq!(status, 200);
    check("get", "/v1/carriers/{code}", 200, &shown);

    let call = json!({"event_id": "e-1", "type": "shipment.tracking_updated", "payload": {}});
    checks::assert_request(&document, "post", "/v1/carriers/{code}/webhook", &call);
    let (status, problem) = running
        .send(
            Method::POST,
            "/v1/carriers/acme/webhook",
            &[("X-Orderflow-Signature", "sha256=00")],
            Some(serde_json::to_vec(&call).expect("json")),
        )
        .await;
    assert_eq!(status, 401, "{problem}");
    check("post", "/v1/carriers/{code}/webhook", 401, &problem);
    running.stop().await;
}
