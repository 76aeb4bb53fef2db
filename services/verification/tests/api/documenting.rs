//! The OpenAPI document against the running service: every documented operation is routed and
//! guarded, every schema is valid JSON Schema, and what the service answers conforms to it.

use orderflow_runtime::openapi::checks;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, App, STAFF};

/// The operations; a new one shows up here as a failing test until it is listed.
const OPERATIONS: [(&str, &str); 14] = [
    ("get", "/v1/products"),
    ("post", "/v1/products/import"),
    ("put", "/v1/products/{sku}"),
    ("get", "/v1/products/{sku}"),
    ("get", "/v1/customers"),
    ("put", "/v1/customers/{customer_id}"),
    ("get", "/v1/customers/{customer_id}"),
    ("get", "/v1/warehouses"),
    ("put", "/v1/warehouses/{code}"),
    ("post", "/v1/warehouses/{code}/receipts"),
    ("post", "/v1/warehouses/{code}/adjustments"),
    ("get", "/v1/stock"),
    ("get", "/v1/stock/low"),
    ("get", "/v1/backorders"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_guarded() {
    let app = App::spawn().await;
    let (status, document) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "served without a key");
    assert_eq!(checks::faults(&document), Vec::<String>::new());
    assert_eq!(
        document,
        verification::openapi::document(),
        "served as built"
    );
    checks::assert_operations(&document, &OPERATIONS);
    for (method, path) in OPERATIONS {
        let concrete = path
            .replace("{sku}", "MUG-1")
            .replace("{customer_id}", "c-1")
            .replace("{code}", "berlin");
        let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let (status, _) = app.call(verb, &concrete, None, None).await;
        assert_eq!(status, 401, "{method} {path} is routed and needs a key");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_service_answers_conforms_to_the_document() {
    let app = App::spawn().await;
    let document = verification::openapi::document();
    let call = |method: Method, path: &str, key: &'static str, body: Option<Value>| {
        let path = path.to_owned();
        let app = &app;
        async move { app.call(method, &path, Some(key), body).await }
    };
    let check = |method: &str, path: &str, status: StatusCode, body: &Value| {
        checks::assert_answer(&document, method, path, status.as_u16(), body);
    };

    let product = json!({"name": "Mug", "unit_price": 1250, "currency": "EUR",
        "tax_class": "reduced", "weight_grams": 350,
        "dimensions": {"length_mm": 100, "width_mm": 80, "height_mm": 60}});
    checks::assert_request(&document, "put", "/v1/products/{sku}", &product);
    let (status, body) = call(Method::PUT, "/v1/products/MUG-1", ADMIN, Some(product)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    check("put", "/v1/products/{sku}", status, &body);
    let (status, body) = call(Method::PUT, "/v1/products/MUG-2", ADMIN, Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    check("put", "/v1/products/{sku}", status, &body);
    let warehouse = json!({"name": "Berlin"});
    checks::assert_request(&document, "put", "/v1/warehouses/{code}", &warehouse);
    let (status, body) = call(Method::PUT, "/v1/warehouses/berlin", ADMIN, Some(warehouse)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    check("put", "/v1/warehouses/{code}", status, &body);
    let receipt = json!({"lines": [{"sku": "MUG-1", "quantity": 5}], "reason": "delivery"});
    checks::assert_request(
        &document,
        "post",
        "/v1/warehouses/{code}/receipts",
        &receipt,
    );
    let (status, body) = call(
        Method::POST,
        "/v1/warehouses/berlin/receipts",
        ADMIN,
        Some(receipt),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    check("post", "/v1/warehouses/{code}/receipts", status, &body);
    let adjustment = json!({"sku": "MUG-1", "delta": -1, "reason": "broken"});
    checks::assert_request(
        &document,
        "post",
        "/v1/warehouses/{code}/adjustments",
        &adjustment,
    );
    let (status, body) = call(
        Method::POST,
        "/v1/warehouses/berlin/adjustments",
        ADMIN,
        Some(adjustment),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    check("post", "/v1/warehouses/{code}/adjustments", status, &body);
    let customer = json!({"name": "Ann Example", "email": "ann@example.com",
        "addresses": [{"name": "Ann Example", "line1": "Hauptstr. 1", "postal_code": "10115",
            "city": "Berlin", "country": "DE"}]});
    checks::assert_request(&document, "put", "/v1/customers/{customer_id}", &customer);
    let (status, body) = call(Method::PUT, "/v1/customers/c-1", ADMIN, Some(customer)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    check("put", "/v1/customers/{customer_id}", status, &body);

    for (path, concrete) in [
        ("/v1/products", "/v1/products"),
        ("/v1/products/{sku}", "/v1/products/MUG-1"),
        ("/v1/customers", "/v1/customers"),
        ("/v1/customers/{customer_id}", "/v1/customers/c-1"),
        ("/v1/warehouses", "/v1/warehouses"),
        ("/v1/stock", "/v1/stock?sku=MUG-1"),
        ("/v1/stock/low", "/v1/stock/low"),
        ("/v1/backorders", "/v1/backorders"),
    ] {
        let (status, body) = call(Method::GET, concrete, STAFF, None).await;
        assert_eq!(status, StatusCode::OK, "{concrete}: {body}");
        check("get", path, status, &body);
    }
    let (status, body) = call(Method::GET, "/v1/products/NOPE", STAFF, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    check("get", "/v1/products/{sku}", status, &body);
    app.stop().await;
}
