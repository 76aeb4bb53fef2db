//! The OpenAPI document against the running API: every documented operation is routed and
//! guarded, every schema is a valid JSON Schema (2020-12, the dialect of OpenAPI 3.1), and what
//! the service really answers — and the README's example bodies — conform to it.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{App, SHOP, STAFF, an_order};

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

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

/// `schema` as a standalone JSON Schema whose `#/components/...` references resolve.
fn standalone(document: &Value, schema: &Value) -> Value {
    let mut standalone = schema.clone();
    standalone["$schema"] = json!(DIALECT);
    standalone["components"] = document["components"].clone();
    standalone
}

/// The schema of what `method path` answers with `status`.
fn answer_schema(document: &Value, method: &str, path: &str, status: u16) -> Value {
    let answer = &document["paths"][path][method]["responses"][status.to_string()];
    let content = answer["content"].as_object().expect("content");
    let (_, media) = content.iter().next().expect("a media type");
    standalone(document, &media["schema"])
}

fn request_schema(document: &Value, method: &str, path: &str) -> Value {
    let media = &document["paths"][path][method]["requestBody"]["content"]["application/json"];
    standalone(document, &media["schema"])
}

/// Fails naming every point where `instance` breaks `schema`.
#[track_caller]
fn assert_conforms(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{instance}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_guarded_and_answers_problems() {
    let app = App::spawn().await;
    let document = served_document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"],
        json!({"type": "http", "scheme": "bearer",
            "description": document["components"]["securitySchemes"]["api_key"]["description"]}),
        "the key goes in `Authorization: Bearer`, as the service reads it"
    );
    assert_eq!(document["security"], json!([{"api_key": []}]));

    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            documented.push((method.clone(), path.clone()));
            let what = format!("{method} {path}");
            let url = app.url(&path.replace("{id}", &Uuid::now_v7().to_string()));
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let status = app.client.request(verb, url).send().await.expect("call");
            assert_eq!(status.status(), 401, "{what} is routed and needs a key");
            let description = operation["description"].as_str().unwrap_or("");
            assert!(description.starts_with("Role: "), "{what}: {description}");
            let responses = operation["responses"].as_object().expect("responses");
            for code in ["401", "403", "500"] {
                assert!(responses.contains_key(code), "{what} {code}");
            }
            if operation["requestBody"].is_object() {
                for code in ["400", "413", "415"] {
                    assert!(responses.contains_key(code), "{what} reads a body: {code}");
                }
            }
            for (code, answer) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    assert_eq!(
                        answer["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{what} {code}"
                    );
                } else if code != "204" {
                    assert!(answer["content"].is_object(), "{what} {code} has a body");
                }
            }
        }
    }
    let mut expected: Vec<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    documented.sort();
    assert_eq!(documented, expected);
    assert_eq!(
        document,
        order_intake::openapi::document(),
        "served as built"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_schema_of_the_document_is_valid_json_schema() {
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
    for (name, schema) in schemas {
        let mut schema = schema.clone();
        schema["$schema"] = json!(DIALECT);
        jsonschema::meta::validate(&schema)
            .unwrap_or_else(|e| panic!("{name} is not a valid JSON Schema: {e}"));
        let standalone = standalone(&document, &schema);
        jsonschema::validator_for(&standalone)
            .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
    }
    let order = request_schema(&document, "post", "/v1/orders");
    assert_conforms(&order, &an_order("schema-1"), "the brief's order");
    let mut broken = an_order("schema-2");
    broken["lines"][0]["quantity"] = json!(0);
    broken["colour"] = json!("blue");
    let validator = jsonschema::validator_for(&order).expect("compiles");
    assert!(!validator.is_valid(&broken), "the schema has the rules");
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
        let schema = request_schema(&document, method, path);
        assert_conforms(&schema, body, &format!("README: {method} {path}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_service_answers_conforms_to_the_document() {
    let app = App::spawn().await;
    let document = order_intake::openapi::document();
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        let schema = answer_schema(&document, method, path, status);
        assert_conforms(&schema, body, &format!("{method} {path} {status}"));
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
