//! The HTTP API's edges: roles, missing or malformed parameters, unknown shipments.

use orderflow_runtime::testing::TestEnv;

use crate::support::{Running, SHOP_KEY, STAFF_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_the_carriers_and_shops_see_only_shipments() {
    let running = Running::shipping(TestEnv::new()).await;

    let (status, body) = running.get("/v1/carriers", STAFF_KEY).await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<&str> = body["carriers"]
        .as_array()
        .map(|list| list.iter().filter_map(|c| c["code"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(codes, ["pickup", "sim"], "both built-in carriers: {body}");
    let sim = &body["carriers"][1];
    assert_eq!(sim["name"], "Simulated carrier");
    assert_eq!(
        sim["service_levels"],
        serde_json::json!(["standard", "express", "pickup"])
    );
    assert_eq!(sim["cash_on_delivery"], true);

    let (status, _) = running.get("/v1/carriers", SHOP_KEY).await;
    assert_eq!(status, 403);
    let (status, _) = running.get("/v1/shipments?order_id=x", "Bearer nope").await;
    assert_eq!(status, 401);

    let (status, body) = running.get("/v1/shipments", SHOP_KEY).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "order_id");
    let (status, body) = running.get("/v1/shipments?order_id=42", SHOP_KEY).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["rule"], "format");
    let (status, _) = running
        .get(&format!("/v1/shipments/{}", uuid::Uuid::now_v7()), SHOP_KEY)
        .await;
    assert_eq!(status, 404);
    running.stop().await;
}
