//! Deciding placed orders: verified with reservations, or rejected with every reason.

use orderflow_messages::Envelope;
use orderflow_messages::order::{Rejected, Verified};
use orderflow_messages::stock::Low;
use orderflow_runtime::testing::eventually;

use crate::helpers::{App, WAIT, order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_order_is_verified_and_reserves_its_stock() {
    let app = App::spawn().await;
    app.product("MUG-1", 1200, "EUR").await;
    app.product("HAT-1", 2500, "EUR").await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 10).await;
    app.receive("BER", "HAT-1", 2).await;
    let mut probe = app.probe(&["order.verified", "order.rejected"]).await;

    let placed = order("EUR", &[("MUG-1", 3, 1200), ("HAT-1", 1, 2500)]);
    let order_id = app.place(placed.clone()).await;

    let verified = probe.next_of::<Verified>(WAIT).await;
    assert_eq!(verified.order_id, order_id);
    assert_eq!(verified.producer, "verification");
    let v = verified.payload;
    assert_eq!(v.subtotal.amount, 3 * 1200 + 2500);
    assert_eq!(v.lines.len(), 2);
    assert_eq!(
        (
            v.lines[0].name.as_str(),
            v.lines[0].tax_class.as_str(),
            v.lines[0].weight_grams
        ),
        ("Product MUG-1", "standard", 250)
    );
    let served: Vec<_> = v
        .reservations
        .iter()
        .map(|r| (r.warehouse.as_str(), r.line_no, r.quantity))
        .collect();
    assert_eq!(served, vec![("BER", 1, 3), ("BER", 2, 1)]);
    assert_eq!(v.customer, placed.customer);
    assert_eq!(v.shipping_address, placed.shipping_address);
    assert_eq!(v.payment, placed.payment);
    assert_eq!(v.coupon_code.as_deref(), Some("WELCOME"));

    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 10, 3, 7)]);
    assert_eq!(app.stock("HAT-1").await, vec![("BER".into(), 2, 1, 1)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_with_several_faults_is_rejected_with_all_reasons_and_reserves_nothing() {
    let app = App::spawn().await;
    app.product("MUG-1", 1200, "EUR").await;
    app.product("HAT-US", 2500, "USD").await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 10).await;
    app.receive("BER", "HAT-US", 10).await;
    let mut probe = app.probe(&["order.verified", "order.rejected"]).await;

    let order_id = app
        .place(order(
            "EUR",
            &[("GHOST", 1, 100), ("MUG-1", 2, 999), ("HAT-US", 1, 2500)],
        ))
        .await;

    let rejected: Envelope<Rejected> = probe.next_of::<Rejected>(WAIT).await;
    assert_eq!(rejected.order_id, order_id);
    let reasons: Vec<_> = rejected
        .payload
        .reasons
        .iter()
        .map(|r| (r.code.as_str(), r.line_no))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("unknown_sku", Some(1)),
            ("price_mismatch", Some(2)),
            ("currency_mismatch", Some(3)),
        ]
    );
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 10, 0, 10)]);
    assert_eq!(app.stock("HAT-US").await, vec![("BER".into(), 10, 0, 10)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_larger_than_one_warehouse_is_split_across_two() {
    let app = App::spawn().await;
    app.product("MUG-1", 1200, "EUR").await;
    app.warehouse("BER").await;
    app.warehouse("HAM").await;
    app.receive("BER", "MUG-1", 3).await;
    app.receive("HAM", "MUG-1", 4).await;
    let mut probe = app.probe(&["order.verified", "order.rejected"]).await;

    app.place(order("EUR", &[("MUG-1", 6, 1200)])).await;

    let verified = probe.next_of::<Verified>(WAIT).await.payload;
    let served: Vec<_> = verified
        .reservations
        .iter()
        .map(|r| (r.warehouse.as_str(), r.line_no, r.quantity))
        .collect();
    // The one with more stock first, the rest from the other.
    assert_eq!(served, vec![("BER", 1, 2), ("HAM", 1, 4)]);
    assert_eq!(
        app.stock("MUG-1").await,
        vec![("BER".into(), 3, 2, 1), ("HAM".into(), 4, 4, 0)]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_twice_is_decided_once() {
    let app = App::spawn().await;
    app.product("MUG-1", 1200, "EUR").await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 10).await;
    let mut probe = app.probe(&["order.verified", "order.rejected"]).await;

    let placed = order("EUR", &[("MUG-1", 2, 1200)]);
    let first = Envelope::new("order-intake", uuid::Uuid::now_v7(), placed.clone());
    let mut again = Envelope::new("order-intake", first.order_id, placed);
    again.correlation_id = first.correlation_id;
    app.publish(&first).await;
    app.publish(&again).await;
    let next = app.place(order("EUR", &[("MUG-1", 1, 1200)])).await;

    assert_eq!(
        probe.next_of::<Verified>(WAIT).await.order_id,
        first.order_id
    );
    // The queue is consumed in order, so once the next order is decided the duplicate was seen.
    assert_eq!(probe.next_of::<Verified>(WAIT).await.order_id, next);
    eventually("only the two orders hold stock", WAIT, || async {
        app.stock("MUG-1").await == vec![("BER".into(), 10, 3, 7)]
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_repricing_an_order_at_an_old_price_is_verified_at_the_catalogue_price() {
    let app = App::spawn_replicas(1, |s| {
        s.with("verification.price_policy", "reprice")
            .expect("settings")
    })
    .await;
    app.product("MUG-1", 1200, "EUR").await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 10).await;
    let mut probe = app.probe(&["order.verified", "order.rejected"]).await;

    app.place(order("EUR", &[("MUG-1", 2, 999)])).await;

    let verified = probe.next_of::<Verified>(WAIT).await.payload;
    assert_eq!(verified.lines[0].unit_price, 1200);
    assert_eq!(verified.subtotal.amount, 2400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserving_down_to_the_reorder_point_announces_low_stock() {
    let app = App::spawn().await;
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/v1/products/MUG-1",
            Some(crate::helpers::ADMIN),
            Some(
                serde_json::json!({"name": "Mug", "unit_price": 1200, "currency": "EUR",
                "tax_class": "standard", "weight_grams": 350,
                "reorder_point": 5, "reorder_quantity": 40}),
            ),
        )
        .await;
    assert!(status.is_success(), "{body}");
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 8).await;
    let mut probe = app.probe(&["stock.low"]).await;

    let order_id = app.place(order("EUR", &[("MUG-1", 3, 1200)])).await;

    let low = probe.next_of::<Low>(WAIT).await;
    assert_eq!(low.order_id, order_id);
    assert_eq!(
        (
            low.payload.warehouse.as_str(),
            low.payload.available,
            low.payload.reorder_quantity
        ),
        ("BER", 5, 40)
    );
    app.stop().await;
}
