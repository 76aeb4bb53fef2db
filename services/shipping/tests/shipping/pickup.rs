//! The built-in `pickup` carrier: collection in store, confirmed by staff.

use orderflow_messages::Exchange;
use orderflow_messages::order::{Delivered, Shipped};
use orderflow_runtime::testing::TestEnv;
use reqwest::Method;
use serde_json::json;

use crate::support::{Running, SENTINEL, SHOP_KEY, STAFF_KEY, WAIT, configure, packed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_for_collection_is_ready_in_store_and_delivered_when_staff_confirm_it() {
    let mut env = TestEnv::new();
    configure(
        &mut env,
        "shipping.rules",
        json!([{"shipping_method": "pickup", "carrier": "pickup", "service_level": "pickup"}]),
    );
    let running = Running::shipping(env).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Events, "order.shipped"),
            (Exchange::Events, "order.delivered"),
            (Exchange::Events, SENTINEL),
        ])
        .await;
    let packed = packed("pickup", &[("STORE-BERLIN", &[900])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");

    // Ready at once, without a carrier: the order counts as shipped.
    let shipped = probe.next_of::<Shipped>(WAIT).await;
    assert_eq!(shipped.order_id, packed.order_id);
    let reference = &shipped.payload.shipments[0];
    assert_eq!(reference.carrier, "pickup");
    assert!(reference.tracking_number.starts_with("PU"), "{reference:?}");
    let id = reference.shipment_id;
    let (_, shipment) = running.get(&format!("/v1/shipments/{id}"), SHOP_KEY).await;
    assert_eq!(shipment["status"], "available_for_pickup");
    assert_eq!(shipment["tracking"][0]["location"], "STORE-BERLIN");

    let path = format!("/v1/shipments/{id}/collected");
    let (status, _) = running
        .send(Method::POST, &path, &[("Authorization", SHOP_KEY)], None)
        .await;
    assert_eq!(status, 403, "only staff confirm a collection");
    let (status, collected) = running
        .send(Method::POST, &path, &[("Authorization", STAFF_KEY)], None)
        .await;
    assert_eq!(status, 200, "{collected}");
    assert_eq!(collected["status"], "delivered");
    let statuses: Vec<_> = collected["tracking"]
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, ["available_for_pickup", "delivered"]);

    let delivered = probe.next_of::<Delivered>(WAIT).await;
    assert_eq!(delivered.order_id, packed.order_id);

    // Confirming again changes nothing.
    let (status, again) = running
        .send(Method::POST, &path, &[("Authorization", STAFF_KEY)], None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["tracking"].as_array().map(Vec::len), Some(2));
    running.outbox_flushed().await;
    let later = running.drain(&mut probe, Exchange::Events).await;
    assert!(
        later.iter().all(|e| !e.is::<Delivered>()),
        "delivered once, and nothing went to a carrier queue: {later:?}"
    );
    assert!(later.is_empty(), "{later:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_cannot_be_confirmed_for_a_parcel_with_a_carrier() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running.env.probe(&[(Exchange::Carriers, "sim")]).await;
    let packed = packed("standard", &[("WH-A", &[900])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");
    let request = probe
        .next_of::<orderflow_messages::shipment::Requested>(WAIT)
        .await;

    let path = format!("/v1/shipments/{}/collected", request.payload.shipment_id);
    let (status, problem) = running
        .send(Method::POST, &path, &[("Authorization", STAFF_KEY)], None)
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`sim`"))
    );
    let (status, _) = running
        .send(
            Method::POST,
            &format!("/v1/shipments/{}/collected", uuid::Uuid::now_v7()),
            &[("Authorization", STAFF_KEY)],
            None,
        )
        .await;
    assert_eq!(status, 404);
    running.stop().await;
}
