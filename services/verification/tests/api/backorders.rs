//! Orders short of stock that may wait for it: backordered, filled when stock arrives, first
//! come first served, and put on hold when they wait too long.

use orderflow_messages::order::{Backordered, OnHold, Rejected, Verified};
use serde_json::json;

use crate::helpers::{App, WAIT, order};

fn backorderable(price: i64) -> serde_json::Value {
    json!({"name": "Mug", "unit_price": price, "currency": "EUR", "tax_class": "standard",
        "weight_grams": 350, "allow_backorder": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backorder_is_filled_by_a_receipt_first_come_first_served() {
    let app = App::spawn().await;
    app.product_with("MUG-1", backorderable(1200)).await;
    app.product("HAT-1", 2500, "EUR").await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 1).await;
    let mut probe = app
        .probe(&["order.backordered", "order.verified", "order.rejected"])
        .await;

    let first = app.place(order("EUR", &[("MUG-1", 3, 1200)])).await;
    let backordered = probe.next_of::<Backordered>(WAIT).await;
    assert_eq!(backordered.order_id, first);
    assert_eq!(
        (
            backordered.payload.lines[0].line_no,
            backordered.payload.lines[0].missing
        ),
        (1, 2)
    );
    let second = app.place(order("EUR", &[("MUG-1", 2, 1200)])).await;
    assert_eq!(probe.next_of::<Backordered>(WAIT).await.order_id, second);
    // A product that does not allow backorders is rejected instead.
    app.place(order("EUR", &[("HAT-1", 1, 2500)])).await;
    let rejected = probe.next_of::<Rejected>(WAIT).await.payload;
    assert_eq!(rejected.reasons[0].code, "out_of_stock");
    // Nothing is held while waiting; staff see the queue in the order it is served.
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 1, 0, 1)]);
    let (_, waiting) = app
        .call(
            reqwest::Method::GET,
            "/v1/backorders",
            Some(crate::helpers::STAFF),
            None,
        )
        .await;
    let queue: Vec<&str> = waiting["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|b| b["order_id"].as_str())
        .collect();
    assert_eq!(queue, vec![first.to_string(), second.to_string()]);

    // Enough for the first order only: it goes first, the second keeps waiting.
    app.receive("BER", "MUG-1", 3).await;
    let verified = probe.next_of::<Verified>(WAIT).await;
    assert_eq!(verified.order_id, first);
    assert_eq!(verified.correlation_id, first);
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 4, 3, 1)]);

    app.receive("BER", "MUG-1", 1).await;
    assert_eq!(probe.next_of::<Verified>(WAIT).await.order_id, second);
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 5, 5, 0)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backorder_waiting_too_long_goes_on_hold_and_is_still_filled_later() {
    let app = App::spawn_replicas(1, |s| {
        s.with("verification.backorder_hold_after_seconds", 1)
            .and_then(|s| s.with("verification.backorder_recheck_seconds", 1))
            .expect("settings")
    })
    .await;
    app.product_with("MUG-1", backorderable(1200)).await;
    app.warehouse("BER").await;
    let mut probe = app
        .probe(&["order.backordered", "order.on_hold", "order.verified"])
        .await;

    let order_id = app.place(order("EUR", &[("MUG-1", 2, 1200)])).await;
    probe.next_of::<Backordered>(WAIT).await;
    let on_hold = probe.next_of::<OnHold>(WAIT).await;
    assert_eq!(on_hold.order_id, order_id);
    assert_eq!(on_hold.payload.stage, "verification");
    assert_eq!(on_hold.payload.reason.code, "backorder_overdue");

    app.receive("BER", "MUG-1", 2).await;
    assert_eq!(probe.next_of::<Verified>(WAIT).await.order_id, order_id);
    app.stop().await;
}
