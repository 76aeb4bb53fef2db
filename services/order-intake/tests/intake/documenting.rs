//! The OpenAPI document against the running API.

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_routed_operation_with_its_errors() {
    let app = App::spawn().await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(response.status(), 200, "served without a key");
    let document: Value = response.json().await.expect("json");
    assert_eq!(document["openapi"], "3.1.0");

    let paths = document["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("item") {
            operations += 1;
            let url = app.url(&path.replace("{id}", &Uuid::now_v7().to_string()));
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let status = app
                .client
                .request(method.clone(), url)
                .send()
                .await
                .expect("call")
                .status();
            assert_eq!(status, 401, "{method} {path} is routed (and needs a key)");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(responses.contains_key("401"), "{method} {path}");
            for (code, answer) in responses {
                if code.starts_with('4') {
                    assert_eq!(
                        answer["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {code}"
                    );
                }
            }
            if let Some(body) = operation["requestBody"]["content"].as_object() {
                for media in body.values() {
                    let reference = media["schema"]["$ref"].as_str().expect("ref");
                    let name = reference.trim_start_matches("#/components/schemas/");
                    assert!(
                        document["components"]["schemas"][name].is_object(),
                        "{reference} is defined"
                    );
                }
            }
        }
    }
    assert_eq!(operations, order_intake::openapi::OPERATIONS.len());
    assert!(operations >= 14, "{operations}");
    app.stop().await;
}
