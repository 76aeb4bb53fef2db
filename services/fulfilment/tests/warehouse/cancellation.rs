//! `order.cancelled`: before packing the work stops; after, the parcels are unpacked.

use orderflow_messages::order;
use orderflow_runtime::testing::TestEnv;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_stops_picking_and_is_never_packed() {
    let env = TestEnv::new();
    let settings = settings(&env, &[("default_mode", "manual")]);
    let mut service = Fulfilment::start(&env, &settings).await;
    let input = service
        .verify(verified(
            &[(1, "MUG", 1, 700, &["gift wrap"])],
            &[("berlin", 1, 1)],
        ))
        .await;
    let list = service.open_pick_list("berlin", input.order_id).await;
    let id = list["id"].as_str().expect("pick list id").to_owned();

    service.cancel(input.order_id).await;
    let cancelled = service.wait_for_status(input.order_id, "cancelled").await;
    assert_eq!(cancelled["cancel_reason"], "customer changed their mind");
    assert_eq!(cancelled["pick_lists"][0]["status"], "cancelled");
    assert_eq!(
        cancelled["pick_lists"][0]["tasks"][0]["status"],
        "cancelled"
    );
    let open = service.get("/v1/warehouses/berlin/pick-lists").await;
    assert_eq!(open["pick_lists"], json!([]), "nothing left to pick");
    let (status, _) = service
        .post(
            &format!("/v1/pick-lists/{id}/pick"),
            json!({"lines": [{"line_no": 1, "found": 1}]}),
        )
        .await;
    assert_eq!(status, 409);
    service
        .assert_quiet("neither packed nor unpacked: nothing was announced")
        .await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_that_arrives_first_means_the_order_is_never_packed() {
    let env = TestEnv::new();
    let mut service = Fulfilment::start(&env, &env.settings).await;
    let late = verified(&[(1, "MUG", 1, 700, &[])], &[("berlin", 1, 1)]);
    let order_id = uuid::Uuid::now_v7();
    service.cancel(order_id).await;
    service.wait_for_status(order_id, "cancelled").await;

    service
        .publish(&orderflow_messages::Envelope::new(
            "verification",
            order_id,
            late,
        ))
        .await;
    service
        .assert_quiet("a cancelled order is not packed")
        .await;
    let state = service.wait_for_status(order_id, "cancelled").await;
    assert_eq!(state["pick_lists"], json!([]));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_order_that_is_cancelled_is_unpacked_and_names_its_parcels() {
    let env = TestEnv::new();
    let mut service = Fulfilment::start(&env, &env.settings).await;
    let input = service
        .verify(verified(
            &[(1, "MUG", 2, 700, &[]), (2, "TEA", 1, 300, &[])],
            &[("berlin", 1, 2), ("hamburg", 2, 1)],
        ))
        .await;
    let packed = service.probe.next_of::<order::Packed>(WAIT).await;

    service.cancel(input.order_id).await;
    let unpacked = service.probe.next_of::<order::Unpacked>(WAIT).await;
    assert_eq!(unpacked.order_id, input.order_id);
    assert_eq!(unpacked.payload.groups, packed.payload.groups);
    assert_eq!(unpacked.payload.reason, "customer changed their mind");
    let state = service.wait_for_status(input.order_id, "unpacked").await;
    for list in state["pick_lists"].as_array().expect("pick lists") {
        assert_eq!(list["parcels"][0]["status"], "unpacked");
    }
    service.cancel(input.order_id).await;
    service.assert_quiet("unpacked once").await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_partly_packed_order_puts_its_parcels_back_without_an_announcement() {
    let env = TestEnv::new();
    let settings = settings(&env, &[("warehouses.hamburg", "manual")]);
    let mut service = Fulfilment::start(&env, &settings).await;
    let input = service
        .verify(verified(
            &[(1, "MUG", 2, 700, &[]), (2, "TEA", 1, 300, &[])],
            &[("berlin", 1, 2), ("hamburg", 2, 1)],
        ))
        .await;
    service.open_pick_list("hamburg", input.order_id).await;

    service.cancel(input.order_id).await;
    let state = service.wait_for_status(input.order_id, "cancelled").await;
    let berlin = &state["pick_lists"][0];
    assert_eq!(berlin["warehouse"], "berlin");
    assert_eq!(berlin["parcels"][0]["status"], "unpacked");
    // order.packed never went out: verification still holds the goods as reserved and
    // releases them itself, so no order.unpacked.
    service.assert_quiet("nothing announced").await;
    service.stop().await;
}
