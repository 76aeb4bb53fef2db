//! The OpenAPI document against the running API: every documented operation is routed and
//! guarded, every schema is a valid JSON Schema (2020-12, the dialect of OpenAPI 3.1), and what
//! the service really answers — and the README's example bodies — conform to it.

use orderflow_runtime::openapi::checks;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{App, SHOP, STAFF, an_order};

/// The operations of the API; a new one shows up here as a failing test until it is listed.
const OPERATIONS: [(&str, &str); 14] = [
    ("get", "/v1/orders"),
    ("post", "/v1/orders"),
    ("post", "/v1/orders/import"),
    ("get", "/v1/orders/stats"),
    ("get", "/v1/orders/{id}"),
    ("get", "/v1/orders/{id}/timeline"),
    ("post", "/v1/orders/{id}/cancel"),
    ("put", "/v1/orders/{id}/payment-method"),
    ("post", "/v1/orders/{id}/feedback"),
    ("get", "/v1/orders/{id}/notifications"),
    ("get", "/v1/feedback/summary"),
    ("get", "/v1/webhooks"),
    ("post", "/v1/webhooks"),
    ("delete", "/v1/webhooks/{id}"),
];

async fn served_document(app: &App) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(response.status(), 200, "served without a key");
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_guarded_and_answers_problems() {
    let app = App::spawn().await;
    let document = served_document(&app).await;
    assert_eq!(checks::faults(&document), Vec::<String>::new());
    checks::assert_operations(&document, &OPERATIONS);
    for (method, path) in OPERATIONS {
        let operation = &document["paths"][path][method];
        let url = app.url(&path.replace("{id}", &Uuid::now_v7().to_string()));
        let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let status = app.client.request(verb, url).send().await.expect("call");
        assert_eq!(
            status.status(),
            401,
            "{method} {path} is routed and needs a key"
        );
        if operation["requestBody"].is_object() {
            let responses = operation["responses"].as_object().expect("responses");
            for code in ["400", "413", "415"] {
                assert!(
                    responses.contains_key(code),
                    "{method} {path} reads a body: {code}"
                );
            }
        }
    }
    assert_eq!(
        document,
        order_intake::openapi::document(),
        "served as built"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_schema_is_valid_json_schema_and_has_the_rules_of_the_api() {
    let document = order_intake::openapi::document();
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for name in [
        "OrderRequest",
        "Address",
        "Problem",
        "FieldError",
        "OrderView",
        "ImportReport",
    ] {
        assert!(schemas.contains_key(name), "{name} is documented");
    }
    assert_eq!(checks::faults(&document), Vec::<String>::new());
    checks::assert_request(&document, "post", "/v1/orders", &an_order("schema-1"));
    let mut broken = an_order("schema-2");
    broken["lines"][0]["quantity"] = json!(0);
    broken["colour"] = json!("blue");
    let order = checks::request_schema(&document, "post", "/v1/orders");
    assert_eq!(
        checks::violations(&order, &broken).len(),
        2,
        "the schema has the rules"
    );
}

/// The `-d '…'` bodies of the README's `curl` calls to order-intake, with the operation
/// (method, documented path) each goes to.
fn readme_examples() -> Vec<(String, String, Value)> {
    let readme = include_str!("../../../../README.md");
    let mut examples = Vec::new();
    for command in readme.split("curl ").skip(1) {
        let command = command.split("```").next().unwrap_or("");
        let Some(url) = command.split_whitespace().find_map(|w| {
            w.trim_matches('\'')
                .strip_prefix("http://127.0.0.1:8080")
                .map(str::to_owned)
        }) else {
            continue;
        };
        let Some((_, rest)) = command.split_once("-d '") else {
            continue;
        };
        let Some((body, _)) = rest.split_once('\'') else {
            continue;
        };
        let body: Value = serde_json::from_str(body).expect("the README's body is JSON");
        let method = command
            .split_once("-X ")
            .and_then(|(_, m)| m.split_whitespace().next())
            .unwrap_or("POST")
            .to_lowercase();
        let path = url
            .split('?')
            .next()
            .unwrap_or("")
            .split('/')
            .map(|s| if s.starts_with('$') { "{id}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        examples.push((method, path, body));
    }
    examples
}

#[tokio::test]
async fn the_readmes_example_bodies_conform_to_the_document() {
    let document = order_intake::openapi::document();
    let examples = readme_examples();
    let operations: Vec<(&str, &str)> = examples
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert!(
        operations.contains(&("post", "/v1/orders"))
            && operations.contains(&("post", "/v1/orders/{id}/cancel")),
        "{operations:?}"
    );
    for (method, path, body) in &examples {
        checks::assert_request(&document, method, path, body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_service_answers_conforms_to_the_document() {
    let app = App::spawn().await;
    let document = order_intake::openapi::document();
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        checks::assert_answer(&document, method, path, status, body);
    };

    let (status, order) = app
        .send(Method::POST, "/v1/orders", SHOP, &an_order("documented-1"))
        .await;
    assert_eq!(status, 201, "{order}");
    check("post", "/v1/orders", 201, &order);
    let mut invalid = an_order("documented-2");
    invalid["customer"]["email"] = json!("not-an-email");
    let (status, problem) = app.send(Method::POST, "/v1/orders", SHOP, &invalid).await;
    assert_eq!(status, 422);
    check("post", "/v1/orders", 422, &problem);
    let (status, problem) = app
        .send(Method::POST, "/v1/orders", SHOP, &an_order("documented-1"))
        .await;
    assert_eq!(status, 409);
    check("post", "/v1/orders", 409, &problem);

    let id = order["id"].as_str().expect("id");
    for (path, key) in [
        ("/v1/orders/{id}", SHOP),
        ("/v1/orders/{id}/timeline", SHOP),
        ("/v1/orders/{id}/notifications", SHOP),
        ("/v1/orders", SHOP),
        ("/v1/orders/stats", STAFF),
        ("/v1/feedback/summary", STAFF),
        ("/v1/webhooks", SHOP),
    ] {
        let (status, body) = app.get(&path.replace("{id}", id), key).await;
        assert_eq!(status, 200, "{path}: {body}");
        check("get", path, 200, &body);
    }
    let (status, problem) = app
        .get(&format!("/v1/orders/{}", Uuid::now_v7()), SHOP)
        .await;
    assert_eq!(status, 404);
    check("get", "/v1/orders/{id}", 404, &problem);

    let (status, hook) = app
        .subscribe_webhook(SHOP, "https://shop.example/hooks", "a-secret-of-16-chars")
        .await;
    assert_eq!(status, 201, "{hook}");
    check("post", "/v1/webhooks", 201, &hook);
    let (status, cancelled) = app
        .send(
            Method::POST,
            &format!("/v1/orders/{id}/cancel"),
            SHOP,
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(status, 202, "{cancelled}");
    check("post", "/v1/orders/{id}/cancel", 202, &cancelled);
    app.stop().await;
}
