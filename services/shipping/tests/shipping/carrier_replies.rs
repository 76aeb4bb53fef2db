//! Carriers' replies: the simulated carrier end to end, and replies a carrier gets wrong.

use chrono::{TimeDelta, Utc};
use orderflow_messages::order::{Delivered, Shipped};
use orderflow_messages::shipment::{LabelCreated, Requested, TrackingStatus, TrackingUpdated};
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::testing::{TestEnv, eventually};
use serde_json::Value;

use crate::support::{Running, SENTINEL, SHOP_KEY, WAIT, next_dead_letter, packed};

fn statuses(shipment: &Value) -> Vec<String> {
    shipment["tracking"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["status"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_simulated_carrier_an_order_is_shipped_then_delivered_exactly_once() {
    let running = Running::with_carrier_sim(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Events, "order.shipped"),
            (Exchange::Events, "order.delivered"),
            (Exchange::Events, SENTINEL),
        ])
        .await;
    let packed = packed("express", &[("WH-A", &[1_200]), ("WH-B", &[700, 300])]);
    let order_id = packed.order_id;

    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");

    let shipped = probe.next_of::<Shipped>(WAIT).await;
    assert_eq!(shipped.order_id, order_id);
    assert_eq!(shipped.payload.shipping_method, "express");
    assert_eq!(shipped.payload.shipments.len(), 2);
    for s in &shipped.payload.shipments {
        assert_eq!(s.carrier, "sim");
        assert!(s.tracking_number.starts_with("SIM") && s.tracking_number.len() == 15);
        assert_eq!(
            s.tracking_url.as_deref(),
            Some(format!("https://track.example/sim/{}", s.tracking_number).as_str())
        );
    }
    let delivered = probe.next_of::<Delivered>(WAIT).await;
    assert_eq!(delivered.order_id, order_id);

    eventually("every tracking event is recorded", WAIT, || async {
        running
            .count(
                "SELECT count(*) FROM tracking_events t JOIN shipments s USING (shipment_id) \
                 WHERE s.order_id = $1",
                order_id,
            )
            .await
            == 6
    })
    .await;
    running.outbox_flushed().await;
    let later = running.drain(&mut probe, Exchange::Events).await;
    assert!(
        later
            .iter()
            .all(|e| !e.is::<Shipped>() && !e.is::<Delivered>()),
        "published once each: {later:?}"
    );

    let (status, body) = running
        .get(&format!("/v1/shipments?order_id={order_id}"), SHOP_KEY)
        .await;
    assert_eq!(status, 200, "{body}");
    let shipments = body["shipments"].as_array().cloned().unwrap_or_default();
    assert_eq!(shipments.len(), 2, "{body}");
    for shipment in &shipments {
        assert_eq!(shipment["status"], "delivered");
        assert_eq!(shipment["service_level"], "express");
        assert_eq!(
            statuses(shipment),
            ["in_transit", "out_for_delivery", "delivered"]
        );
        let number = shipment["tracking_number"].as_str().unwrap_or_default();
        assert_eq!(
            shipment["tracking_url"],
            format!("https://track.example/sim/{number}")
        );
        assert!(
            shipment["label_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(".pdf"))
        );
    }
    let id = shipments[0]["shipment_id"].as_str().unwrap_or_default();
    let (status, one) = running.get(&format!("/v1/shipments/{id}"), SHOP_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(one["shipment_id"], id);
    assert_eq!(statuses(&one).len(), 3);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_from_another_carrier_is_dead_lettered_and_the_shipment_is_still_delivered() {
    let running = Running::with_carrier_sim(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::Events, "order.delivered"),
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

    // A carrier called acme claims the sim's shipment.
    let impostor = Envelope::caused_by(
        "acme-adapter",
        &request,
        LabelCreated {
            shipment_id,
            carrier: "acme".into(),
            tracking_number: "ACME-1".into(),
            label_url: "https://acme.example/label.pdf".into(),
        },
    );
    running
        .publisher
        .publish(&impostor, Some("acme"))
        .await
        .expect("publish as acme");

    let (reason, dead) = next_dead_letter(&running.env, "shipping.carrier-events").await;
    assert_eq!(dead.message_id, impostor.message_id);
    assert!(
        reason.contains("acme") && reason.contains("`sim`"),
        "the reason names both carriers: {reason}"
    );

    let delivered = probe.next_of::<Delivered>(WAIT).await;
    assert_eq!(delivered.order_id, packed.order_id);
    let (_, shipment) = running
        .get(&format!("/v1/shipments/{shipment_id}"), SHOP_KEY)
        .await;
    assert_eq!(shipment["status"], "delivered");
    assert!(
        shipment["tracking_number"]
            .as_str()
            .is_some_and(|n| n.starts_with("SIM"))
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_and_out_of_order_tracking_events_do_not_regress_the_shipment() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::Events, "order.shipped"),
            (Exchange::Events, "order.delivered"),
            (Exchange::Events, SENTINEL),
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

    let label = LabelCreated {
        shipment_id,
        carrier: "sim".into(),
        tracking_number: "SIM000000000001".into(),
        label_url: "https://labels.example/sim/1.pdf".into(),
    };
    let picked_up = Utc::now();
    let event = |status, minutes| TrackingUpdated {
        shipment_id,
        carrier: "sim".into(),
        tracking_number: "SIM000000000001".into(),
        status,
        status_at: picked_up + TimeDelta::minutes(minutes),
        location: None,
        description: None,
    };
    let delivered = Envelope::caused_by(
        "test-carrier",
        &request,
        event(TrackingStatus::Delivered, 30),
    );
    let replies = [
        Envelope::caused_by(
            "test-carrier",
            &request,
            event(TrackingStatus::InTransit, 0),
        ),
        delivered.clone(),
        // The carrier repeats delivered under a new message id, then a late scan arrives.
        Envelope::caused_by(
            "test-carrier",
            &request,
            event(TrackingStatus::Delivered, 30),
        ),
        Envelope::caused_by(
            "test-carrier",
            &request,
            event(TrackingStatus::OutForDelivery, 20),
        ),
        Envelope::caused_by(
            "test-carrier",
            &request,
            event(TrackingStatus::InTransit, 5),
        ),
        // And the broker delivers one message twice.
        delivered,
    ];
    let label = Envelope::caused_by("test-carrier", &request, label);
    running
        .publisher
        .publish(&label, Some("sim"))
        .await
        .expect("publish");
    for reply in &replies {
        running
            .publisher
            .publish(reply, Some("sim"))
            .await
            .expect("publish");
    }

    eventually("every reply is handled", WAIT, || async {
        running
            .total("SELECT count(*) FROM inbox WHERE consumer = 'shipping.carrier-events'")
            .await
            == 6
    })
    .await;
    running.outbox_flushed().await;
    let published = running.drain(&mut probe, Exchange::Events).await;
    let shipped = published.iter().filter(|e| e.is::<Shipped>()).count();
    let delivered: Vec<_> = published.iter().filter(|e| e.is::<Delivered>()).collect();
    assert_eq!((shipped, delivered.len()), (1, 1), "{published:?}");
    let first_shipped = published.iter().position(|e| e.is::<Shipped>());
    let first_delivered = published.iter().position(|e| e.is::<Delivered>());
    assert!(
        first_shipped < first_delivered,
        "shipped comes before delivered"
    );
    let at = delivered[0]
        .decode::<Delivered>()
        .expect("order.delivered")
        .delivered_at;
    assert_eq!(
        at.timestamp(),
        (picked_up + TimeDelta::minutes(30)).timestamp()
    );

    let (_, shipment) = running
        .get(&format!("/v1/shipments/{shipment_id}"), SHOP_KEY)
        .await;
    assert_eq!(shipment["status"], "delivered");
    assert_eq!(
        statuses(&shipment),
        ["in_transit", "in_transit", "out_for_delivery", "delivered"]
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_fails_validation_is_dead_lettered_and_the_carriers_next_replies_count() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Carriers, "sim"),
            (Exchange::Events, "order.delivered"),
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

    // A status outside the vocabulary.
    let mut broken = serde_json::to_value(Envelope::caused_by(
        "test-carrier",
        &request,
        TrackingUpdated {
            shipment_id,
            carrier: "sim".into(),
            tracking_number: "SIM000000000009".into(),
            status: TrackingStatus::InTransit,
            status_at: Utc::now(),
            location: None,
            description: None,
        },
    ))
    .expect("json");
    broken["payload"]["status"] = "teleported".into();
    let body = serde_json::to_vec(&broken).expect("json");
    running
        .publisher
        .publish_raw(
            &running.env.names().exchange(Exchange::CarrierEvents),
            "sim.shipment.tracking_updated",
            &body,
            lapin::BasicProperties::default(),
        )
        .await
        .expect("publish");

    let (reason, dead) = next_dead_letter(&running.env, "shipping.carrier-events").await;
    assert_eq!(dead.payload["status"], "teleported");
    assert!(
        reason.contains("shipment.tracking_updated") && reason.contains("teleported"),
        "the reason names the message and the value: {reason}"
    );

    let delivered = TrackingUpdated {
        shipment_id,
        carrier: "sim".into(),
        tracking_number: "SIM000000000009".into(),
        status: TrackingStatus::Delivered,
        status_at: Utc::now(),
        location: None,
        description: None,
    };
    let label = LabelCreated {
        shipment_id,
        carrier: "sim".into(),
        tracking_number: "SIM000000000009".into(),
        label_url: "https://labels.example/9.pdf".into(),
    };
    for reply in [
        Envelope::caused_by("test-carrier", &request, label).to_json(),
        Envelope::caused_by("test-carrier", &request, delivered).to_json(),
    ] {
        let key = format!("sim.{}", reply["type"].as_str().unwrap_or_default());
        running
            .publisher
            .publish_raw(
                &running.env.names().exchange(Exchange::CarrierEvents),
                &key,
                &serde_json::to_vec(&reply).expect("json"),
                lapin::BasicProperties::default(),
            )
            .await
            .expect("publish");
    }
    let done = probe.next_of::<Delivered>(WAIT).await;
    assert_eq!(done.order_id, packed.order_id);
    running.stop().await;
}
