//! The chaos suite's disturbances besides killing: connections closed by the broker, every
//! `order.verified` delivered twice, malformed messages injected, the broker restarted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use orderflow_messages::Exchange;
use orderflow_runtime::CancellationToken;
use orderflow_runtime::testing::TestEnv;
use tokio::process::Command;
use uuid::Uuid;

use crate::replicas::Figures;

/// Closes this environment's connections from the broker's side every few seconds.
pub async fn close_connections(prefix: String, chaos: CancellationToken, figures: Arc<Figures>) {
    while !chaos.is_cancelled() {
        tokio::select! {
            _ = chaos.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(8)) => {}
        }
        let listed = Command::new("rabbitmqctl")
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
            let closed = Command::new("rabbitmqctl")
                .args(["close_connection", pid, "chaos: closed by the broker"])
                .output()
                .await;
            if closed.is_ok_and(|o| o.status.success()) {
                figures.closed_connections.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Delivers every `order.verified` twice: a private queue sees each and republishes it with
/// the same message id (marked, so the copy is not copied again).
pub async fn duplicate_verified(
    env: &TestEnv,
    chaos: CancellationToken,
    figures: Arc<Figures>,
) -> tokio::task::JoinHandle<()> {
    let names = env.names();
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    let events = names.exchange(Exchange::Events);
    channel
        .queue_bind(
            queue.name().clone(),
            events.as_str().into(),
            "order.verified".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "duplicator".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    tokio::spawn(async move {
        let _connection = connection;
        loop {
            let delivery = tokio::select! {
                _ = chaos.cancelled() => break,
                next = consumer.next() => match next {
                    Some(Ok(d)) => d,
                    _ => break,
                },
            };
            let mut headers = delivery.properties.headers().clone().unwrap_or_default();
            if !headers.inner().contains_key("x-chaos-duplicate") {
                headers.insert(
                    ShortString::from("x-chaos-duplicate"),
                    AMQPValue::Boolean(true),
                );
                let sent = channel
                    .basic_publish(
                        events.as_str().into(),
                        "order.verified".into(),
                        BasicPublishOptions::default(),
                        &delivery.data,
                        delivery.properties.clone().with_headers(headers),
                    )
                    .await;
                if let Ok(confirm) = sent
                    && confirm.await.is_ok()
                {
                    figures.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        }
    })
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

pub async fn restart_broker() {
    for step in ["stop_app", "start_app"] {
        let status = Command::new("rabbitmqctl")
            .arg(step)
            .status()
            .await
            .expect("rabbitmqctl");
        assert!(status.success(), "rabbitmqctl {step}");
        if step == "stop_app" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
}
