//! The broker's own ceiling: persistent messages of the pipeline's average size, published with
//! confirms into one quorum queue and consumed with manual acks, at the same time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// Confirms outstanding at once; enough to keep the broker busy, as the relay's batches do.
const WINDOW: usize = 512;
const PREFETCH: u16 = 1000;
const ACK_EVERY: u64 = 100;

/// Messages per second through one quorum queue.
pub async fn measure(
    amqp_url: &str,
    queue: &str,
    messages: usize,
    size: usize,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<f64> {
    let publish_conn = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let consume_conn = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let publish = publish_conn.create_channel().await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    publish
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let consume = consume_conn.create_channel().await?;
    consume
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut consumer = consume
        .basic_consume(
            queue.into(),
            "bench-ceiling".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let expected = messages as u64;
    let counting = tokio::spawn(async move {
        let mut seen = 0u64;
        while seen < expected {
            let Some(delivery) = consumer.next().await else {
                break;
            };
            let delivery = delivery?;
            seen += 1;
            if seen.is_multiple_of(ACK_EVERY) || seen == expected {
                delivery
                    .acker
                    .ack(BasicAckOptions { multiple: true })
                    .await?;
            }
        }
        anyhow::Ok(seen)
    });

    let body = vec![b'x'; size.max(1)];
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(WINDOW);
    for _ in 0..messages {
        if pending.len() >= WINDOW
            && let Some(confirm) = pending.pop_front()
        {
            let confirm: lapin::PublisherConfirm = confirm;
            anyhow::ensure!(confirm.await?.is_ack(), "the broker refused a message");
            progress.inc(1);
        }
        let confirm = publish
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        pending.push_back(confirm);
    }
    for confirm in pending {
        anyhow::ensure!(confirm.await?.is_ack(), "the broker refused a message");
        progress.inc(1);
    }
    let seen = tokio::time::timeout(Duration::from_secs(300), counting)
        .await
        .context("consuming the ceiling queue timed out")???;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(seen == expected, "consumed {seen} of {expected}");
    let _ = publish
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
    let _ = consume_conn.close(200, "bench done".into()).await;
    let _ = publish_conn.close(200, "bench done".into()).await;
    Ok(messages as f64 / elapsed)
}
