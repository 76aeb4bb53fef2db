//! The simulated carrier's own behaviour: outcomes by chance, and cancellation while it waits.

use orderflow_messages::order::{CancelRequested, DeliveryFailed};
use orderflow_messages::shipment::{
    self, LabelCreated, Requested, TrackingStatus, TrackingUpdated,
};
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::testing::{TestEnv, eventually};

use crate::support::{Running, SHOP_KEY, WAIT, packed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parcel_the_carrier_returns_to_the_sender_fails_the_delivery() {
    let mut env = TestEnv::new();
    env.settings = env
        .settings
        .with("carrier_sim.return_rate", 1.0)
        .expect("settings");
    let running = Running::with_carrier_sim(env).await;
    let mut probe = running
        .env
        .probe(&[(Exchange::Events, "order.delivery_failed")])
        .await;
    let packed = packed("standard", &[("WH-A", &[900])]);

    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");

    let failed = probe.next_of::<DeliveryFailed>(WAIT).await;
    assert_eq!(failed.order_id, packed.order_id);
    assert_eq!(failed.payload.status, "return_to_sender");
    assert!(!failed.payload.reason.is_empty());
    let (_, body) = running
        .get(
            &format!("/v1/shipments?order_id={}", packed.order_id),
            SHOP_KEY,
        )
        .await;
    assert_eq!(body["shipments"][0]["status"], "return_to_sender");
    assert_eq!(
        running
            .count(
                "SELECT count(*) FROM shipping_orders WHERE order_id = $1 \
                 AND delivered_published_at IS NULL",
                packed.order_id
            )
            .await,
        1,
        "a returned order is never delivered"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_carrier_stops_a_shipment_cancelled_before_pick_up() {
    let mut env = TestEnv::new();
    env.settings = env
        .settings
        .with("carrier_sim.label_delay_ms", 600_000)
        .expect("settings");
    let running = Running::with_carrier_sim(env).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::CarrierEvents, "sim.#"),
        ])
        .await;
    let packed = packed("standard", &[("WH-A", &[900])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");
    let request = probe.next_of::<Requested>(WAIT).await;
    let shipment_id = request.payload.shipment_id;

    let cancel = Envelope::new(
        "order-intake",
        packed.order_id,
        CancelRequested {
            reason: "customer changed their mind".into(),
            requested_by: None,
        },
    );
    running
        .publisher
        .publish(&cancel, None)
        .await
        .expect("publish");

    // The carrier is still "printing the label" (for ten minutes) when the cancellation comes.
    let (_, sent) = probe.next(WAIT).await;
    assert!(sent.is::<shipment::CancelRequested>(), "{sent:?}");
    let (_, reply) = probe.next(WAIT).await;
    assert!(!reply.is::<LabelCreated>(), "no label after a cancellation");
    let reply = reply
        .decode::<TrackingUpdated>()
        .expect("a tracking update");
    assert_eq!(reply.shipment_id, shipment_id);
    assert_eq!(reply.status, TrackingStatus::Cancelled);

    eventually("the carrier's cancellation is on record", WAIT, || async {
        let (_, shipment) = running
            .get(&format!("/v1/shipments/{shipment_id}"), SHOP_KEY)
            .await;
        shipment["status"] == "cancelled" && shipment["tracking"][0]["status"] == "cancelled"
    })
    .await;
    running.stop().await;
}
