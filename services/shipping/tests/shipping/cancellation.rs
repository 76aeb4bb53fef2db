//! Shipping as the cancellation arbiter: cancelled before the hand-over, refused after.

use orderflow_messages::order::{CancelRefused, CancelRequested, Cancelled, Shipped};
use orderflow_messages::shipment::{
    self, LabelCreated, Requested, TrackingStatus, TrackingUpdated,
};
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::testing::TestEnv;
use uuid::Uuid;

use crate::support::{Running, SENTINEL, SHOP_KEY, WAIT, packed};

fn cancel(order_id: Uuid) -> Envelope<CancelRequested> {
    Envelope::new(
        "order-intake",
        order_id,
        CancelRequested {
            reason: "customer changed their mind".into(),
            requested_by: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_before_the_hand_over_cancels_the_order_and_its_shipments() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::Events, "order.cancelled"),
            (Exchange::Events, "order.cancel_refused"),
        ])
        .await;
    let packed = packed("express", &[("WH-A", &[500]), ("WH-B", &[700])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");
    let first = probe.next_of::<Requested>(WAIT).await;
    let _second = probe.next_of::<Requested>(WAIT).await;
    // One shipment already has its label: still in the warehouse, still cancellable.
    let label = LabelCreated {
        shipment_id: first.payload.shipment_id,
        carrier: "sim".into(),
        tracking_number: "SIM000000000001".into(),
        label_url: "https://labels.example/1.pdf".into(),
    };
    running
        .publisher
        .publish(
            &Envelope::caused_by("test-carrier", &first, label),
            Some("sim"),
        )
        .await
        .expect("publish");

    running
        .publisher
        .publish(&cancel(packed.order_id), None)
        .await
        .expect("publish");

    let mut stopped = Vec::new();
    let decided = loop {
        let (_, message) = probe.next(WAIT).await;
        if let Ok(stop) = message.decode::<shipment::CancelRequested>() {
            assert_eq!(stop.reason, "customer changed their mind");
            stopped.push(stop.shipment_id);
        } else if message.is::<Cancelled>() || message.is::<CancelRefused>() {
            break message;
        }
    };
    assert!(decided.is::<Cancelled>(), "{decided:?}");
    assert_eq!(decided.order_id, packed.order_id);
    let cancelled = decided.decode::<Cancelled>().expect("order.cancelled");
    assert_eq!(cancelled.reason, "customer changed their mind");
    // The carrier is told about both, in the same transaction as the decision.
    while stopped.len() < 2 {
        stopped.push(
            probe
                .next_of::<shipment::CancelRequested>(WAIT)
                .await
                .payload
                .shipment_id,
        );
    }
    assert!(stopped.contains(&first.payload.shipment_id));

    let (_, body) = running
        .get(
            &format!("/v1/shipments?order_id={}", packed.order_id),
            SHOP_KEY,
        )
        .await;
    assert_eq!(body["status"], "cancelled");
    assert!(
        body["shipments"]
            .as_array()
            .is_some_and(|l| l.iter().all(|s| s["status"] == "cancelled")),
        "{body}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_after_a_carrier_picked_up_the_parcels_is_refused() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::Events, "order.shipped"),
            (Exchange::Events, "order.cancelled"),
            (Exchange::Events, "order.cancel_refused"),
        ])
        .await;
    let packed = packed("standard", &[("WH-A", &[500])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");
    let request = probe.next_of::<Requested>(WAIT).await;
    let shipment_id = request.payload.shipment_id;
    let label = LabelCreated {
        shipment_id,
        carrier: "sim".into(),
        tracking_number: "SIM000000000002".into(),
        label_url: "https://labels.example/2.pdf".into(),
    };
    let picked_up = TrackingUpdated {
        shipment_id,
        carrier: "sim".into(),
        tracking_number: "SIM000000000002".into(),
        status: TrackingStatus::InTransit,
        status_at: chrono::Utc::now(),
        location: None,
        description: None,
    };
    let label = Envelope::caused_by("test-carrier", &request, label);
    let picked_up = Envelope::caused_by("test-carrier", &request, picked_up);
    running
        .publisher
        .publish(&label, Some("sim"))
        .await
        .expect("publish");
    running
        .publisher
        .publish(&picked_up, Some("sim"))
        .await
        .expect("publish");
    probe.next_of::<Shipped>(WAIT).await;

    running
        .publisher
        .publish(&cancel(packed.order_id), None)
        .await
        .expect("publish");

    let (_, decided) = probe.next(WAIT).await;
    let refused = decided
        .decode::<CancelRefused>()
        .expect("order.cancel_refused");
    assert_eq!(decided.order_id, packed.order_id);
    assert!(
        refused.reason.contains(&shipment_id.to_string()) && refused.reason.contains("in_transit"),
        "the reason names the shipment on its way: {}",
        refused.reason
    );
    let (_, shipment) = running
        .get(&format!("/v1/shipments/{shipment_id}"), SHOP_KEY)
        .await;
    assert_eq!(shipment["status"], "in_transit");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_before_it_was_packed_ships_nothing() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::Carriers, SENTINEL),
            (Exchange::Events, "order.cancelled"),
        ])
        .await;
    let packed = packed("standard", &[("WH-A", &[500])]);
    running
        .publisher
        .publish(&cancel(packed.order_id), None)
        .await
        .expect("publish");
    let cancelled = probe.next_of::<Cancelled>(WAIT).await;
    assert_eq!(cancelled.order_id, packed.order_id);

    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");
    orderflow_runtime::testing::eventually("the packed order is handled", WAIT, || async {
        running
            .count(
                "SELECT count(*) FROM inbox WHERE message_id = $1",
                packed.message_id,
            )
            .await
            == 1
    })
    .await;
    running.outbox_flushed().await;
    let later = running.drain(&mut probe, Exchange::Carriers).await;
    assert!(later.is_empty(), "nothing requested: {later:?}");
    running.stop().await;
}
