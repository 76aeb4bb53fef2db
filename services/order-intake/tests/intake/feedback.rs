//! Customers' ratings of their delivered orders.

use orderflow_messages::Envelope;
use orderflow_messages::order;
use reqwest::Method;
use serde_json::json;

use crate::following::delivered;
use crate::helpers::{App, SHOP, STAFF, WAIT, placed_order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_order_takes_one_rating_and_the_summary_counts_it() {
    let app = App::spawn().await;
    let early = placed_order(&app, "web-early").await;
    let placed = placed_order(&app, "web-rated").await;
    let id = placed.order_id;
    let path = format!("/v1/orders/{id}/feedback");

    let (status, problem) = app
        .send(
            Method::POST,
            &format!("/v1/orders/{}/feedback", early.order_id),
            SHOP,
            &json!({"rating": 5}),
        )
        .await;
    assert_eq!(status, 409, "not delivered yet: {problem}");

    let delivery = Envelope::caused_by("shipping", &placed, delivered());
    app.publish(&delivery).await;
    app.wait_for_entry(id, delivery.message_id).await;

    let (status, problem) = app
        .send(
            Method::POST,
            &path,
            SHOP,
            &json!({"rating": 6, "comment": 7}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(2));

    let mut received = app.probe(&["order.feedback_received"]).await;
    let (status, body) = app
        .send(
            Method::POST,
            &path,
            SHOP,
            &json!({"rating": 4, "comment": "quick, but the mug was cold"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let event = received.next_of::<order::FeedbackReceived>(WAIT).await;
    assert_eq!(event.order_id, id);
    assert_eq!(event.payload.rating, 4);
    let (status, _) = app
        .send(Method::POST, &path, SHOP, &json!({"rating": 1}))
        .await;
    assert_eq!(status, 409, "once per order");
    let order = app.order(id).await;
    assert!(order["timeline"].to_string().contains("rated 4/5"));

    let (status, summary) = app.get("/v1/feedback/summary", STAFF).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["count"], 1);
    assert_eq!(summary["average"], 4.0);
    assert_eq!(
        summary["distribution"],
        json!({"1": 0, "2": 0, "3": 0, "4": 1, "5": 0})
    );
    let (_, future) = app.get("/v1/feedback/summary?from=2999-01-01", STAFF).await;
    assert_eq!(future["count"], 0);
    assert_eq!(future["average"], serde_json::Value::Null);
    let (status, _) = app.get("/v1/feedback/summary", SHOP).await;
    assert_eq!(status, 403);
    app.stop().await;
}
