//! Refunds: parts of a paid order given back with credit notes in their own gapless series,
//! never more than was paid.

use chrono::Datelike;
use orderflow_messages::payment::{Authorized, Refunded};
use orderflow_messages::types::PaymentMethod;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

async fn refund(app: &App, order_id: Uuid, body: Value) -> (u16, Value) {
    let response = app
        .post(&format!("/v1/orders/{order_id}/refunds"), &body)
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_give_back_lines_and_shipping_and_never_more_than_was_paid() {
    let mut app = spawn_app().await;
    let (order_id, invoice) = paid_card_order(&mut app).await;
    let year = chrono::Utc::now().year();

    // One of the two mugs (line 3: 2 × 12.30 net, 19 %): half the line's 29.28 gross.
    let (status, first) = refund(
        &app,
        order_id,
        json!({"lines": [{"position": 3, "quantity": 1}], "reason": "one mug broken"}),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["credit_note_number"], format!("CN-{year}-000001"));
    assert_eq!(amount(&first["amount"], "EUR"), 1464);

    let (status, too_many) = refund(
        &app,
        order_id,
        json!({"lines": [{"position": 3, "quantity": 2}], "reason": "both"}),
    )
    .await;
    assert_eq!(status, 422, "{too_many}");
    assert!(too_many.to_string().contains("only 1 unit"), "{too_many}");

    let (status, second) = refund(
        &app,
        order_id,
        json!({"lines": [{"position": 3, "quantity": 1}], "shipping": true, "reason": "late"}),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["credit_note_number"], format!("CN-{year}-000002"));
    assert_eq!(amount(&second["amount"], "EUR"), 1464 + 583);

    let (status, _) = refund(&app, order_id, json!({"shipping": true, "reason": "again"})).await;
    assert_eq!(status, 422);
    let (status, _) = refund(
        &app,
        order_id,
        json!({"lines": [{"position": 9, "quantity": 1}], "reason": "no such line"}),
    )
    .await;
    assert_eq!(status, 422);

    // The rest gives back exactly what is left of the 60.79 paid.
    let (status, last) = refund(
        &app,
        order_id,
        json!({"lines": [{"position": 1, "quantity": 1}, {"position": 2, "quantity": 1}],
               "reason": "returned"}),
    )
    .await;
    assert_eq!(status, 201, "{last}");
    assert_eq!(amount(&last["amount"], "EUR"), 6079 - 1464 - 2047);
    assert_eq!(amount(&last["refunded_total"], "EUR"), 6079);
    let (status, _) = refund(
        &app,
        order_id,
        json!({"lines": [{"position": 1, "quantity": 1}], "reason": "once more"}),
    )
    .await;
    assert_eq!(status, 422);

    let note = app
        .get_json(&format!("/v1/invoices/CN-{year}-000002"))
        .await;
    assert_eq!(note["kind"], "credit_note");
    assert_eq!(note["corrects"], invoice.as_str());
    assert_eq!(note["reason"], "late");
    let corrected: Vec<i64> = note["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["corrects_position"].as_i64().expect("position"))
        .collect();
    assert_eq!(corrected, vec![3, 4]);
    for line in note["lines"].as_array().expect("lines") {
        assert_eq!(
            amount(&line["net"], "EUR") + amount(&line["tax"], "EUR"),
            amount(&line["gross"], "EUR")
        );
    }
    app.drain_with_a_marker_order().await;
    let refunded: i64 = app
        .published::<Refunded>(order_id)
        .iter()
        .map(|r| r.amount.amount)
        .sum();
    assert_eq!(refunded, 6079);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_not_yet_received_cannot_be_refunded() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    let order = order(
        "EUR",
        "DE",
        PaymentMethod::Invoice,
        None,
        &[("BOOK-1", "Paperback", 1, 950, "reduced")],
    );
    app.publish(&verified(order_id, &order)).await;
    app.wait_for::<Authorized>(order_id).await;
    app.publish(&delivered(order_id)).await;
    app.wait_for::<orderflow_messages::order::Invoiced>(order_id)
        .await;
    let (status, problem) = refund(
        &app,
        order_id,
        json!({"lines": [{"position": 1, "quantity": 1}], "reason": "returned"}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let (status, _) = refund(
        &app,
        Uuid::now_v7(),
        json!({"shipping": true, "reason": "who?"}),
    )
    .await;
    assert_eq!(status, 404);
    app.stop().await;
}
