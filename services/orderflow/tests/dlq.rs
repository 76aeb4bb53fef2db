//! `orderflow dlq` against the real broker: dead letters of both kinds (ours, with a reason,
//! and the broker's, after a reject) are listed without being consumed, shown, replayed to
//! where they came from, and purged only when asked with `--yes`.

#[path = "support/dead_letters.rs"]
mod dead_letters;
mod support;

use std::time::Duration;

use dead_letters::{depth, headers, publish};
use lapin::Channel;
use lapin::options::{BasicGetOptions, BasicNackOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use orderflow_messages::Exchange;
use orderflow_runtime::testing::TestEnv;
use support::{declare_topology, orderflow, orderflow_json, stdout};
use uuid::Uuid;

/// The queue holds `n` ready messages (a requeued message takes a moment to count again).
async fn settles(channel: &Channel, queue: &str, n: u32) {
    orderflow_runtime::testing::eventually(
        &format!("{queue} holds {n} messages"),
        Duration::from_secs(10),
        || async { depth(channel, queue).await == n },
    )
    .await;
}

fn letters(list: &serde_json::Value) -> Vec<serde_json::Value> {
    list.as_array().expect("a list").clone()
}

fn find(list: &[serde_json::Value], id: Uuid) -> &serde_json::Value {
    list.iter()
        .find(|l| l["id"] == id.to_string())
        .unwrap_or_else(|| panic!("{id} is not listed in {list:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_without_loss_replayed_where_they_came_from_and_purged_on_request()
{
    let env = TestEnv::new();
    declare_topology(&env).await;
    let names = env.names();
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let work = names.queue("verification.orders");
    let dead = names.queue("verification.orders.dead");

    // Ours: a consumer gave up with a reason and said where the message had come from.
    let ours = Uuid::now_v7();
    let headers = headers(&[
        ("x-orderflow-reason", "order.placed: missing field `lines`"),
        ("x-orderflow-queue", "verification.orders"),
        ("x-orderflow-deliveries", "3"),
        ("x-orderflow-routing-key", "order.placed"),
        ("x-orderflow-exchange", &names.exchange(Exchange::Events)),
    ]);
    publish(
        &channel,
        &names.exchange(Exchange::DeadLetters),
        &work,
        ours,
        headers,
    )
    .await;

    // The broker's: a message rejected without requeue is dead-lettered with `x-death`.
    let rejected = Uuid::now_v7();
    publish(
        &channel,
        &names.exchange(Exchange::Events),
        "order.placed",
        rejected,
        FieldTable::default(),
    )
    .await;
    let got = channel
        .basic_get(work.as_str().into(), BasicGetOptions { no_ack: false })
        .await
        .expect("get")
        .expect("the published message");
    channel
        .basic_nack(
            got.delivery.delivery_tag,
            BasicNackOptions {
                multiple: false,
                requeue: false,
            },
        )
        .await
        .expect("reject");
    orderflow_runtime::testing::eventually(
        "the broker dead-letters the rejected message",
        Duration::from_secs(10),
        || async { depth(&channel, &dead).await == 2 },
    )
    .await;

    // Listing twice shows both, with reason, origin and deliveries, and leaves them in place.
    for _ in 0..2 {
        let list = letters(&orderflow_json(&env, &["dlq", "list", "--json"]).await);
        assert_eq!(list.len(), 2, "{list:?}");
        let mine = find(&list, ours);
        assert_eq!(mine["reason"], "order.placed: missing field `lines`");
        assert_eq!(mine["original_queue"], "verification.orders");
        assert_eq!(mine["routing_key"], "order.placed");
        assert_eq!(mine["deliveries"], 3);
        let theirs = find(&list, rejected);
        assert_eq!(theirs["reason"], "rejected");
        assert_eq!(theirs["original_queue"], "verification.orders");
        assert_eq!(theirs["routing_key"], "order.placed");
        assert_eq!(theirs["deliveries"], 1);
    }
    settles(&channel, &dead, 2).await;
    let table = stdout(&orderflow(&env, &["dlq", "list"]).await);
    assert!(
        table.contains("missing field `lines`") && table.contains("2 dead letter(s)"),
        "{table}"
    );

    let shown = orderflow(&env, &["dlq", "show", &ours.to_string()]).await;
    assert!(shown.status.success());
    assert!(
        stdout(&shown).contains(&format!(r#"{{\"probe\":\"{ours}\"}}"#)),
        "{}",
        stdout(&shown)
    );
    let unknown = orderflow(&env, &["dlq", "show", &Uuid::now_v7().to_string()]).await;
    assert!(!unknown.status.success(), "an unknown id is an error");

    // Replaying one puts it back on its original route, without the dead-letter headers.
    let replayed = orderflow(&env, &["dlq", "replay", &ours.to_string()]).await;
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    settles(&channel, &dead, 1).await;
    let back = channel
        .basic_get(work.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get")
        .expect("the replayed message is in its queue again");
    assert_eq!(
        back.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string()),
        Some(ours.to_string())
    );
    let headers = back
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    assert!(!headers.inner().contains_key("x-orderflow-reason"));

    // Purging asks first; `--yes` empties every dead-letter queue.
    let refused = orderflow(&env, &["dlq", "purge"]).await;
    assert!(!refused.status.success());
    settles(&channel, &dead, 1).await;
    let purged = orderflow(&env, &["dlq", "purge", "--yes"]).await;
    assert!(purged.status.success());
    settles(&channel, &dead, 0).await;
    assert!(letters(&orderflow_json(&env, &["dlq", "list", "--json"]).await).is_empty());
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_dead_letter_returns_broker_dead_letters_to_their_first_route() {
    let env = TestEnv::new();
    declare_topology(&env).await;
    let names = env.names();
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let work = names.queue("billing.orders");
    let dead = names.queue("billing.orders.dead");
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for id in &ids {
        publish(
            &channel,
            &names.exchange(Exchange::Events),
            "order.delivered",
            *id,
            FieldTable::default(),
        )
        .await;
    }
    for _ in &ids {
        let got = channel
            .basic_get(work.as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .expect("get")
            .expect("a message");
        channel
            .basic_nack(
                got.delivery.delivery_tag,
                BasicNackOptions {
                    multiple: false,
                    requeue: false,
                },
            )
            .await
            .expect("reject");
    }
    orderflow_runtime::testing::eventually(
        "three dead letters",
        Duration::from_secs(10),
        || async { depth(&channel, &dead).await == 3 },
    )
    .await;

    let replayed = orderflow(&env, &["dlq", "replay", "--all"]).await;
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(
        stdout(&replayed).contains("replayed 3"),
        "{}",
        stdout(&replayed)
    );
    settles(&channel, &dead, 0).await;
    settles(&channel, &work, 3).await;
    let _ = connection.close(200, "done".into()).await;
}

/// RabbitMQ 4 gives a quorum queue without a limit of its own 20 deliveries, and every listing
/// counts one: before `.dead` queues had an explicit limit, the 21st `dlq list` found nothing.
/// Three dead letters listed 50 times are all still there, and replay where they came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_listed_fifty_times_are_all_still_there_and_replay_afterwards() {
    let env = TestEnv::new();
    declare_topology(&env).await;
    let names = env.names();
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let work = names.queue("verification.orders");
    let dead = names.queue("verification.orders.dead");
    let events = names.exchange(Exchange::Events);
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for id in &ids {
        let headers = headers(&[
            ("x-orderflow-reason", "order.placed: missing field `lines`"),
            ("x-orderflow-queue", "verification.orders"),
            ("x-orderflow-deliveries", "1"),
            ("x-orderflow-routing-key", "order.placed"),
            ("x-orderflow-exchange", &events),
        ]);
        publish(
            &channel,
            &names.exchange(Exchange::DeadLetters),
            &work,
            *id,
            headers,
        )
        .await;
    }
    settles(&channel, &dead, 3).await;

    for round in 1..=50 {
        let list = letters(&orderflow_json(&env, &["dlq", "list", "--json"]).await);
        assert_eq!(list.len(), 3, "listing {round} of 50: {list:?}");
    }
    settles(&channel, &dead, 3).await;

    let replayed = orderflow(&env, &["dlq", "replay", "--all"]).await;
    assert!(
        stdout(&replayed).contains("replayed 3"),
        "{}{}",
        stdout(&replayed),
        String::from_utf8_lossy(&replayed.stderr)
    );
    settles(&channel, &dead, 0).await;
    settles(&channel, &work, 3).await;
    let _ = connection.close(200, "done".into()).await;
}

/// A `.dead` queue an earlier release made has no delivery limit, and the broker refuses to
/// declare it again with one: the service still starts, keeps the queue and its letters, and
/// warns (the definitions' policy covers such queues on RabbitMQ 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_queue_of_an_earlier_release_is_kept_with_its_letters() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, LongString};
    use orderflow_runtime::topology::{self, QueueSpec};

    let env = TestEnv::new();
    let names = env.names();
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    topology::declare_exchanges(&channel, &names)
        .await
        .expect("exchanges");
    let spec = QueueSpec::new("fulfilment.orders");
    let dead = names.queue(&spec.dead_letter_name());
    let mut old_arguments = FieldTable::default();
    old_arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    channel
        .queue_declare(
            dead.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            old_arguments,
        )
        .await
        .expect("the earlier release's dead-letter queue");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    publish(&channel, "", &dead, Uuid::now_v7(), FieldTable::default()).await;
    settles(&channel, &dead, 1).await;

    topology::declare_queue(&connection, &names, &spec, 10)
        .await
        .expect("declaring over the earlier queue succeeds");
    settles(&channel, &dead, 1).await;
    assert_eq!(depth(&channel, &names.queue(&spec.name)).await, 0);
    let _ = connection.close(200, "done".into()).await;
}
