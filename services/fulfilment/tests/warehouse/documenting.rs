//! The OpenAPI document against the running API: every documented operation is routed and
//! guarded, every schema is valid JSON Schema, and what staff get back while working a manual
//! warehouse conforms to it.

use orderflow_runtime::openapi::checks;
use orderflow_runtime::testing::TestEnv;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

/// The operations of the API; a new one shows up here as a failing test until it is listed.
const OPERATIONS: [(&str, &str); 9] = [
    ("get", "/v1/fulfilments/{order_id}"),
    ("get", "/v1/warehouses"),
    ("put", "/v1/warehouses/{code}/mode"),
    ("get", "/v1/warehouses/{code}/pick-lists"),
    ("get", "/v1/warehouses/{code}/tasks"),
    ("get", "/v1/pick-lists/{id}"),
    ("post", "/v1/pick-lists/{id}/pick"),
    ("post", "/v1/pick-lists/{id}/parcels"),
    ("post", "/v1/tasks/{id}/complete"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_guarded_and_answers_problems() {
    let env = TestEnv::new();
    let service = Fulfilment::start(&env, &env.settings).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", service.addr);
    let response = client.get(url("/openapi.json")).send().await.expect("GET");
    assert_eq!(response.status(), 200, "served without a key");
    let document: Value = response.json().await.expect("json");
    assert_eq!(checks::faults(&document), Vec::<String>::new());
    assert_eq!(document, fulfilment::openapi::document(), "served as built");
    checks::assert_operations(&document, &OPERATIONS);
    for (method, path) in OPERATIONS {
        let concrete = path
            .replace("{order_id}", &Uuid::now_v7().to_string())
            .replace("{id}", &Uuid::now_v7().to_string())
            .replace("{code}", "berlin");
        let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let status = client
            .request(verb, url(&concrete))
            .send()
            .await
            .expect("call");
        assert_eq!(
            status.status(),
            401,
            "{method} {path} is routed and needs a key"
        );
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_staff_get_back_conforms_to_the_document() {
    let env = TestEnv::new();
    let settings = settings(&env, &[("warehouses.berlin", "manual")]);
    let service = Fulfilment::start(&env, &settings).await;
    let document = fulfilment::openapi::document();
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        checks::assert_answer(&document, method, path, status, body);
    };
    let input = service
        .verify(verified(
            &[(1, "MUG", 2, 700, &["engraving"])],
            &[("berlin", 1, 2)],
        ))
        .await;
    let order_id = input.order_id;
    let list = service.open_pick_list("berlin", order_id).await;
    let id = list["id"].as_str().expect("pick list id").to_owned();

    for (path, concrete) in [
        ("/v1/warehouses", "/v1/warehouses".to_owned()),
        (
            "/v1/warehouses/{code}/pick-lists",
            "/v1/warehouses/berlin/pick-lists".to_owned(),
        ),
        (
            "/v1/warehouses/{code}/tasks",
            "/v1/warehouses/berlin/tasks".to_owned(),
        ),
        ("/v1/pick-lists/{id}", format!("/v1/pick-lists/{id}")),
        (
            "/v1/fulfilments/{order_id}",
            format!("/v1/fulfilments/{order_id}"),
        ),
    ] {
        check("get", path, 200, &service.get(&concrete).await);
    }
    let (status, problem) = service
        .call(Method::GET, "/v1/pick-lists/not-a-uuid", STAFF, None)
        .await;
    assert_eq!(
        status, 400,
        "a malformed id is a problem naming it: {problem}"
    );
    check("get", "/v1/pick-lists/{id}", 400, &problem);
    let (status, problem) = service
        .call(
            Method::GET,
            "/v1/warehouses/berlin/tasks?limit=0",
            STAFF,
            None,
        )
        .await;
    assert_eq!(status, 422);
    check("get", "/v1/warehouses/{code}/tasks", 422, &problem);

    let pick = json!({"lines": [{"line_no": 1, "found": 2}]});
    checks::assert_request(&document, "post", "/v1/pick-lists/{id}/pick", &pick);
    let (status, picked) = service
        .post(&format!("/v1/pick-lists/{id}/pick"), pick)
        .await;
    assert_eq!(status, 200, "{picked}");
    check("post", "/v1/pick-lists/{id}/pick", 200, &picked);
    let task = picked["tasks"][0]["id"].as_str().expect("task id");
    let (status, done) = service
        .post(&format!("/v1/tasks/{task}/complete"), json!({}))
        .await;
    assert_eq!(status, 200, "{done}");
    check("post", "/v1/tasks/{id}/complete", 200, &done);
    let parcel = json!({"lines": [{"line_no": 1, "quantity": 2}], "weight_grams": 1500,
        "dimensions": {"length_mm": 200, "width_mm": 150, "height_mm": 100}});
    checks::assert_request(&document, "post", "/v1/pick-lists/{id}/parcels", &parcel);
    let (status, closed) = service
        .post(&format!("/v1/pick-lists/{id}/parcels"), parcel)
        .await;
    assert_eq!(status, 201, "{closed}");
    check("post", "/v1/pick-lists/{id}/parcels", 201, &closed);
    check(
        "get",
        "/v1/fulfilments/{order_id}",
        200,
        &service.get(&format!("/v1/fulfilments/{order_id}")).await,
    );

    let (status, mode) = service
        .call(
            Method::PUT,
            "/v1/warehouses/berlin/mode",
            ADMIN,
            Some(json!({"mode": "automatic"})),
        )
        .await;
    assert_eq!(status, 200, "{mode}");
    check("put", "/v1/warehouses/{code}/mode", 200, &mode);
    service.stop().await;
}
