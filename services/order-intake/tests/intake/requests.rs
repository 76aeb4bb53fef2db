//! Requests about an order in flight: cancelling it, changing its payment method, and who may
//! ask for what.

use orderflow_messages::order::{self, Placed};
use orderflow_messages::types::PaymentMethod;
use orderflow_messages::{Envelope, payment};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::following::{eur, packed, shipped, verified};
use crate::helpers::{ACME, App, GLOBEX, SHOP, STAFF, WAIT, an_order, timeline_types};

async fn cancel(app: &App, id: Uuid, key: &str, reason: &str) -> (u16, Value) {
    app.send(
        Method::POST,
        &format!("/v1/orders/{id}/cancel"),
        key,
        &json!({"reason": reason}),
    )
    .await
}

/// Places an order with `key` and returns its `order.placed`.
async fn placed_by(app: &App, key: &str, reference: &str) -> Envelope<Placed> {
    let mut probe = app.probe(&["order.placed"]).await;
    let (status, body) = app
        .send(Method::POST, "/v1/orders", key, &an_order(reference))
        .await;
    assert_eq!(status, 201, "{body}");
    let placed = probe.next_of::<Placed>(WAIT).await;
    assert_eq!(body["id"], placed.order_id.to_string());
    placed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_before_shipping_is_accepted_and_the_order_becomes_cancelled_on_order_cancelled() {
    let app = App::spawn().await;
    let placed = placed_by(&app, SHOP, "web-cancel").await;
    let id = placed.order_id;
    let packing = Envelope::caused_by("fulfilment", &placed, packed(&placed.payload));
    app.publish(&packing).await;
    assert_eq!(
        app.wait_for_entry(id, packing.message_id).await["status"],
        "packed"
    );

    let mut requests = app.probe(&["order.cancel_requested"]).await;
    let (status, body) = cancel(&app, id, SHOP, "customer changed their mind").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["status"], "packed",
        "the status waits for the decision"
    );
    let request = requests.next_of::<order::CancelRequested>(WAIT).await;
    assert_eq!(request.order_id, id);
    assert_eq!(request.payload.reason, "customer changed their mind");
    assert_eq!(request.payload.requested_by.as_deref(), Some("shop"));

    // Shipping's decision and the stages' compensations, as those services would publish them.
    let cancelled = Envelope::caused_by(
        "shipping",
        &request,
        order::Cancelled {
            reason: "customer changed their mind".into(),
        },
    );
    let unpacked = Envelope::caused_by(
        "fulfilment",
        &cancelled,
        order::Unpacked {
            groups: packing.payload.groups.clone(),
            reason: "order cancelled".into(),
        },
    );
    let voided = Envelope::caused_by(
        "billing",
        &cancelled,
        payment::Voided {
            payment_id: Uuid::now_v7(),
            amount: eur(2500),
            reason: "order cancelled".into(),
        },
    );
    app.publish(&cancelled).await;
    app.publish(&unpacked).await;
    app.publish(&voided).await;
    app.wait_for_entry(id, unpacked.message_id).await;
    let order = app.wait_for_entry(id, voided.message_id).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["payment"]["state"], "voided");
    let types = timeline_types(&order);
    for event in [
        "order.cancel_requested",
        "order.cancelled",
        "order.unpacked",
        "payment.voided",
    ] {
        assert!(types.contains(&event.to_owned()), "{event} in {types:?}");
    }

    let (status, history) = app.get(&format!("/v1/orders/{id}/timeline"), SHOP).await;
    assert_eq!(status, 200, "{history}");
    let entries = history["entries"].as_array().expect("entries");
    let asked = entries
        .iter()
        .find(|e| e["type"] == "order.cancel_requested")
        .expect("request entry");
    assert_eq!(asked["requested_by"], "shop");
    let decided = entries
        .iter()
        .find(|e| e["type"] == "order.cancelled")
        .expect("decision entry");
    assert_eq!(decided["producer"], "shipping");
    assert_eq!(decided["cause"], "order.cancel_requested");
    assert_eq!(decided["causation_id"], request.message_id.to_string());
    let unpacking = entries
        .iter()
        .find(|e| e["type"] == "order.unpacked")
        .expect("compensation entry");
    assert_eq!(unpacking["cause"], "order.cancelled");

    let (status, problem) = cancel(&app, id, SHOP, "again").await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("already cancelled")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_shipping_is_refused_with_409_and_the_tracking() {
    let app = App::spawn().await;
    let placed = placed_by(&app, SHOP, "web-too-late").await;
    let id = placed.order_id;
    let ship = Envelope::caused_by("shipping", &placed, shipped());
    app.publish(&ship).await;
    let order = app.wait_for_entry(id, ship.message_id).await;
    assert_eq!(order["shipments"][0]["tracking_number"], "SIM000123");

    let outbox_before = app.count("SELECT count(*) FROM timeline").await;
    let (status, problem) = cancel(&app, id, STAFF, "too late?").await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["status"], "shipped");
    let detail = problem["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("shipped") && detail.contains("SIM000123"),
        "{detail}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM timeline").await,
        outbox_before,
        "a refused cancel leaves nothing behind"
    );

    let (status, problem) = cancel(&app, id, STAFF, " ").await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "reason");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_key_cannot_read_or_cancel_another_shops_order_but_staff_can() {
    let app = App::spawn_with_shops().await;
    let acme = placed_by(&app, ACME, "acme-1").await.order_id;
    let globex = placed_by(&app, GLOBEX, "globex-1").await.order_id;

    let (status, order) = app.get(&format!("/v1/orders/{acme}"), ACME).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["shop"], "acme");
    for path in [
        format!("/v1/orders/{globex}"),
        format!("/v1/orders/{globex}/timeline"),
    ] {
        let (status, problem) = app.get(&path, ACME).await;
        assert_eq!(status, 404, "{path}: {problem}");
    }
    let (status, _) = cancel(&app, globex, ACME, "not mine").await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&format!("/v1/orders/{acme}"), SHOP).await;
    assert_eq!(status, 404, "a key without a name is another shop");

    let (_, list) = app.get("/v1/orders", ACME).await;
    let ids: Vec<&str> = list["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, [acme.to_string()]);

    let (status, _) = app.get(&format!("/v1/orders/{globex}"), STAFF).await;
    assert_eq!(status, 200);
    let (status, body) = cancel(&app, globex, STAFF, "fraud suspected").await;
    assert_eq!(status, 202, "{body}");
    let (_, list) = app.get("/v1/orders", STAFF).await;
    assert_eq!(list["orders"].as_array().map(Vec::len), Some(2));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_order_takes_a_new_payment_method_until_it_is_invoiced() {
    let app = App::spawn().await;
    let placed = placed_by(&app, SHOP, "web-new-card").await;
    let id = placed.order_id;
    let verifying = Envelope::caused_by("verification", &placed, verified(&placed.payload));
    app.publish(&verifying).await;
    let declined = Envelope::caused_by(
        "billing",
        &verifying,
        payment::Failed {
            payment_id: Uuid::now_v7(),
            method: PaymentMethod::Card,
            amount: eur(2500),
            code: "declined".into(),
            message: "the card was declined".into(),
        },
    );
    app.publish(&declined).await;
    let order = app.wait_for_entry(id, declined.message_id).await;
    assert_eq!(order["status"], "on_hold");
    assert_eq!(order["payment"]["state"], "failed");

    let mut changes = app.probe(&["order.payment_method_changed"]).await;
    let path = format!("/v1/orders/{id}/payment-method");
    let (status, problem) = app
        .send(Method::PUT, &path, SHOP, &json!({"method": "card"}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "token");
    let (status, body) = app
        .send(
            Method::PUT,
            &path,
            SHOP,
            &json!({"method": "card", "token": "tok_mastercard"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let change = changes.next_of::<order::PaymentMethodChanged>(WAIT).await;
    assert_eq!(change.order_id, id);
    assert_eq!(
        change.payload.payment.token.as_deref(),
        Some("tok_mastercard")
    );
    let order = app.order(id).await;
    assert_eq!(
        order["payment"],
        json!({"method": "card", "state": "pending"})
    );
    assert!(timeline_types(&order).contains(&"order.payment_method_changed".to_owned()));

    let invoicing = Envelope::caused_by("billing", &placed, crate::following::invoiced());
    app.publish(&invoicing).await;
    let order = app.wait_for_entry(id, invoicing.message_id).await;
    assert_eq!(order["invoice_number"], "INV-2026-000042");
    let (status, problem) = app
        .send(Method::PUT, &path, SHOP, &json!({"method": "invoice"}))
        .await;
    assert_eq!(status, 409, "{problem}");
    app.stop().await;
}
