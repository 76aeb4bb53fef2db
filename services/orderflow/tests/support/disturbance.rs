//! The chaos suite's disturbances besides killing: connections closed by the broker, every
//! `order.verified` delivered twice, malformed messages injected, the broker restarted.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use orderflow_messages::Exchange;
use orderflow_runtime::CancellationToken;
use orderflow_runtime::testing::TestEnv;
use orderflow_runtime::topology::Names;
use uuid::Uuid;

use crate::replicas::Figures;

/// Closes this environment's connections from the broker's side every few seconds.
pub async fn close_connections(prefix: String, chaos: CancellationToken, figures: Arc<Figures>) {
    while !chaos.is_cancelled() {
        tokio::select! {
            _ = chaos.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(8)) => {}
        }
        let listed = orderflow_runtime::testing::rabbitmqctl()
            .args(["list_connections", "pid", "client_properties", "-q"])
            .output()
            .await;
        let Ok(listed) = listed else { return };
        let text = String::from_utf8_lossy(&listed.stdout).into_owned();
        let ours: Vec<String> = text
            .lines()
            .filter(|l| l.contains(&format!("\"{prefix}")))
            .filter_map(|l| l.split('\t').next().map(str::to_owned))
            .collect();
        // A few at a time, as a flaky network would.
        for pid in ours.iter().take(4) {
            let closed = orderflow_runtime::testing::rabbitmqctl()
                .args(["close_connection", pid, "chaos: closed by the broker"])
                .output()
                .await;
            if closed.is_ok_and(|o| o.status.success()) {
                figures.closed_connections.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The orders whose `order.verified` the duplicator delivered a second time.
pub type Duplicated = Arc<std::sync::Mutex<HashSet<Uuid>>>;

/// How long the duplicator keeps trying to reconnect after losing its connection (the
/// broker restarting) before it gives up and says so.
const RECONNECT_FOR: Duration = Duration::from_secs(90);

/// The longest the duplicator waits for the broker in one step (copying a message: publish,
/// confirm, ack; opening a connection). When the connection dies between a request and its
/// answer, lapin may never resolve the request; past this the connection counts as lost.
const BROKER_STEP: Duration = Duration::from_secs(10);

/// Delivers every `order.verified` twice: a durable queue of its own sees each and republishes
/// it with the same message id (marked, so the copy is not copied again). The queue outlives
/// the broker restarting and the duplicator's connection, so after a reconnect it finds what
/// arrived meanwhile and nothing is missed; a message it held unacked is redelivered and copied
/// again (harmless: the consumers' inbox skips it). Every wait on the broker is bounded, so the
/// task ends soon after `chaos` is cancelled. Returns the task and the orders whose
/// `order.verified` it copied.
pub async fn duplicate_verified(
    env: &TestEnv,
    chaos: CancellationToken,
    figures: Arc<Figures>,
) -> (tokio::task::JoinHandle<()>, Duplicated) {
    let url = env.settings.amqp.url.expose().to_owned();
    let names = env.names();
    let queue = names.queue("chaos.duplicator");
    let opened = duplicator_consumer(&url, &names, &queue)
        .await
        .expect("the duplicator's queue and consumer");
    let duplicated = Duplicated::default();
    let seen = duplicated.clone();
    let task = tokio::spawn(async move {
        let events = names.exchange(Exchange::Events);
        let (mut connection, mut channel, mut consumer) = opened;
        loop {
            let next = tokio::select! {
                _ = chaos.cancelled() => break,
                next = consumer.next() => next,
                _ = lost(&connection) => None,
            };
            if let Some(Ok(delivery)) = next {
                let copying = copy(&channel, &events, delivery, &figures, &seen);
                if tokio::time::timeout(BROKER_STEP, copying).await.is_ok() {
                    continue;
                }
            }
            // The connection is gone (closed, the broker stopped, or a step got no answer).
            let _ = tokio::time::timeout(BROKER_STEP, connection.close(200, "lost".into())).await;
            match reconnect(&url, &names, &queue, &chaos).await {
                Some(opened) => {
                    (connection, channel, consumer) = opened;
                    figures
                        .duplicator_reconnects
                        .fetch_add(1, Ordering::Relaxed);
                }
                None => break,
            }
        }
        let tidy = async {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
            let _ = connection.close(200, "chaos over".into()).await;
        };
        let _ = tokio::time::timeout(BROKER_STEP, tidy).await;
    });
    (task, duplicated)
}

/// Resolves once `connection` is no longer connected.
async fn lost(connection: &Connection) {
    while connection.status().connected() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Opens the duplicator's connection again, with backoff, for up to [`RECONNECT_FOR`]; `None`
/// if `chaos` ends first or it gives up (and says why).
async fn reconnect(
    url: &str,
    names: &Names,
    queue: &str,
    chaos: &CancellationToken,
) -> Option<(Connection, Channel, Consumer)> {
    let lost = Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        tokio::select! {
            _ = chaos.cancelled() => return None,
            _ = tokio::time::sleep(pause) => {}
        }
        let error =
            match tokio::time::timeout(BROKER_STEP, duplicator_consumer(url, names, queue)).await {
                Ok(Ok(opened)) => return Some(opened),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {BROKER_STEP:?}"),
            };
        if lost.elapsed() > RECONNECT_FOR {
            eprintln!("duplicator: no connection for {RECONNECT_FOR:?}, giving up: {error}");
            return None;
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Republishes `delivery` (unless it is a copy itself) with the same message id, confirmed,
/// then acks it; a copy that is not confirmed is given back to come again.
async fn copy(
    channel: &Channel,
    events: &str,
    delivery: Delivery,
    figures: &Figures,
    seen: &Duplicated,
) {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    if !headers.inner().contains_key("x-chaos-duplicate") {
        headers.insert(
            ShortString::from("x-chaos-duplicate"),
            AMQPValue::Boolean(true),
        );
        let sent = channel
            .basic_publish(
                events.into(),
                "order.verified".into(),
                BasicPublishOptions::default(),
                &delivery.data,
                delivery.properties.clone().with_headers(headers),
            )
            .await;
        let confirmed = match sent {
            Ok(confirm) => confirm.await.is_ok_and(|c| c.is_ack()),
            Err(_) => false,
        };
        if !confirmed {
            // Given back (on a lost channel that happens anyway): it comes again.
            let again = BasicNackOptions {
                requeue: true,
                ..Default::default()
            };
            let _ = delivery.acker.nack(again).await;
            return;
        }
        figures.duplicates.fetch_add(1, Ordering::Relaxed);
        let order = serde_json::from_slice::<serde_json::Value>(&delivery.data)
            .ok()
            .and_then(|v| v["order_id"].as_str().and_then(|s| s.parse().ok()));
        if let (Some(order), Ok(mut seen)) = (order, seen.lock()) {
            seen.insert(order);
        }
    }
    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
}

/// A connection, a confirm-mode channel and a consumer on the duplicator's queue, declared
/// (durable, bound to `order.verified`, removed by the broker 10 minutes after its last use
/// should the test die before deleting it) if it is not there yet.
async fn duplicator_consumer(
    url: &str,
    names: &Names,
    queue: &str,
) -> lapin::Result<(Connection, Channel, Consumer)> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(ShortString::from("x-expires"), AMQPValue::LongInt(600_000));
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            queue.into(),
            names.exchange(Exchange::Events).as_str().into(),
            "order.verified".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel.basic_qos(64, BasicQosOptions::default()).await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "duplicator".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, consumer))
}

/// Malformed messages straight into every work queue; returns their ids and queues.
pub async fn inject_poison(env: &TestEnv) -> Vec<(Uuid, &'static str)> {
    let names = env.names();
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let queues = [
        "order-intake.events",
        "verification.orders",
        "fulfilment.orders",
        "shipping.orders",
        "shipping.carrier-events",
        "billing.orders",
        "carrier.sim",
    ];
    let bodies: [&[u8]; 4] = [
        b"this is not JSON",
        b"{\"type\": \"order.placed\", \"payload\": \xff\xfe}",
        br#"{"type": "order.placed"}"#,
        br#"{"message_id": 42, "type": ["order.placed"], "schema_version": "one"}"#,
    ];
    let mut ids = Vec::new();
    for queue in queues {
        for body in bodies {
            let id = Uuid::now_v7();
            channel
                .basic_publish(
                    "".into(),
                    names.queue(queue).as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    body,
                    BasicProperties::default().with_message_id(id.to_string().into()),
                )
                .await
                .expect("publish")
                .await
                .expect("confirmed");
            ids.push((id, queue));
        }
    }
    let _ = connection.close(200, "injected".into()).await;
    ids
}

/// When the broker's application was told to stop and when it was running again.
pub struct BrokerRestart {
    pub stopped: chrono::DateTime<chrono::Utc>,
    pub started: chrono::DateTime<chrono::Utc>,
}

/// Stops the broker's application (`rabbitmqctl stop_app`: every connection is closed and
/// refused), keeps it stopped for a few seconds and starts it again (`start_app`, which returns
/// once it runs). A failed start is retried; the broker is never left stopped without a panic
/// saying how to start it.
pub async fn restart_broker() -> BrokerRestart {
    let rabbitmqctl = |step: &'static str| async move {
        orderflow_runtime::testing::rabbitmqctl()
            .arg(step)
            .output()
            .await
            .is_ok_and(|o| o.status.success())
    };
    let stopped = chrono::Utc::now();
    assert!(rabbitmqctl("stop_app").await, "rabbitmqctl stop_app failed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for attempt in 1..=3 {
        if rabbitmqctl("start_app").await {
            return BrokerRestart {
                stopped,
                started: chrono::Utc::now(),
            };
        }
        eprintln!("rabbitmqctl start_app failed (attempt {attempt} of 3)");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    panic!("the broker is stopped and `rabbitmqctl start_app` failed: run it by hand");
}
