//! Carriers and shipping rules: which carrier takes which parcels, and carriers registered
//! while the service runs.

use orderflow_messages::order::OnHold;
use orderflow_messages::shipment::Requested;
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::CancellationToken;
use orderflow_runtime::testing::TestEnv;
use reqwest::Method;
use serde_json::json;

use crate::support::{
    ADMIN_KEY, Running, SHOP_KEY, STAFF_KEY, WAIT, carriers_with, configure, packed_to, take_all,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_pick_the_carrier_by_country_and_weight_and_a_split_order_ships_with_two() {
    let mut env = TestEnv::new();
    configure(
        &mut env,
        "shipping.carriers",
        carriers_with(json!([{"code": "heavy", "name": "Heavy Freight",
            "service_levels": ["freight"],
            "tracking_url_template": "https://heavy.example/t/{tracking_number}"}])),
    );
    configure(
        &mut env,
        "shipping.rules",
        json!([
            {"shipping_method": "standard", "max_weight_grams": 2000, "carrier": "sim", "service_level": "standard"},
            {"shipping_method": "standard", "countries": ["DE", "AT"], "carrier": "heavy", "service_level": "freight"},
            {"shipping_method": "standard", "carrier": "sim", "service_level": "express"}
        ]),
    );
    let running = Running::shipping(env).await;
    let mut probe = running
        .env
        .probe(&[(Exchange::Carriers, "sim"), (Exchange::Carriers, "heavy")])
        .await;

    // To Germany: the light parcels fit the first rule, the heavy ones only the second.
    let split = packed_to(
        "DE",
        "standard",
        &[("WH-A", &[1_200, 800]), ("WH-B", &[5_000])],
    );
    running
        .publisher
        .publish(&split, None)
        .await
        .expect("publish");
    let mut requests = [
        probe.next_of::<Requested>(WAIT).await,
        probe.next_of::<Requested>(WAIT).await,
    ];
    requests.sort_by(|a, b| {
        a.payload
            .ship_from_warehouse
            .cmp(&b.payload.ship_from_warehouse)
    });
    let chosen: Vec<_> = requests
        .iter()
        .map(|r| {
            (
                r.payload.ship_from_warehouse.as_str(),
                r.payload.carrier.as_str(),
                r.payload.service_level.as_str(),
            )
        })
        .collect();
    assert_eq!(
        chosen,
        [("WH-A", "sim", "standard"), ("WH-B", "heavy", "freight")]
    );
    assert!(requests.iter().all(|r| r.order_id == split.order_id));

    // To France nothing but the catch-all takes 5 kg.
    let france = packed_to("FR", "standard", &[("WH-B", &[5_000])]);
    running
        .publisher
        .publish(&france, None)
        .await
        .expect("publish");
    let request = probe.next_of::<Requested>(WAIT).await;
    assert_eq!(request.order_id, france.order_id);
    assert_eq!(
        (
            request.payload.carrier.as_str(),
            request.payload.service_level.as_str()
        ),
        ("sim", "express")
    );

    let (status, body) = running
        .get(
            &format!("/v1/shipments?order_id={}", split.order_id),
            SHOP_KEY,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "shipping");
    let carriers: Vec<_> = body["shipments"]
        .as_array()
        .map(|l| l.iter().filter_map(|s| s["carrier"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(carriers, ["sim", "heavy"], "one shipment per warehouse");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_registered_on_one_replica_takes_the_orders_its_rule_names_on_every_replica() {
    let mut env = TestEnv::new();
    configure(
        &mut env,
        "shipping.rules",
        json!([
            {"shipping_method": "express", "carrier": "acme", "service_level": "next_day"},
            {"shipping_method": "standard", "carrier": "sim", "service_level": "standard"}
        ]),
    );
    let running = Running::shipping(env).await;
    // A second replica of shipping on the same database and queues.
    let other = shipping::build(&running.env.settings)
        .await
        .expect("second replica starts");
    let other_base = format!("http://{}", other.local_addr());
    let stop_other = CancellationToken::new();
    let other_task = tokio::spawn(other.run_until_stopped(stop_other.clone()));
    let mut probe = running
        .env
        .probe(&[(Exchange::Events, "order.on_hold")])
        .await;

    // Before acme exists, its rule matches nothing.
    let early = packed_to("AT", "express", &[("WH-A", &[900])]);
    running
        .publisher
        .publish(&early, None)
        .await
        .expect("publish");
    let held = probe.next_of::<OnHold>(WAIT).await;
    assert_eq!(held.order_id, early.order_id);
    assert_eq!(held.payload.reason.code, "no_shipping_rule");

    let acme = json!({"name": "ACME Parcel", "service_levels": ["next_day"],
        "tracking_url_template": "https://acme.example/track/{tracking_number}",
        "cash_on_delivery": false});
    let body = serde_json::to_vec(&acme).expect("json");
    let (status, _) = running
        .send(
            Method::PUT,
            "/v1/carriers/acme",
            &[("Authorization", STAFF_KEY)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 403, "registering a carrier is for admins");
    let (status, bad) = running
        .send(
            Method::PUT,
            "/v1/carriers/ACME",
            &[("Authorization", ADMIN_KEY)],
            Some(
                serde_json::to_vec(&json!({"name": "", "service_levels": [],
                "tracking_url_template": "https://acme.example"}))
                .expect("json"),
            ),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    let fields: Vec<_> = bad["errors"]
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["code", "name", "service_levels", "tracking_url_template"]
    );

    let (status, created) = running
        .send(
            Method::PUT,
            "/v1/carriers/acme",
            &[("Authorization", ADMIN_KEY)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["code"], "acme");
    let (status, _) = running
        .send(
            Method::PUT,
            "/v1/carriers/acme",
            &[("Authorization", ADMIN_KEY)],
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "registering again updates");

    // The other replica knows acme at once.
    let seen = reqwest::Client::new()
        .get(format!("{other_base}/v1/carriers/acme"))
        .header("Authorization", STAFF_KEY)
        .send()
        .await
        .expect("GET");
    assert_eq!(seen.status().as_u16(), 200);

    // Orders, whichever replica takes them, go to acme's queue, declared by the registration.
    let mut late = Vec::new();
    for _ in 0..4 {
        let order = packed_to("AT", "express", &[("WH-A", &[900])]);
        running
            .publisher
            .publish(&order, None)
            .await
            .expect("publish");
        late.push(order.order_id);
    }
    let mut requests: Vec<Envelope<serde_json::Value>> = Vec::new();
    let until = tokio::time::Instant::now() + WAIT;
    while requests.len() < 4 {
        assert!(
            tokio::time::Instant::now() < until,
            "acme's queue got {} of 4 requests",
            requests.len()
        );
        requests.extend(take_all(&running.env, "carrier.acme").await);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut ordered: Vec<_> = requests
        .iter()
        .map(|r| {
            let request = r.decode::<Requested>().expect("shipment.requested");
            assert_eq!(
                (request.carrier.as_str(), request.service_level.as_str()),
                ("acme", "next_day")
            );
            r.order_id
        })
        .collect();
    ordered.sort();
    late.sort();
    assert_eq!(ordered, late);

    stop_other.cancel();
    other_task
        .await
        .expect("no panic")
        .expect("second replica stopped cleanly");
    running.stop().await;
}
