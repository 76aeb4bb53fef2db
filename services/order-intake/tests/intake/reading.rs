//! Reading orders back: what the stages reported, the filtered list and its cursor, and
//! replays of an `Idempotency-Key`.

use orderflow_messages::Envelope;
use serde_json::json;

use crate::following::{delivered, invoiced, paid, shipped};
use crate::helpers::{App, STAFF, an_order, placed_order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_shows_its_shipments_invoice_and_payment_as_the_stages_report_them() {
    let app = App::spawn().await;
    let placed = placed_order(&app, "web-facts").await;
    let id = placed.order_id;
    let ship = Envelope::caused_by("shipping", &placed, shipped());
    let deliver = Envelope::caused_by("shipping", &placed, delivered());
    let invoice = Envelope::caused_by("billing", &placed, invoiced());
    let pay = Envelope::caused_by("billing", &placed, paid());
    app.publish(&ship).await;
    app.publish(&deliver).await;
    app.publish(&invoice).await;
    app.publish(&pay).await;
    for message in [ship.message_id, deliver.message_id, invoice.message_id] {
        app.wait_for_entry(id, message).await;
    }
    let last = pay.message_id;
    let order = app.wait_for_entry(id, last).await;
    assert_eq!(
        order["shipments"],
        json!([{"shipment_id": order["shipments"][0]["shipment_id"], "carrier": "sim",
                "tracking_number": "SIM000123", "tracking_url": null}])
    );
    assert_eq!(order["invoice_number"], "INV-2026-000042");
    assert_eq!(order["payment"]["state"], "captured");
    assert_eq!(order["status"], "completed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_filter_orders_and_page_through_them_with_a_cursor() {
    let app = App::spawn().await;
    let mut ids = Vec::new();
    for (i, channel) in ["web", "phone", "web", "email", "web"].iter().enumerate() {
        let mut body = an_order(&format!("ref-{i}"));
        body["channel"] = json!(channel);
        if i == 4 {
            body["customer"]["email"] = json!("bob@example.com");
        }
        ids.push(app.place_ok(&body).await.to_string());
    }
    ids.reverse(); // newest first

    let mut seen = Vec::new();
    let mut path = "/v1/orders?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&path, STAFF).await;
        assert_eq!(status, 200, "{page}");
        for order in page["orders"].as_array().expect("orders") {
            seen.push(order["id"].as_str().unwrap_or("").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/orders?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every order once, newest first");

    let (_, web) = app.get("/v1/orders?channel=web", STAFF).await;
    assert_eq!(web["orders"].as_array().map(Vec::len), Some(3));
    let (_, bob) = app
        .get("/v1/orders?customer_email=bob@example.com", STAFF)
        .await;
    assert_eq!(bob["orders"][0]["id"], ids[0]);
    assert_eq!(bob["orders"].as_array().map(Vec::len), Some(1));
    let (_, future) = app.get("/v1/orders?placed_after=2999-01-01", STAFF).await;
    assert_eq!(future["orders"], json!([]));
    let (_, past) = app
        .get(
            "/v1/orders?placed_before=2999-01-01T00:00:00Z&status=placed",
            STAFF,
        )
        .await;
    assert_eq!(past["orders"].as_array().map(Vec::len), Some(5));

    let (status, problem) = app
        .get(
            "/v1/orders?channel=fax&placed_after=yesterday&cursor=zz&customer_email=x",
            STAFF,
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["channel", "customer_email", "placed_after", "cursor"]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_gets_the_same_status_and_body_and_an_expired_key_is_new() {
    let app = App::spawn().await;
    let body = an_order("web-replay");
    let first = app.place(&body, Some("retry-me")).await;
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.expect("json");

    // Meanwhile the order moved on; the replay still answers what the first request got.
    let mut db = app.db().await;
    sqlx::query("UPDATE orders SET status = 'verified', progress = 'verified'")
        .execute(&mut db)
        .await
        .expect("moved on");
    let replay = app.place(&body, Some("retry-me")).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: serde_json::Value = replay.json().await.expect("json");
    assert_eq!(replay, first);

    // A day later the key is forgotten: the same body is a new request, refused as a duplicate
    // of the first order by its external reference, not replayed.
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&mut db)
        .await
        .expect("aged");
    let late = app.place(&body, Some("retry-me")).await;
    assert_eq!(late.status(), 409);
    let mut fresh = an_order("web-replay-2");
    fresh["lines"][0]["quantity"] = json!(1);
    let reused = app.place(&fresh, Some("retry-me")).await;
    assert_eq!(reused.status(), 201, "an expired key may carry a new order");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 2);
    app.stop().await;
}
