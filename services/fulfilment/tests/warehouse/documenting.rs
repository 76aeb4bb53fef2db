//! The OpenAPI document against the running API.

use orderflow_runtime::testing::TestEnv;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_routed_operation_with_its_errors() {
    let env = TestEnv::new();
    let service = Fulfilment::start(&env, &env.settings).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", service.addr);
    let response = client.get(url("/openapi.json")).send().await.expect("GET");
    assert_eq!(response.status(), 200, "served without a key");
    let document: Value = response.json().await.expect("json");
    assert_eq!(document["openapi"], "3.1.0");

    let mut operations = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            operations += 1;
            let concrete = path
                .replace("{order_id}", &Uuid::now_v7().to_string())
                .replace("{id}", &Uuid::now_v7().to_string())
                .replace("{code}", "berlin");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let status = client
                .request(method.clone(), url(&concrete))
                .send()
                .await
                .expect("call")
                .status();
            assert_eq!(status, 401, "{method} {path} is routed (and needs a key)");
            let responses = operation["responses"].as_object().expect("responses");
            for (code, answer) in responses {
                if code.starts_with('4') {
                    assert_eq!(
                        answer["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {code}"
                    );
                }
            }
            if let Some(reference) =
                operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                let name = reference.trim_start_matches("#/components/schemas/");
                assert!(
                    document["components"]["schemas"][name].is_object(),
                    "{reference} is defined"
                );
            }
        }
    }
    assert_eq!(operations, fulfilment::openapi::OPERATIONS.len());
    assert_eq!(operations, 9);
    service.stop().await;
}
