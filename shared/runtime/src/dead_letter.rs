//! Dead letters (`<queue>.dead`): read them without losing one, replay them to where they were
//! first sent, purge a dead-letter queue. `orderflow dlq` and intake's ops console both use this.
//!
//! Reading never loses a dead letter: every message is fetched with `basic.get` without
//! auto-ack and held unacknowledged; when the reader is done, all that were not replayed are
//! given back with `basic.nack(requeue)`. Were the process to die in between, the broker returns
//! them anyway when the channel closes. A replay publishes the original body (and properties,
//! without the dead-letter headers) to the original exchange and routing key, waits for the
//! broker's confirm, and only then acks the dead letter; the consumers' inbox makes a replay of
//! something already handled a no-op.

use anyhow::Context;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde::Serialize;

use crate::Settings;
use crate::amqp::Publisher;
use crate::topology::Names;

/// One dead letter as found in its queue.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The message id, or `body-<hash>` for a message without one.
    pub id: String,
    /// The dead-letter queue, without the prefix.
    pub dead_queue: String,
    pub kind: Option<String>,
    /// `delivery_limit`, `rejected`, or the consumer's reason (e.g. `malformed envelope: …`).
    pub reason: String,
    /// The queue that gave up on it, without the prefix.
    pub original_queue: String,
    pub exchange: String,
    pub routing_key: String,
    /// How many times its work queue delivered it before it was dead-lettered (for the broker's
    /// `delivery_limit`, the limit; 1 when unknown).
    pub deliveries: u64,
    pub dead_lettered_at: Option<String>,
    pub body: String,
    #[serde(skip)]
    raw: Vec<u8>,
    #[serde(skip)]
    properties: BasicProperties,
}

fn header<'a>(headers: &'a FieldTable, key: &str) -> Option<&'a AMQPValue> {
    headers.inner().get(key)
}

fn text(value: Option<&AMQPValue>) -> Option<String> {
    match value? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Why, from where and how often: our own `x-orderflow-*` headers first (a consumer gave up
/// with a reason), else the broker's `x-death` (a delivery limit reached, or a nack without
/// requeue).
fn describe(
    names: &Names,
    delivery_limit: u32,
    dead_queue: &str,
    raw: Vec<u8>,
    properties: BasicProperties,
) -> DeadLetter {
    let headers = properties.headers().clone().unwrap_or_default();
    let unprefixed = |q: String| {
        q.strip_prefix(&names.prefix)
            .map(str::to_owned)
            .unwrap_or(q)
    };
    let first_death = match header(&headers, "x-death") {
        Some(AMQPValue::FieldArray(deaths)) => match deaths.as_slice().first() {
            Some(AMQPValue::FieldTable(t)) => Some(t.clone()),
            _ => None,
        },
        _ => None,
    };
    let death = |key: &str| first_death.as_ref().and_then(|t| text(header(t, key)));
    let reason = text(header(&headers, "x-orderflow-reason"))
        .or_else(|| text(header(&headers, "x-first-death-reason")))
        .or_else(|| death("reason"))
        .unwrap_or_else(|| "unknown".to_owned());
    let original_queue = text(header(&headers, "x-orderflow-queue"))
        .or_else(|| text(header(&headers, "x-first-death-queue")).map(unprefixed))
        .unwrap_or_else(|| dead_queue.trim_end_matches(".dead").to_owned());
    let exchange = text(header(&headers, "x-orderflow-exchange"))
        .or_else(|| text(header(&headers, "x-first-death-exchange")))
        .unwrap_or_default();
    let routing_key = text(header(&headers, "x-orderflow-routing-key"))
        .or_else(
            || match first_death.as_ref().and_then(|t| header(t, "routing-keys")) {
                Some(AMQPValue::FieldArray(keys)) => text(keys.as_slice().first()),
                _ => None,
            },
        )
        // Published straight into the queue (default exchange): back the same way.
        .unwrap_or_else(|| names.queue(&original_queue));
    // Not `x-delivery-count`: in a dead-letter queue that counts this queue's own deliveries
    // (every listing), not the work queue's.
    let deliveries = text(header(&headers, "x-orderflow-deliveries"))
        .and_then(|n| n.parse().ok())
        .or_else(|| (reason == "delivery_limit").then_some(u64::from(delivery_limit) + 1))
        .unwrap_or(1);
    let id = properties
        .message_id()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            raw.hash(&mut hasher);
            format!("body-{:016x}", hasher.finish())
        });
    DeadLetter {
        id,
        dead_queue: dead_queue.to_owned(),
        kind: properties.kind().as_ref().map(|k| k.to_string()),
        reason,
        original_queue,
        exchange,
        routing_key,
        deliveries,
        dead_lettered_at: text(header(&headers, "x-orderflow-dead-lettered-at")),
        body: String::from_utf8_lossy(&raw).chars().take(4000).collect(),
        raw,
        properties,
    }
}

fn without_dead_letter_headers(properties: &BasicProperties) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (key, value) in properties.headers().clone().unwrap_or_default().inner() {
        let k = key.as_str();
        if k.starts_with("x-orderflow-")
            || k.starts_with("x-death")
            || k.starts_with("x-first-death")
            || k.starts_with("x-last-death")
            || k == "x-delivery-count"
        {
            continue;
        }
        headers.insert(key.clone(), value.clone());
    }
    properties.clone().with_headers(headers)
}

async fn connect(settings: &Settings, who: &str) -> anyhow::Result<Connection> {
    let name = format!("{}{who}", settings.amqp.prefix);
    crate::cluster::Target::from_settings(&settings.amqp)?
        .open(
            ConnectionProperties::default().with_connection_name(name.clone().into()),
            &name,
        )
        .await
        .context("connecting to RabbitMQ")
}

/// How many messages `queue` (unprefixed) holds, on a channel of its own, or `None` if there is
/// no such queue (a missing queue closes the channel, hence one channel per queue).
async fn message_count(
    connection: &Connection,
    names: &Names,
    queue: &str,
) -> anyhow::Result<Option<(Channel, u32)>> {
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            names.queue(queue).as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    Ok(declared.ok().map(|d| (channel, d.message_count())))
}

/// A connection and the dead letters of some queues, held unacknowledged until
/// [`Browse::finish`].
pub struct Browse {
    connection: Connection,
    names: Names,
    held: Vec<(Channel, Vec<(u64, DeadLetter)>)>,
}

impl Browse {
    /// Reads every letter of `dead_queues` (unprefixed names; missing queues are skipped).
    /// `who` names the connection in the broker's management UI.
    pub async fn open(
        settings: &Settings,
        dead_queues: &[String],
        who: &str,
    ) -> anyhow::Result<Browse> {
        let connection = connect(settings, who).await?;
        let names = Names {
            prefix: settings.amqp.prefix.clone(),
        };
        let mut held = Vec::new();
        for queue in dead_queues {
            let Some((channel, count)) = message_count(&connection, &names, queue).await? else {
                continue;
            };
            let mut letters = Vec::new();
            for _ in 0..count {
                let got = channel
                    .basic_get(
                        names.queue(queue).as_str().into(),
                        BasicGetOptions { no_ack: false },
                    )
                    .await?;
                let Some(message) = got else { break };
                let delivery = message.delivery;
                letters.push((
                    delivery.delivery_tag,
                    describe(
                        &names,
                        settings.amqp.delivery_limit,
                        queue,
                        delivery.data,
                        delivery.properties,
                    ),
                ));
            }
            held.push((channel, letters));
        }
        Ok(Browse {
            connection,
            names,
            held,
        })
    }

    pub fn letters(&self) -> impl Iterator<Item = &DeadLetter> {
        self.held.iter().flat_map(|(_, l)| l.iter().map(|(_, d)| d))
    }

    /// Replays the letters `which` selects; returns how many were replayed. A letter whose
    /// publish fails stays dead-lettered (and is logged).
    pub async fn replay(&mut self, which: impl Fn(&DeadLetter) -> bool) -> anyhow::Result<usize> {
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let publisher = Publisher::from_channel(channel, self.names.clone());
        let mut replayed = 0;
        for (channel, letters) in &mut self.held {
            let mut kept = Vec::new();
            for (tag, letter) in letters.drain(..) {
                if !which(&letter) {
                    kept.push((tag, letter));
                    continue;
                }
                let published = publisher
                    .publish_raw(
                        &letter.exchange,
                        &letter.routing_key,
                        &letter.raw,
                        without_dead_letter_headers(&letter.properties),
                    )
                    .await;
                match published {
                    Ok(()) => {
                        channel.basic_ack(tag, BasicAckOptions::default()).await?;
                        replayed += 1;
                    }
                    Err(error) => {
                        tracing::warn!(id = %letter.id, %error, "not replayed; it stays dead-lettered");
                        kept.push((tag, letter));
                    }
                }
            }
            *letters = kept;
        }
        Ok(replayed)
    }

    /// Gives every held letter back to its queue and closes the connection.
    pub async fn finish(self) -> anyhow::Result<()> {
        for (channel, letters) in &self.held {
            for (tag, _) in letters {
                channel
                    .basic_nack(
                        *tag,
                        BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        },
                    )
                    .await?;
            }
        }
        let _ = self.connection.close(200, "done".into()).await;
        Ok(())
    }
}

/// How many letters each non-empty queue of `dead_queues` holds; with `purge`, deletes them
/// and says how many were deleted.
pub async fn purge(
    settings: &Settings,
    dead_queues: &[String],
    purge: bool,
    who: &str,
) -> anyhow::Result<Vec<(String, u32)>> {
    let connection = connect(settings, who).await?;
    let names = Names {
        prefix: settings.amqp.prefix.clone(),
    };
    let mut counts = Vec::new();
    for queue in dead_queues {
        let Some((channel, count)) = message_count(&connection, &names, queue).await? else {
            continue;
        };
        if count == 0 {
            continue;
        }
        let count = if purge {
            channel
                .queue_purge(
                    names.queue(queue).as_str().into(),
                    QueuePurgeOptions::default(),
                )
                .await?
        } else {
            count
        };
        counts.push((queue.clone(), count));
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(counts)
}
