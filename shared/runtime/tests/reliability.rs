//! The runtime's promises, exercised through a minimal service on the real broker and database:
//! a message written to the outbox survives a crash before it was published; a duplicate
//! delivery changes nothing; a poison message is dead-lettered with its reason while its
//! neighbours are handled.

use std::time::Duration;

use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;
use orderflow_messages::order::Cancelled;
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::testing::{TestEnv, eventually};
use orderflow_runtime::topology::QueueSpec;
use orderflow_runtime::{CancellationToken, HandleError, Handler, Incoming, Service, ServiceSpec};
use sqlx::PgConnection;
use sqlx::migrate::Migrator;
use uuid::Uuid;

static MIGRATOR: Migrator = sqlx::migrate!("./tests/migrations");
const QUEUE: &str = "recorder.orders";
const WAIT: Duration = Duration::from_secs(20);

/// Records every `order.cancelled` it handles; a reason of `poison` is a permanent failure.
struct Recorder;

impl Handler for Recorder {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        let cancelled = msg.decode::<Cancelled>()?;
        if cancelled.reason == "poison" {
            return Err(HandleError::Permanent("the reason is poison".into()));
        }
        sqlx::query("INSERT INTO handled (message_id, reason) VALUES ($1, $2)")
            .bind(msg.envelope.message_id)
            .bind(&cancelled.reason)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "recorder",
        schema: "recorder",
        migrator: &MIGRATOR,
        queues: vec![QueueSpec::new(QUEUE).bind::<Cancelled>()],
    }
}

fn cancelled(reason: &str) -> Envelope<Cancelled> {
    Envelope::new(
        "test",
        Uuid::now_v7(),
        Cancelled {
            reason: reason.into(),
        },
    )
}

async fn handled(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM handled")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivery_changes_nothing() {
    let env = TestEnv::new();
    let service = Service::start(&env.settings, spec()).await.expect("start");
    service.consume(QUEUE, Recorder).expect("consume");
    let pool = service.pool.clone();
    let stop = CancellationToken::new();
    let running = tokio::spawn(
        service
            .bind(axum::Router::new())
            .await
            .expect("bind")
            .run_until_stopped(stop.clone()),
    );

    let (_conn, publisher) = env.publisher().await;
    let once = cancelled("duplicate me");
    for _ in 0..3 {
        publisher.publish(&once, None).await.expect("publish");
    }
    // A batch of distinct messages behind it shows the duplicates did not block anything.
    for i in 0..200 {
        publisher
            .publish(&cancelled(&format!("n{i}")), None)
            .await
            .expect("publish");
    }
    eventually("201 distinct messages handled", WAIT, || {
        let pool = pool.clone();
        async move { handled(&pool).await == 201 }
    })
    .await;
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM handled WHERE message_id = $1")
        .bind(once.message_id)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(copies, 1);
    stop.cancel();
    running.await.expect("join").expect("clean stop");
    assert_eq!(
        handled(&env.pool("recorder").await).await,
        201,
        "nothing more after the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_with_its_reason_and_its_neighbours_are_handled() {
    let env = TestEnv::new();
    let service = Service::start(&env.settings, spec()).await.expect("start");
    service.consume(QUEUE, Recorder).expect("consume");
    let pool = service.pool.clone();
    let stop = CancellationToken::new();
    let running = tokio::spawn(
        service
            .bind(axum::Router::new())
            .await
            .expect("bind")
            .run_until_stopped(stop.clone()),
    );

    let (conn, publisher) = env.publisher().await;
    publisher
        .publish(&cancelled("before"), None)
        .await
        .expect("publish");
    publisher
        .publish(&cancelled("poison"), None)
        .await
        .expect("publish");
    // Not even an envelope.
    publisher
        .publish_raw(
            &env.names().exchange(Exchange::Events),
            "order.cancelled",
            b"{\"this is\": \"not an envelope\"",
            lapin::BasicProperties::default(),
        )
        .await
        .expect("publish raw");
    publisher
        .publish(&cancelled("after"), None)
        .await
        .expect("publish");

    eventually("both good messages handled", WAIT, || {
        let pool = pool.clone();
        async move { handled(&pool).await == 2 }
    })
    .await;
    let channel = conn.create_channel().await.expect("channel");
    let dead_queue = env.names().queue(&format!("{QUEUE}.dead"));
    let mut reasons = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while reasons.len() < 2 && tokio::time::Instant::now() < deadline {
        match channel
            .basic_get(dead_queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
        {
            Some(message) => {
                let headers = message
                    .delivery
                    .properties
                    .headers()
                    .clone()
                    .unwrap_or_default();
                let reason = match headers.inner().get("x-orderflow-reason") {
                    Some(AMQPValue::LongString(s)) => s.to_string(),
                    other => format!("{other:?}"),
                };
                reasons.push(reason);
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("malformed envelope"), "{reasons:?}");
    assert!(reasons[1].contains("poison"), "{reasons:?}");
    stop.cancel();
    running.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_to_the_outbox_is_published_after_a_crash_before_the_relay_ran() {
    let env = TestEnv::new();
    let mut probe = env.probe(&[(Exchange::Events, "order.cancelled")]).await;
    // The process "crashes" right after committing: the state change and its message are in the
    // database, nothing was published.
    let pool = orderflow_runtime::database::connect_and_migrate(
        &env.settings.database,
        "recorder",
        &MIGRATOR,
    )
    .await
    .expect("migrate");
    let message = cancelled("survives the crash");
    let mut tx = pool.begin().await.expect("tx");
    orderflow_runtime::outbox::enqueue(&mut tx, &message, None)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    pool.close().await;

    // The service comes back; its relay finds the row and publishes it.
    let service = Service::start(&env.settings, spec())
        .await
        .expect("restart");
    let pool = service.pool.clone();
    let stop = CancellationToken::new();
    let running = tokio::spawn(
        service
            .bind(axum::Router::new())
            .await
            .expect("bind")
            .run_until_stopped(stop.clone()),
    );
    let received = probe.next_of::<Cancelled>(WAIT).await;
    assert_eq!(received.message_id, message.message_id);
    assert_eq!(received.payload.reason, "survives the crash");
    eventually("the outbox row is removed once confirmed", WAIT, || {
        let pool = pool.clone();
        async move {
            orderflow_runtime::outbox::pending(&pool)
                .await
                .is_ok_and(|n| n == 0)
        }
    })
    .await;
    stop.cancel();
    running.await.expect("join").expect("clean stop");
}
