//! The OpenAPI document against the running service: every documented operation is routed and
//! guarded, every schema is valid JSON Schema, and what staff get back conforms to it.

use orderflow_runtime::openapi::checks;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// The operations; a new one shows up here as a failing test until it is listed.
const OPERATIONS: [(&str, &str); 7] = [
    ("get", "/v1/invoices"),
    ("get", "/v1/invoices/{number}"),
    ("get", "/v1/payments"),
    ("post", "/v1/payments"),
    ("post", "/v1/orders/{id}/refunds"),
    ("put", "/v1/coupons/{code}"),
    ("get", "/v1/coupons/{code}"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_guarded() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json", "").await;
    assert_eq!(response.status(), 200, "served without a key");
    let document: Value = response.json().await.expect("json");
    assert_eq!(checks::faults(&document), Vec::<String>::new());
    assert_eq!(document, billing::openapi::document(), "served as built");
    checks::assert_operations(&document, &OPERATIONS);
    for (method, path) in OPERATIONS {
        let concrete = path
            .replace("{id}", &Uuid::now_v7().to_string())
            .replace("{number}", "INV-1")
            .replace("{code}", "SPRING");
        let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let status = app.send(verb, &concrete, "", &Value::Null).await.status();
        assert_eq!(status, 401, "{method} {path} is routed and needs a key");
    }
    app.stop().await;
}

/// Status and JSON body.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_staff_get_back_conforms_to_the_document() {
    let mut app = spawn_app().await;
    let document = billing::openapi::document();
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        checks::assert_answer(&document, method, path, status, body);
    };
    let (order_id, invoice) = paid_card_order(&mut app).await;

    let (status, body) = answer(app.get(&format!("/v1/invoices/{invoice}"), STAFF_KEY).await).await;
    assert_eq!(status, 200, "{body}");
    check("get", "/v1/invoices/{number}", 200, &body);
    let (status, body) = answer(app.get("/v1/invoices/NOPE-1", STAFF_KEY).await).await;
    assert_eq!(status, 404);
    check("get", "/v1/invoices/{number}", 404, &body);
    let (status, body) = answer(
        app.get(&format!("/v1/payments?order_id={order_id}"), STAFF_KEY)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    check("get", "/v1/payments", 200, &body);
    let (status, body) = answer(app.get("/v1/payments", STAFF_KEY).await).await;
    assert_eq!(status, 422);
    check("get", "/v1/payments", 422, &body);

    let refund = json!({"lines": [{"position": 3, "quantity": 1}], "reason": "one mug broken"});
    checks::assert_request(&document, "post", "/v1/orders/{id}/refunds", &refund);
    let (status, body) = answer(
        app.post(&format!("/v1/orders/{order_id}/refunds"), &refund)
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    check("post", "/v1/orders/{id}/refunds", 201, &body);

    let transfer = json!({"invoice_number": invoice, "reference": "BANK-1",
        "amount": {"amount": 100, "currency": "EUR"}});
    checks::assert_request(&document, "post", "/v1/payments", &transfer);
    let (status, body) = answer(app.post("/v1/payments", &transfer).await).await;
    assert_eq!(status, 409, "a card invoice takes no transfer: {body}");
    check("post", "/v1/payments", 409, &body);

    let coupon = json!({"kind": "percent", "percent": "10"});
    checks::assert_request(&document, "put", "/v1/coupons/{code}", &coupon);
    let (status, body) = answer(
        app.send(Method::PUT, "/v1/coupons/SPRING", ADMIN_KEY, &coupon)
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    check("put", "/v1/coupons/{code}", 201, &body);
    let (status, body) = answer(app.get("/v1/coupons/SPRING", STAFF_KEY).await).await;
    assert_eq!(status, 200, "{body}");
    check("get", "/v1/coupons/{code}", 200, &body);
    app.stop().await;
}
