//! What happens to reserved goods afterwards: cancelled, packed, returned, counted.

use orderflow_messages::Envelope;
use orderflow_messages::order::{
    DeliveryFailed, FulfilmentFailed, OnHold, Packed, Reallocated, ShortLine, Unpacked, Verified,
};
use orderflow_messages::stock::Released;
use orderflow_runtime::testing::eventually;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{ADMIN, App, WAIT, order};

/// `order.packed` for everything `verified` reserved.
fn packed(verified: &Verified) -> Packed {
    serde_json::from_value(json!({
        "groups": [{"warehouse": verified.reservations[0].warehouse, "parcels": [{
            "parcel_id": Uuid::now_v7(), "weight_grams": 1000,
            "dimensions": {"length_mm": 300, "width_mm": 200, "height_mm": 100},
            "lines": verified.reservations.iter().map(|r| json!({
                "line_no": r.line_no, "sku": r.sku, "quantity": r.quantity
            })).collect::<Vec<_>>()
        }]}],
        "ship_to": verified.shipping_address,
        "delivery": verified.delivery,
        "declared_value": verified.subtotal,
    }))
    .expect("a valid order.packed")
}

/// A service with 10 MUG-1 in BER and one verified order holding 4 of them.
async fn with_a_verified_order() -> (App, Envelope<Verified>) {
    let app = App::spawn().await;
    app.product("MUG-1", 1200, "EUR").await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 10).await;
    let mut probe = app.probe(&["order.verified"]).await;
    app.place(order("EUR", &[("MUG-1", 4, 1200)])).await;
    let verified = probe.next_of::<Verified>(WAIT).await;
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 10, 4, 6)]);
    (app, verified)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_releases_its_reserved_stock() {
    let (app, verified) = with_a_verified_order().await;
    let mut probe = app.probe(&["stock.released"]).await;

    app.cancel(verified.order_id).await;

    let released = probe.next_of::<Released>(WAIT).await;
    assert_eq!(released.order_id, verified.order_id);
    assert_eq!(released.payload.reason, "changed my mind");
    assert_eq!(released.payload.reservations, verified.payload.reservations);
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 10, 0, 10)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_order_takes_its_goods_off_the_shelf_and_a_failed_delivery_brings_them_back() {
    let (app, verified) = with_a_verified_order().await;

    let packed = Envelope::caused_by("fulfilment", &verified, packed(&verified.payload));
    app.publish(&packed).await;

    eventually("the packed goods left the shelf", WAIT, || async {
        app.stock("MUG-1").await == vec![("BER".into(), 6, 0, 6)]
    })
    .await;

    // A cancellation after packing changes nothing here.
    app.cancel(verified.order_id).await;
    let failed = DeliveryFailed {
        shipment_id: Uuid::now_v7(),
        status: "return_to_sender".into(),
        reason: "nobody home".into(),
    };
    app.publish(&Envelope::caused_by("shipping", &packed, failed))
        .await;

    eventually("the returned goods are back on the shelf", WAIT, || async {
        app.stock("MUG-1").await == vec![("BER".into(), 10, 0, 10)]
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjustment_cannot_take_stock_below_what_is_reserved() {
    let (app, _verified) = with_a_verified_order().await;
    let adjust = |delta: i64| {
        app.call(
            Method::POST,
            "/v1/warehouses/BER/adjustments",
            Some(ADMIN),
            Some(json!({"sku": "MUG-1", "delta": delta, "reason": "stock count"})),
        )
    };

    let (refused, problem) = adjust(-7).await;
    assert_eq!(refused, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "delta");

    let (accepted, level) = adjust(-6).await;
    assert_eq!(accepted, StatusCode::OK, "{level}");
    assert_eq!(
        (level["on_hand"].as_i64(), level["available"].as_i64()),
        (Some(4), Some(0))
    );
    let mut db = app.env.connect_db("verification").await;
    let booked: (i64, String) = sqlx::query_as(
        "SELECT delta_on_hand, reason FROM stock_movements ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut db)
    .await
    .expect("ledger");
    assert_eq!(booked, (-6, "adjustment: stock count".into()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_decided_before_the_order_arrives_reserves_nothing() {
    let app = App::spawn().await;
    app.product("MUG-1", 1200, "EUR").await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 10).await;
    let mut probe = app.probe(&["order.verified", "order.rejected"]).await;

    let early = Envelope::new(
        "order-intake",
        Uuid::now_v7(),
        order("EUR", &[("MUG-1", 4, 1200)]),
    );
    app.cancel(early.order_id).await;
    app.publish(&early).await;
    let next = app.place(order("EUR", &[("MUG-1", 1, 1200)])).await;

    // Consumed in order: once the next order is verified, the cancelled one was seen.
    assert_eq!(probe.next_of::<Verified>(WAIT).await.order_id, next);
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 10, 1, 9)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unpacked_parcels_of_a_cancelled_order_go_back_on_the_shelf() {
    let (app, verified) = with_a_verified_order().await;
    let packed = Envelope::caused_by("fulfilment", &verified, packed(&verified.payload));
    app.publish(&packed).await;
    eventually("the packed goods left the shelf", WAIT, || async {
        app.stock("MUG-1").await == vec![("BER".into(), 6, 0, 6)]
    })
    .await;

    app.cancel(verified.order_id).await;
    let unpacked = Unpacked {
        groups: packed.payload.groups.clone(),
        reason: "changed my mind".into(),
    };
    app.publish(&Envelope::caused_by(
        "fulfilment",
        &packed,
        unpacked.clone(),
    ))
    .await;
    // A repeat (another message id) puts nothing back twice.
    app.publish(&Envelope::caused_by("fulfilment", &packed, unpacked))
        .await;

    eventually("the unpacked goods are back on the shelf", WAIT, || async {
        app.stock("MUG-1").await == vec![("BER".into(), 10, 0, 10)]
    })
    .await;
    let mut db = app.env.connect_db("verification").await;
    let status: String = sqlx::query_scalar("SELECT status FROM reservations WHERE order_id = $1")
        .bind(verified.order_id)
        .fetch_one(&mut db)
        .await
        .expect("reservation");
    assert_eq!(status, "unpacked");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_pick_corrects_the_stock_and_re_reserves_the_missing_units_elsewhere() {
    let (app, verified) = with_a_verified_order().await;
    app.warehouse("HAM").await;
    app.receive("HAM", "MUG-1", 5).await;
    let mut probe = app.probe(&["order.reallocated", "order.on_hold"]).await;

    // BER found only 1 of the 4 reserved mugs.
    let short = FulfilmentFailed {
        warehouse: "BER".into(),
        missing: vec![ShortLine {
            line_no: 1,
            sku: verified.payload.reservations[0].sku.clone(),
            missing: 3,
        }],
    };
    app.publish(&Envelope::caused_by("fulfilment", &verified, short))
        .await;

    let reallocated = probe.next_of::<Reallocated>(WAIT).await;
    assert_eq!(reallocated.order_id, verified.order_id);
    assert_eq!(reallocated.payload.warehouse, "BER");
    let moved: Vec<_> = reallocated
        .payload
        .reservations
        .iter()
        .map(|r| (r.warehouse.as_str(), r.line_no, r.quantity))
        .collect();
    assert_eq!(moved, vec![("HAM", 1, 3)]);
    // BER never had the 3: on hand 10 → 7, its reservation 4 → 1; HAM holds the other 3.
    assert_eq!(
        app.stock("MUG-1").await,
        vec![("BER".into(), 7, 1, 6), ("HAM".into(), 5, 3, 2)]
    );

    // A second short pick with no stock anywhere else puts the order on hold.
    let short = FulfilmentFailed {
        warehouse: "HAM".into(),
        missing: vec![ShortLine {
            line_no: 1,
            sku: verified.payload.reservations[0].sku.clone(),
            missing: 3,
        }],
    };
    let (status, level) = app
        .call(
            Method::POST,
            "/v1/warehouses/BER/adjustments",
            Some(ADMIN),
            Some(json!({"sku": "MUG-1", "delta": -6, "reason": "breakage"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{level}");
    app.publish(&Envelope::caused_by("fulfilment", &verified, short))
        .await;
    let on_hold = probe.next_of::<OnHold>(WAIT).await.payload;
    assert_eq!(
        (on_hold.stage.as_str(), on_hold.reason.code.as_str()),
        ("verification", "out_of_stock")
    );
    assert_eq!(
        app.stock("MUG-1").await,
        vec![("BER".into(), 1, 1, 0), ("HAM".into(), 2, 0, 2)]
    );
    app.stop().await;
}
