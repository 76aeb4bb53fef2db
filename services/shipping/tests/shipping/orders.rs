//! Packed and cancelled orders: what shipping asks of carriers, and what the customer sees.

use std::collections::BTreeSet;

use orderflow_messages::order::{CancelRequested, OnHold};
use orderflow_messages::shipment::{self, Requested};
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::testing::{TestEnv, eventually};

use crate::support::{Running, SENTINEL, SHOP_KEY, WAIT, packed, repeated};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_order_becomes_one_shipment_request_per_warehouse_and_a_repeat_adds_none() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[(Exchange::Carriers, "sim"), (Exchange::Carriers, SENTINEL)])
        .await;
    let packed = packed("standard", &[("WH-A", &[1_200, 800]), ("WH-B", &[3_000])]);
    let order_id = packed.order_id;

    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");

    let mut requests = Vec::new();
    for _ in 0..2 {
        requests.push(probe.next_of::<Requested>(WAIT).await);
    }
    let warehouses: BTreeSet<_> = requests
        .iter()
        .map(|r| r.payload.ship_from_warehouse.clone())
        .collect();
    assert_eq!(
        warehouses,
        BTreeSet::from(["WH-A".to_owned(), "WH-B".to_owned()])
    );
    for request in &requests {
        let r = &request.payload;
        assert_eq!(
            (r.carrier.as_str(), r.service_level.as_str()),
            ("sim", "standard")
        );
        assert_eq!(r.order_id, order_id);
        assert_eq!(
            r.idempotency_key,
            format!("{order_id}:{}:request", r.ship_from_warehouse)
        );
        assert_eq!(request.causation_id, Some(packed.message_id));
        assert_eq!(request.correlation_id, packed.correlation_id);
    }
    let a = requests
        .iter()
        .find(|r| r.payload.ship_from_warehouse == "WH-A");
    assert_eq!(a.map(|r| r.payload.parcels.len()), Some(2));
    let declared: i64 = requests
        .iter()
        .map(|r| r.payload.declared_value.amount)
        .sum();
    assert_eq!(
        declared, 10_000,
        "the shares add up to the order's declared value"
    );

    // Fulfilment sends the same order again, as a new message.
    let again = repeated(&packed);
    running
        .publisher
        .publish(&again, None)
        .await
        .expect("publish");
    eventually("the repeated order.packed is handled", WAIT, || async {
        running
            .count(
                "SELECT count(*) FROM inbox WHERE message_id = $1",
                again.message_id,
            )
            .await
            == 1
    })
    .await;
    running.outbox_flushed().await;
    let later = running.drain(&mut probe, Exchange::Carriers).await;
    assert!(
        later.iter().all(|e| !e.is::<Requested>()),
        "no second request: {later:?}"
    );
    let shipments = running
        .count(
            "SELECT count(*) FROM shipments WHERE order_id = $1",
            order_id,
        )
        .await;
    assert_eq!(shipments, 2);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_shipping_method_has_no_rule_is_put_on_hold() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[(Exchange::Events, "order.on_hold")])
        .await;
    let packed = packed("drone", &[("WH-A", &[500])]);

    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");

    let held = probe.next_of::<OnHold>(WAIT).await;
    assert_eq!(held.order_id, packed.order_id);
    assert_eq!(held.payload.stage, "shipping");
    assert_eq!(held.payload.reason.code, "no_shipping_rule");
    assert!(
        held.payload.reason.message.contains("drone"),
        "{:?}",
        held.payload
    );

    let (status, body) = running
        .get(
            &format!("/v1/shipments?order_id={}", packed.order_id),
            SHOP_KEY,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "on_hold");
    assert_eq!(body["shipments"].as_array().map(Vec::len), Some(0));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_order_before_pick_up_cancels_its_shipments_at_the_carrier() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running.env.probe(&[(Exchange::Carriers, "sim")]).await;
    let packed = packed("express", &[("WH-A", &[500])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");
    let request = probe.next_of::<Requested>(WAIT).await;

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

    let stop = probe.next_of::<shipment::CancelRequested>(WAIT).await;
    assert_eq!(stop.payload.shipment_id, request.payload.shipment_id);
    assert_eq!(stop.payload.carrier, "sim");
    assert_eq!(stop.payload.reason, "customer changed their mind");
    let (status, body) = running
        .get(
            &format!("/v1/shipments/{}", request.payload.shipment_id),
            SHOP_KEY,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "cancelled");
    running.stop().await;
}
