//! The simulated warehouse.

use orderflow_messages::order;
use orderflow_runtime::testing::TestEnv;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_warehouse_picks_customises_and_packs_after_its_delays() {
    let env = TestEnv::new();
    let settings = settings(
        &env,
        &[
            ("pick_delay_ms", "300"),
            ("task_delay_ms", "300"),
            ("pack_delay_ms", "300"),
        ],
    );
    let mut service = Fulfilment::start(&env, &settings).await;

    let input = service
        .verify(verified(
            &[
                (1, "MUG", 2, 700, &["engraving: Ann"]),
                (2, "TEA", 1, 300, &[]),
            ],
            &[("berlin", 1, 2), ("berlin", 2, 1)],
        ))
        .await;
    // The delays hold the work back, without holding back the consumer.
    let list = service.open_pick_list("berlin", input.order_id).await;
    assert_eq!(list["mode"], "automatic");
    assert_eq!(list["tasks"][0]["customisation"], "engraving: Ann");

    let packed = service.probe.next_of::<order::Packed>(WAIT).await;
    assert_eq!(packed.order_id, input.order_id);
    assert_eq!(packed.causation_id, Some(input.message_id));
    assert_eq!(
        units_per_group(&packed.payload.groups),
        vec![("berlin".to_owned(), 3)]
    );
    let parcel = &packed.payload.groups[0].parcels[0];
    assert_eq!(parcel.weight_grams, 1_700);
    assert!(parcel.dimensions.height_mm > 0);

    let done = service
        .get(&format!("/v1/fulfilments/{}", input.order_id))
        .await;
    assert_eq!(done["status"], "packed");
    let task = &done["pick_lists"][0]["tasks"][0];
    assert_eq!(task["status"], "done");
    assert_eq!(task["completed_by"], "simulated warehouse");
    service.assert_quiet("only one order.packed").await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_hands_a_manual_warehouses_open_pick_lists_to_the_simulator() {
    let env = TestEnv::new();
    let settings = settings(&env, &[("default_mode", "manual")]);
    let mut service = Fulfilment::start(&env, &settings).await;
    let input = service
        .verify(verified(&[(1, "MUG", 1, 500, &[])], &[("leipzig", 1, 1)]))
        .await;
    let list = service.open_pick_list("leipzig", input.order_id).await;
    assert_eq!(list["mode"], "manual");

    let (status, _) = service
        .call(
            reqwest::Method::PUT,
            "/v1/warehouses/leipzig/mode",
            STAFF,
            Some(json!({"mode": "automatic"})),
        )
        .await;
    assert_eq!(status, 403, "only admins switch modes");
    let (status, body) = service
        .call(
            reqwest::Method::PUT,
            "/v1/warehouses/leipzig/mode",
            ADMIN,
            Some(json!({"mode": "sometimes"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "mode");
    let (status, body) = service
        .call(
            reqwest::Method::PUT,
            "/v1/warehouses/leipzig/mode",
            ADMIN,
            Some(json!({"mode": "automatic"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let packed = service.probe.next_of::<order::Packed>(WAIT).await;
    assert_eq!(packed.order_id, input.order_id);
    let warehouses = service.get("/v1/warehouses").await;
    assert_eq!(warehouses["default_mode"], "manual");
    assert_eq!(
        warehouses["warehouses"][0],
        json!({"warehouse": "leipzig", "mode": "automatic", "source": "api",
               "open_pick_lists": 0, "open_tasks": 0})
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_simulated_warehouse_and_pack_each_order_once() {
    let env = TestEnv::new();
    let settings = settings(
        &env,
        &[
            ("pick_delay_ms", "100"),
            ("task_delay_ms", "100"),
            ("pack_delay_ms", "100"),
        ],
    );
    let mut first = Fulfilment::start(&env, &settings).await;
    let second = Fulfilment::start(&env, &settings).await;
    let mut orders = std::collections::BTreeSet::new();
    for i in 0..20 {
        let replica = if i % 2 == 0 { &first } else { &second };
        let input = replica
            .verify(verified(
                &[(1, "MUG", 2, 700, &["gift wrap"])],
                &[("berlin", 1, 1), ("hamburg", 1, 1)],
            ))
            .await;
        orders.insert(input.order_id);
    }
    let mut packed = std::collections::BTreeSet::new();
    while packed.len() < orders.len() {
        let next = first.probe.next_of::<order::Packed>(WAIT).await;
        assert_eq!(units_per_group(&next.payload.groups).len(), 2);
        assert!(
            packed.insert(next.order_id),
            "{} packed twice",
            next.order_id
        );
    }
    assert_eq!(packed, orders);
    first.assert_quiet("every order packed once").await;
    second.stop().await;
    first.stop().await;
}
