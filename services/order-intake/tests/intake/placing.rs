//! Placing orders over HTTP.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{App, CARRIER, SHOP, STAFF, WAIT, an_order};
use orderflow_messages::order;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_order_is_accepted_announced_as_placed_and_can_be_read_back() {
    let app = App::spawn().await;
    let mut probe = app.probe(&["order.placed"]).await;

    let mut order = an_order("web-1001");
    order["lines"][0]["customisations"] = json!(["engrave: Ann", "gift wrap, \"red\""]);
    order["billing_address"] = order["shipping_address"].clone();
    let response = app.place(&order, None).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    let id: Uuid = body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    assert_eq!(body["status"], "placed");
    assert_eq!(location, format!("/v1/orders/{id}"));

    let placed = probe.next_of::<order::Placed>(WAIT).await;
    assert_eq!(placed.order_id, id);
    assert_eq!(placed.producer, "order-intake");
    assert_eq!(placed.payload.lines[0].line_no, 1);
    assert_eq!(placed.payload.lines[0].quantity, 2);
    assert_eq!(
        placed.payload.payment.token.as_deref(),
        Some("tok_visa"),
        "billing needs it"
    );

    let (status, read) = app.get(&location, SHOP).await;
    assert_eq!(status, 200);
    assert_eq!(read, body, "the answer to the POST is the order as stored");
    assert_eq!(read["customer"]["email"], "ann@example.com");
    assert_eq!(read["lines"][0]["sku"], "MUG-BLUE");
    assert_eq!(read["subtotal"], json!({"amount": 2500, "currency": "EUR"}));
    assert_eq!(
        read["payment"],
        json!({"method": "card", "state": "pending"})
    );
    assert_eq!(read["shipments"], json!([]));
    assert_eq!(read["invoice_number"], Value::Null);
    assert!(
        !read.to_string().contains("tok_visa"),
        "the token is never shown: {read}"
    );
    let timeline = read["timeline"].as_array().expect("timeline");
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0]["type"], "order.placed");
    assert_eq!(timeline[0]["status"], "placed");
    assert_eq!(timeline[0]["message_id"], placed.message_id.to_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_order_lists_every_failing_field_and_stores_nothing() {
    let app = App::spawn().await;
    let mut body = an_order("web-bad");
    body["channel"] = json!("carrier-pigeon");
    body["customer"]["email"] = json!("ann-at-example");
    body["currency"] = json!("XXX");
    body["lines"] = json!([
        {"sku": "MUG-BLUE", "quantity": 0, "unit_price": 1250},
        {"sku": "MUG-RED", "quantity": 1001, "unit_price": -5}
    ]);
    body["shipping_address"] = json!({"name": "Ann Example", "country": "DE"});
    body["delivery"] = json!({"shipping_method": ""});
    body["payment"] = json!({"method": "card", "token": null});

    let response = app.place(&body, None).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.expect("json");
    let failing: Vec<(String, String)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or("").to_owned(),
                e["rule"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("channel", "one_of"),
        ("customer.email", "format"),
        ("currency", "one_of"),
        ("lines[0].quantity", "range"),
        ("lines[1].quantity", "range"),
        ("lines[1].unit_price", "range"),
        ("shipping_address.line1", "required"),
        ("shipping_address.postal_code", "required"),
        ("shipping_address.city", "required"),
        ("delivery.shipping_method", "required"),
        ("payment.token", "required"),
    ];
    assert_eq!(failing.len(), expected.len(), "{failing:?}");
    for (field, rule) in expected {
        assert!(
            failing.contains(&(field.to_owned(), rule.to_owned())),
            "{field}/{rule} in {failing:?}"
        );
    }

    let mut empty = an_order("web-empty");
    empty["lines"] = json!([]);
    let response = app.place(&empty, None).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["errors"][0]["field"], "lines");

    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM order_lines").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM timeline").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_the_wrong_type_size_or_shape_is_refused_with_the_reason() {
    let app = App::spawn().await;
    let url = app.url("/v1/orders");

    let text = app
        .client
        .post(&url)
        .bearer_auth(SHOP)
        .body("channel=web")
        .send()
        .await
        .expect("post");
    assert_eq!(text.status(), 415);

    let mut unknown = an_order("web-unknown");
    unknown["lines"][0]["colour"] = json!("blue");
    let response = app.place(&unknown, None).await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap_or("")
            .contains("lines[0]"),
        "{problem}"
    );
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("colour"),
        "{problem}"
    );

    let mut huge = an_order("web-huge");
    huge["delivery"]["instructions"] = json!("x".repeat(1024 * 1024 + 1));
    let response = app.place(&huge, None).await;
    assert_eq!(response.status(), 413);

    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_api_key_gets_401_and_a_carrier_key_may_not_place_orders() {
    let app = App::spawn().await;
    let url = app.url("/v1/orders");
    let body = an_order("web-auth");

    let none = app
        .client
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(none.status(), 401);
    let wrong = app
        .client
        .post(&url)
        .bearer_auth("not-a-key")
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), 401);
    let (status, _) = app
        .get(&format!("/v1/orders/{}", Uuid::now_v7()), "not-a-key")
        .await;
    assert_eq!(status, 401);

    let carrier = app
        .client
        .post(&url)
        .bearer_auth(CARRIER)
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(carrier.status(), 403);
    let (status, _) = app.get("/v1/orders/stats", SHOP).await;
    assert_eq!(status, 403, "the statistics need staff");

    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_an_idempotency_key_returns_the_same_order_and_another_body_gets_422() {
    let app = App::spawn().await;
    let body = an_order("web-idem");

    // Sent at once, as a client retrying a timed-out request might: one order, one id.
    let answers = send_at_once(&app, &body, Some("key-1"), 4).await;
    let ids: Vec<&str> = answers
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap_or(""))
        .collect();
    for (status, answer) in &answers {
        assert_eq!(*status, 201, "{answer}");
    }
    assert!(
        ids.iter().all(|id| *id == ids[0] && !id.is_empty()),
        "{ids:?}"
    );

    // The same order spelled differently (key order, spacing) is the same request.
    let reordered: Value = serde_json::from_str(&body.to_string()).expect("json");
    let again = app.place(&reordered, Some("key-1")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["id"], ids[0]);

    let mut other = body.clone();
    other["lines"][0]["quantity"] = json!(3);
    let misuse = app.place(&other, Some("key-1")).await;
    assert_eq!(misuse.status(), 422);
    let problem: Value = misuse.json().await.expect("json");
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or("")
            .ends_with("idempotency-key-reused"),
        "{problem}"
    );

    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM timeline").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_order_with_the_same_external_reference_gets_409_naming_the_first() {
    let app = App::spawn().await;
    let body = an_order("web-dup");

    // Sent at once without keys: exactly one wins, the others are told which one.
    let answers = send_at_once(&app, &body, None, 4).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let id = created[0]["id"].clone();
    for (status, answer) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{answer}");
        assert_eq!(answer["order_id"], id);
    }

    let mut other_channel = body.clone();
    other_channel["channel"] = json!("phone");
    let response = app.place(&other_channel, None).await;
    assert_eq!(
        response.status(),
        201,
        "the reference is unique per channel"
    );
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_order_is_404_and_a_malformed_id_is_400() {
    let app = App::spawn().await;
    let (status, problem) = app
        .get(&format!("/v1/orders/{}", Uuid::now_v7()), SHOP)
        .await;
    assert_eq!(status, 404, "{problem}");
    let (status, problem) = app.get("/v1/orders/order-17", SHOP).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("order-17")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_list_orders_newest_first_and_count_them_by_status() {
    let app = App::spawn().await;
    let first = app.place_ok(&an_order("web-a")).await;
    let second = app.place_ok(&an_order("web-b")).await;

    let (status, list) = app.get("/v1/orders?status=placed&limit=10", STAFF).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, [second.to_string(), first.to_string()]);
    assert_eq!(list["orders"][0]["external_reference"], "web-b");

    let (_, one) = app.get("/v1/orders?limit=1", STAFF).await;
    assert_eq!(one["orders"].as_array().map(Vec::len), Some(1));
    let (_, none) = app.get("/v1/orders?status=shipped", STAFF).await;
    assert_eq!(none["orders"], json!([]));
    let (status, problem) = app.get("/v1/orders?status=lost&limit=501", STAFF).await;
    assert_eq!(status, 422);
    assert_eq!(
        problem["errors"].as_array().map(Vec::len),
        Some(2),
        "{problem}"
    );

    let (status, stats) = app.get("/v1/orders/stats", STAFF).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["by_status"]["placed"], 2);
    assert_eq!(stats["by_status"]["completed"], 0);
    app.stop().await;
}

/// Sends `n` identical `POST /v1/orders` at once.
async fn send_at_once(app: &App, body: &Value, key: Option<&str>, n: usize) -> Vec<(u16, Value)> {
    let requests = (0..n).map(|_| async {
        let response = app.place(body, key).await;
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    });
    futures::future::join_all(requests).await
}
