//! A carrier that never creates the label: the request is sent again, then the order is held.

use orderflow_messages::order::OnHold;
use orderflow_messages::shipment::{LabelCreated, Requested};
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::testing::{TestEnv, eventually};
use serde_json::json;

use crate::support::{Running, SENTINEL, SHOP_KEY, WAIT, configure, packed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_without_a_label_is_requested_again_then_its_order_is_held() {
    let mut env = TestEnv::new();
    configure(&mut env, "shipping.label_timeout_ms", json!(400));
    configure(&mut env, "shipping.label_attempts", json!(2));
    configure(&mut env, "shipping.label_check_interval_ms", json!(100));
    // Nobody plays the carrier: requests wait in carrier.sim.
    let running = Running::shipping(env).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::Events, "order.on_hold"),
            (Exchange::Events, SENTINEL),
        ])
        .await;
    let packed = packed("standard", &[("WH-A", &[900])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");

    let first = probe.next_of::<Requested>(WAIT).await;
    let again = probe.next_of::<Requested>(WAIT).await;
    assert_ne!(again.message_id, first.message_id, "a new message");
    assert_eq!(
        again.payload, first.payload,
        "the same request, idempotency key included"
    );
    assert_eq!(again.causation_id, Some(first.message_id));
    assert_eq!(again.correlation_id, first.correlation_id);

    let held = probe.next_of::<OnHold>(WAIT).await;
    assert_eq!(held.order_id, packed.order_id);
    assert_eq!(held.payload.stage, "shipping");
    assert_eq!(held.payload.reason.code, "carrier_no_label");
    assert!(
        held.payload.reason.message.contains("sim")
            && held
                .payload
                .reason
                .message
                .contains(&first.payload.shipment_id.to_string()),
        "{:?}",
        held.payload.reason
    );

    // Nothing more: no third request, no second hold.
    running.outbox_flushed().await;
    let later = running.drain(&mut probe, Exchange::Events).await;
    assert!(later.is_empty(), "{later:?}");
    let (_, order) = running
        .get(
            &format!("/v1/shipments?order_id={}", packed.order_id),
            SHOP_KEY,
        )
        .await;
    assert!(
        order["hold_reason"]
            .as_str()
            .is_some_and(|r| r.contains("no label")),
        "{order}"
    );
    assert_eq!(order["shipments"][0]["label_attempts"], 2);
    assert_eq!(order["shipments"][0]["status"], "requested");

    // The label comes after all: the shipment carries on.
    let label = Envelope::caused_by(
        "test-carrier",
        &again,
        LabelCreated {
            shipment_id: first.payload.shipment_id,
            carrier: "sim".into(),
            tracking_number: "SIM000000000077".into(),
            label_url: "https://labels.example/sim/77.pdf".into(),
        },
    );
    running
        .publisher
        .publish(&label, Some("sim"))
        .await
        .expect("publish");
    eventually("the late label is recorded", WAIT, || async {
        let (_, shipment) = running
            .get(
                &format!("/v1/shipments/{}", first.payload.shipment_id),
                SHOP_KEY,
            )
            .await;
        shipment["status"] == "label_created" && shipment["tracking_number"] == "SIM000000000077"
    })
    .await;
    running.stop().await;
}
