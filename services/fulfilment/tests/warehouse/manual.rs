//! Staff working a manual warehouse through the API: picks, tasks, parcels, short picks, and a
//! split shipment with an automatic warehouse.

use orderflow_messages::order;
use orderflow_messages::{Envelope, order::Reservation, types::Sku};
use orderflow_runtime::testing::TestEnv;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_warehouse_packs_only_what_staff_pick_and_close() {
    let env = TestEnv::new();
    let settings = settings(&env, &[("warehouses.berlin", "manual")]);
    let mut service = Fulfilment::start(&env, &settings).await;
    let input = service
        .verify(verified(&[(1, "MUG", 3, 700, &[])], &[("berlin", 1, 3)]))
        .await;
    let list = service.open_pick_list("berlin", input.order_id).await;
    assert_eq!(list["mode"], "manual");
    assert_eq!(list["status"], "open");
    assert_eq!(list["lines"][0]["quantity"], 3);
    let id = list["id"].as_str().expect("pick list id").to_owned();
    service
        .assert_quiet("nothing is packed before staff work")
        .await;
    for query in ["limit=lots", "limit=0", "status=lost"] {
        let (status, body) = service
            .call(
                reqwest::Method::GET,
                &format!("/v1/warehouses/berlin/pick-lists?{query}"),
                STAFF,
                None,
            )
            .await;
        assert_eq!(status, 422, "{query}: {body}");
    }

    let parcel = json!({"lines": [{"line_no": 1, "quantity": 2}]});
    let (status, body) = service
        .post(&format!("/v1/pick-lists/{id}/parcels"), parcel.clone())
        .await;
    assert_eq!(status, 409, "a parcel before the pick: {body}");
    let (status, body) = service
        .post(
            &format!("/v1/pick-lists/{id}/pick"),
            json!({"lines": [{"line_no": 1, "found": 4}]}),
        )
        .await;
    assert_eq!(status, 422, "more found than reserved: {body}");
    assert_eq!(body["errors"][0]["field"], "lines[0].found");

    let (status, body) = service
        .post(
            &format!("/v1/pick-lists/{id}/pick"),
            json!({"lines": [{"line_no": 1, "found": 3}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "picked");
    let (status, body) = service
        .post(&format!("/v1/pick-lists/{id}/parcels"), parcel)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["parcel"]["weight_grams"], 1400);
    assert_eq!(body["pick_list_status"], "picked");
    service.assert_quiet("one unit is still unpacked").await;

    let (status, body) = service
        .post(
            &format!("/v1/pick-lists/{id}/parcels"),
            json!({"lines": [{"line_no": 1, "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, 422, "only one unit is left: {body}");
    let (status, body) = service
        .post(
            &format!("/v1/pick-lists/{id}/parcels"),
            json!({"lines": [{"line_no": 1, "quantity": 1}], "weight_grams": 750,
                   "dimensions": {"length_mm": 200, "width_mm": 150, "height_mm": 100}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["pick_list_status"], "packed");

    let packed = service.probe.next_of::<order::Packed>(WAIT).await;
    assert_eq!(packed.order_id, input.order_id);
    let weights: Vec<u32> = packed.payload.groups[0]
        .parcels
        .iter()
        .map(|p| p.weight_grams)
        .collect();
    assert_eq!(weights, vec![1400, 750]);
    assert_eq!(
        packed.payload.groups[0].parcels[1].dimensions.length_mm,
        200
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customisation_tasks_must_be_done_before_packing() {
    let env = TestEnv::new();
    let settings = settings(&env, &[("default_mode", "manual")]);
    let mut service = Fulfilment::start(&env, &settings).await;
    let input = service
        .verify(verified(
            &[
                (1, "MUG", 1, 700, &["engraving: Ann", "gift wrap"]),
                (2, "TEA", 1, 300, &[]),
            ],
            &[("berlin", 1, 1), ("berlin", 2, 1)],
        ))
        .await;
    let list = service.open_pick_list("berlin", input.order_id).await;
    let id = list["id"].as_str().expect("pick list id").to_owned();
    let tasks = service.get("/v1/warehouses/berlin/tasks").await;
    let tasks = tasks["tasks"].as_array().expect("tasks").clone();
    let kinds: Vec<_> = tasks.iter().map(|t| t["customisation"].clone()).collect();
    assert_eq!(kinds, vec![json!("engraving: Ann"), json!("gift wrap")]);
    let task_ids: Vec<String> = tasks
        .iter()
        .map(|t| t["id"].as_str().expect("task id").to_owned())
        .collect();

    let (status, body) = service
        .post(&format!("/v1/tasks/{}/complete", task_ids[0]), json!({}))
        .await;
    assert_eq!(status, 409, "the mug is not picked yet: {body}");
    let (status, _) = service
        .post(
            &format!("/v1/pick-lists/{id}/pick"),
            json!({"lines": [{"line_no": 1, "found": 1}, {"line_no": 2, "found": 1}]}),
        )
        .await;
    assert_eq!(status, 200);
    let everything =
        json!({"lines": [{"line_no": 1, "quantity": 1}, {"line_no": 2, "quantity": 1}]});
    let (status, body) = service
        .post(&format!("/v1/pick-lists/{id}/parcels"), everything.clone())
        .await;
    assert_eq!(status, 409, "tasks are open: {body}");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("2 customisation task(s)")
    );

    for task in &task_ids {
        let (status, body) = service
            .post(&format!("/v1/tasks/{task}/complete"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "done");
        assert_eq!(body["completed_by"], "staff");
    }
    let (status, _) = service
        .post(&format!("/v1/tasks/{}/complete", task_ids[0]), json!({}))
        .await;
    assert_eq!(status, 200, "completing twice is harmless");
    let open = service.get("/v1/warehouses/berlin/tasks").await;
    assert_eq!(open["tasks"], json!([]));
    let (status, body) = service
        .post(&format!("/v1/pick-lists/{id}/parcels"), everything)
        .await;
    assert_eq!(status, 201, "{body}");
    let packed = service.probe.next_of::<order::Packed>(WAIT).await;
    assert_eq!(packed.order_id, input.order_id);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_from_two_warehouses_becomes_a_split_shipment_once_both_are_packed() {
    let env = TestEnv::new();
    // Berlin is simulated and packs at once; Hamburg waits for its staff.
    let settings = settings(&env, &[("warehouses.hamburg", "manual")]);
    let mut service = Fulfilment::start(&env, &settings).await;
    let input = service
        .verify(verified(
            &[(1, "MUG", 2, 700, &[]), (2, "TEA", 1, 300, &[])],
            &[("berlin", 1, 2), ("hamburg", 2, 1)],
        ))
        .await;
    let list = service.open_pick_list("hamburg", input.order_id).await;
    let id = list["id"].as_str().expect("pick list id").to_owned();
    let berlin_packed = service
        .get(&format!("/v1/fulfilments/{}", input.order_id))
        .await;
    assert_eq!(berlin_packed["status"], "picking");
    assert_eq!(berlin_packed["pick_lists"][0]["warehouse"], "berlin");
    assert_eq!(berlin_packed["pick_lists"][0]["status"], "packed");
    service.assert_quiet("Hamburg has not packed yet").await;

    let (status, _) = service
        .post(
            &format!("/v1/pick-lists/{id}/pick"),
            json!({"lines": [{"line_no": 2, "found": 1}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = service
        .post(
            &format!("/v1/pick-lists/{id}/parcels"),
            json!({"lines": [{"line_no": 2, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 201);

    let packed = service.probe.next_of::<order::Packed>(WAIT).await;
    assert_eq!(packed.order_id, input.order_id);
    assert_eq!(
        units_per_group(&packed.payload.groups),
        vec![("berlin".to_owned(), 2), ("hamburg".to_owned(), 1)]
    );
    service.assert_quiet("order.packed once").await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_pick_reports_the_missing_units_and_their_reallocation_is_packed_elsewhere() {
    let env = TestEnv::new();
    let settings = settings(&env, &[("warehouses.berlin", "manual")]);
    let mut service = Fulfilment::start(&env, &settings).await;
    let input = service
        .verify(verified(
            &[(1, "MUG", 2, 700, &[]), (2, "TEA", 1, 300, &[])],
            &[("berlin", 1, 2), ("berlin", 2, 1)],
        ))
        .await;
    let list = service.open_pick_list("berlin", input.order_id).await;
    let id = list["id"].as_str().expect("pick list id").to_owned();
    let (status, body) = service
        .post(
            &format!("/v1/pick-lists/{id}/pick"),
            json!({"lines": [{"line_no": 1, "found": 1}, {"line_no": 2, "found": 1}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let failed = service.probe.next_of::<order::FulfilmentFailed>(WAIT).await;
    assert_eq!(failed.order_id, input.order_id);
    assert_eq!(failed.causation_id, Some(input.message_id));
    assert_eq!(failed.payload.warehouse, "berlin");
    let missing: Vec<_> = failed
        .payload
        .missing
        .iter()
        .map(|m| (m.line_no, m.sku.as_str().to_owned(), m.missing))
        .collect();
    assert_eq!(missing, vec![(1, "MUG".to_owned(), 1)]);

    // What was found is packed, but the order waits for the missing mug.
    let (status, _) = service
        .post(
            &format!("/v1/pick-lists/{id}/parcels"),
            json!({"lines": [{"line_no": 1, "quantity": 1}, {"line_no": 2, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 201);
    let waiting = service.wait_for_status(input.order_id, "short").await;
    assert_eq!(waiting["pick_lists"][0]["awaiting_reallocation"], true);
    service
        .assert_quiet("not packed while a unit is missing")
        .await;

    let reallocated = order::Reallocated {
        warehouse: "berlin".into(),
        reservations: vec![Reservation {
            warehouse: "hamburg".into(),
            line_no: 1,
            sku: Sku::parse("MUG").expect("sku"),
            quantity: 1,
        }],
    };
    service
        .publish(&Envelope::caused_by("verification", &failed, reallocated))
        .await;
    let packed = service.probe.next_of::<order::Packed>(WAIT).await;
    assert_eq!(packed.order_id, input.order_id);
    assert_eq!(
        units_per_group(&packed.payload.groups),
        vec![("berlin".to_owned(), 2), ("hamburg".to_owned(), 1)]
    );
    service.stop().await;
}
