//! The consumer loop and the inbox.
//!
//! One loop per queue. It waits for a delivery, then takes whatever else is already buffered
//! (up to `amqp.batch_size`, never waiting to fill a batch) and handles the batch in one
//! transaction: for each message it first inserts `(consumer, message_id)` into the inbox (a
//! duplicate is skipped), then runs the handler. After commit it acks the batch with `multiple`.
//! If anything in the batch fails, the transaction is rolled back and the batch is handled again
//! one message per transaction, so one bad message neither blocks nor drops its neighbours:
//! a [`HandleError::Transient`] is rejected with requeue (the queue's delivery limit caps the
//! retries), a [`HandleError::Permanent`] is dead-lettered with its reason.
//! A delivery that is not a JSON envelope of a known message type (or whose content type says
//! it is not JSON) is dead-lettered at once, before any transaction.
//!
//! Dead-lettering is done by publishing the message, with `x-orderflow-*` headers saying why,
//! queue and routing key, to `orderflow.dlx` under the queue's name, confirmed, then acking it.
//! Messages that exhaust their delivery limit are dead-lettered by the broker to the same place.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use orderflow_messages::{Envelope, Event, Exchange};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::amqp::Publisher;
use crate::topology::Names;

/// How long the batch in hand may take to finish once shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A delivery whose body is a well-formed envelope.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub envelope: Envelope<Value>,
    pub routing_key: String,
    pub redelivered: bool,
}

impl Incoming {
    /// Whether the message is an `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.envelope.is::<E>()
    }

    /// The payload as `E`; a mismatch is a permanent error naming the field.
    pub fn decode<E: Event>(&self) -> Result<E, HandleError> {
        self.envelope
            .decode::<E>()
            .map_err(|e| HandleError::Permanent(format!("{}: {e}", E::TYPE)))
    }

    /// The carrier code of a carrier reply (`<code>.<type>` routing key).
    pub fn carrier(&self) -> Option<&str> {
        self.routing_key.split_once('.').map(|(code, _)| code)
    }
}

/// How handling a message failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Retry later (database or broker unavailable, a serialization conflict, …).
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Retrying cannot help (bad payload, broken invariant): dead-letter with this reason.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        HandleError::Transient(e.into())
    }
}

impl From<anyhow::Error> for HandleError {
    fn from(e: anyhow::Error) -> Self {
        HandleError::Transient(e)
    }
}

/// A service's reaction to messages of one queue. `conn` is inside the batch's transaction:
/// write state and [`outbox::enqueue`](crate::outbox::enqueue) the consequences through it.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        conn: &mut PgConnection,
        msg: &Incoming,
    ) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// Everything one consumer loop needs.
pub struct ConsumerLoop<H> {
    pub service: &'static str,
    /// Unprefixed queue name; also the inbox's `consumer` column.
    pub queue: String,
    pub names: Names,
    /// The service's schema: whose outbox relay a commit wakes.
    pub schema: &'static str,
    pub pool: PgPool,
    pub broker: std::sync::Arc<crate::amqp::Broker>,
    pub publisher: Publisher,
    pub prefetch: u16,
    pub batch_size: usize,
    pub handler: H,
}

enum Parsed {
    Ok(Box<Incoming>),
    Malformed(String),
}

/// Every message type of the catalogue: a type outside it is dead-lettered, not ignored.
fn known_type(kind: &str) -> bool {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| {
            orderflow_messages::catalogue::all()
                .iter()
                .map(|e| e.name)
                .collect()
        })
        .contains(kind)
}

fn parse(delivery: &Delivery) -> Parsed {
    // Producers say JSON; a message that says it is something else is not read as JSON by
    // chance. No content type at all is accepted (hand-written tools often send none).
    if let Some(content_type) = delivery.properties.content_type() {
        let essence = content_type.as_str().split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            let shown: String = content_type.as_str().chars().take(80).collect();
            return Parsed::Malformed(format!(
                "unsupported content type `{shown}`: expected application/json"
            ));
        }
    }
    match serde_json::from_slice::<Envelope<Value>>(&delivery.data) {
        Ok(envelope) if !known_type(&envelope.kind) => {
            let shown: String = envelope.kind.chars().take(80).collect();
            Parsed::Malformed(format!("unknown message type `{shown}`"))
        }
        Ok(envelope) => Parsed::Ok(Box::new(Incoming {
            envelope,
            routing_key: delivery.routing_key.to_string(),
            redelivered: delivery.redelivered,
        })),
        Err(e) => Parsed::Malformed(format!("malformed envelope: {e}")),
    }
}

impl<H: Handler> ConsumerLoop<H> {
    /// Consumes until `shutdown`; the batch in hand is finished before returning (or given back
    /// to the queue if it takes longer than [`SHUTDOWN_GRACE`]).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let channel = self.broker.consume.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("{}/{}/{}", self.service, self.queue, uuid::Uuid::now_v7());
        let mut consumer = channel
            .basic_consume(
                self.names.queue(&self.queue).into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(service = self.service, queue = %self.queue, "consuming");
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                next = consumer.next() => next,
            };
            let first = match first {
                None => break,
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    tracing::warn!(service = self.service, queue = %self.queue, error = %e, "consumer error; waiting for recovery");
                    channel.wait_for_recovery(e).await?;
                    continue;
                }
            };
            let mut batch = vec![first];
            while batch.len() < self.batch_size {
                match consumer.next().now_or_never() {
                    Some(Some(Ok(d))) => batch.push(d),
                    _ => break,
                }
            }
            // On shutdown the batch in hand gets a grace period to finish; past it the batch is
            // abandoned: its transaction rolls back and, unacked, its messages go back to the
            // queue when the channel closes, so a stop stays bounded under any load.
            let grace = async {
                shutdown.cancelled().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            };
            tokio::select! {
                _ = self.handle_batch(batch) => {}
                _ = grace => {
                    tracing::warn!(service = self.service, queue = %self.queue,
                        "the batch in hand did not finish within the shutdown grace; it goes back to the queue");
                    break;
                }
            }
        }
        let _ = channel
            .basic_cancel(tag.as_str().into(), Default::default())
            .await;
        let _ = channel.close(200, "shutdown".into()).await;
        Ok(())
    }

    async fn handle_batch(&self, batch: Vec<Delivery>) {
        let started = Instant::now();
        let mut parsed = Vec::with_capacity(batch.len());
        for delivery in batch {
            match parse(&delivery) {
                Parsed::Ok(msg) => parsed.push((delivery, *msg)),
                Parsed::Malformed(reason) => self.dead_letter(&delivery, &reason).await,
            }
        }
        if parsed.is_empty() {
            return;
        }
        if parsed.len() > 1 {
            let all: Vec<&Incoming> = parsed.iter().map(|(_, m)| m).collect();
            match self.try_together(&all).await {
                Ok(()) => {
                    if let Some((last, _)) = parsed.iter().max_by_key(|(d, _)| d.delivery_tag) {
                        self.ack(last, true).await;
                    }
                    self.record(&all, "ok", started);
                    return;
                }
                Err(e) => {
                    tracing::debug!(service = self.service, error = %e, "batch failed; handling one by one");
                }
            }
        }
        for (delivery, msg) in &parsed {
            let started = Instant::now();
            match self.try_together(&[msg]).await {
                Ok(()) => {
                    self.ack(delivery, false).await;
                    self.record(&[msg], "ok", started);
                }
                Err(HandleError::Permanent(reason)) => {
                    tracing::warn!(service = self.service, queue = %self.queue,
                        message_id = %msg.envelope.message_id, kind = %msg.envelope.kind,
                        %reason, "dead-lettering message");
                    self.dead_letter(delivery, &reason).await;
                    metrics::counter!("orderflow_messages_processed_total",
                        "service" => self.service, "type" => msg.envelope.kind.clone(), "outcome" => "dead_lettered")
                        .increment(1);
                }
                Err(HandleError::Transient(e)) => {
                    tracing::warn!(service = self.service, queue = %self.queue,
                        message_id = %msg.envelope.message_id, kind = %msg.envelope.kind,
                        error = format!("{e:#}"), "transient failure; requeueing");
                    // A short pause so a failing dependency is not hammered by instant retries.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = delivery
                        .acker
                        .nack(BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        })
                        .await;
                    metrics::counter!("orderflow_messages_processed_total",
                        "service" => self.service, "type" => msg.envelope.kind.clone(), "outcome" => "retried")
                        .increment(1);
                }
            }
        }
    }

    /// Handles `batch` in one transaction; commits only if every message succeeded.
    async fn try_together(&self, batch: &[&Incoming]) -> Result<(), HandleError> {
        let mut tx = self.pool.begin().await?;
        // One statement records the whole batch in the inbox and says which messages are new:
        // a message handled before (or twice in this batch) is skipped.
        let ids: Vec<uuid::Uuid> = batch.iter().map(|m| m.envelope.message_id).collect();
        let kinds: Vec<&str> = batch.iter().map(|m| m.envelope.kind.as_str()).collect();
        let mut new: std::collections::HashSet<uuid::Uuid> = sqlx::query_scalar(
            "INSERT INTO inbox (consumer, message_id, kind) \
             SELECT $1, id, kind FROM unnest($2::uuid[], $3::text[]) AS t(id, kind) \
             ON CONFLICT DO NOTHING RETURNING message_id",
        )
        .bind(&self.queue)
        .bind(&ids)
        .bind(&kinds)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        for msg in batch {
            let span = tracing::info_span!("handle", service = self.service, queue = %self.queue,
                order_id = %msg.envelope.order_id, message_id = %msg.envelope.message_id,
                r#type = %msg.envelope.kind, trace_id = %msg.envelope.correlation_id.simple());
            if !new.remove(&msg.envelope.message_id) {
                tracing::debug!(parent: &span, "duplicate delivery skipped");
                continue;
            }
            self.handler.handle(&mut tx, msg).instrument(span).await?;
        }
        crate::outbox::commit(tx, self.schema).await?;
        Ok(())
    }

    /// Acks `delivery` (with `multiple`, every delivery up to it) through its own acker, never
    /// by bare tag: after a reconnect delivery tags start again at 1, so an old tag sent on the
    /// recovered channel would ack a new, unhandled delivery (or, unknown, close the channel).
    /// The acker of a delivery from before the reconnect is void and sends nothing; the broker
    /// redelivers that message and the inbox turns it into a no-op.
    async fn ack(&self, delivery: &Delivery, multiple: bool) {
        match delivery.acker.ack(BasicAckOptions { multiple }).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(service = self.service, queue = %self.queue, "delivery from before a reconnect not acked; it will be redelivered and deduplicated")
            }
            Err(e) => {
                tracing::warn!(service = self.service, queue = %self.queue, error = %e, "ack failed; the messages will be redelivered and deduplicated")
            }
        }
    }

    fn record(&self, batch: &[&Incoming], outcome: &'static str, started: Instant) {
        for msg in batch {
            metrics::counter!("orderflow_messages_processed_total",
                "service" => self.service, "type" => msg.envelope.kind.clone(), "outcome" => outcome)
                .increment(1);
        }
        metrics::histogram!("orderflow_stage_duration_seconds", "service" => self.service)
            .record(started.elapsed().as_secs_f64());
    }

    /// Publishes `delivery` to `<queue>.dead` with `reason`, then acks it. If that publish
    /// fails, the delivery is requeued instead: it is never dropped.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        let put = |h: &mut FieldTable, k: &str, v: String| {
            h.insert(
                ShortString::from(k),
                AMQPValue::LongString(LongString::from(v)),
            );
        };
        put(&mut headers, "x-orderflow-reason", reason.to_owned());
        put(&mut headers, "x-orderflow-queue", self.queue.clone());
        put(
            &mut headers,
            "x-orderflow-routing-key",
            delivery.routing_key.to_string(),
        );
        put(
            &mut headers,
            "x-orderflow-exchange",
            delivery.exchange.to_string(),
        );
        put(
            &mut headers,
            "x-orderflow-dead-lettered-at",
            chrono::Utc::now().to_rfc3339(),
        );
        // The dead-letter queue counts its own deliveries in `x-delivery-count` (each time
        // `orderflow dlq list` looks), so the work queue's count is kept under our own name.
        let previous = match headers.inner().get("x-delivery-count") {
            Some(AMQPValue::LongLongInt(n)) => u64::try_from(*n).unwrap_or(0),
            Some(AMQPValue::LongInt(n)) => u64::try_from(*n).unwrap_or(0),
            Some(AMQPValue::LongUInt(n)) => u64::from(*n),
            _ => 0,
        };
        put(
            &mut headers,
            "x-orderflow-deliveries",
            (previous + 1).to_string(),
        );
        let properties: BasicProperties = delivery.properties.clone().with_headers(headers);
        let published = self
            .publisher
            .publish_raw(
                &self.names.exchange(Exchange::DeadLetters),
                &self.names.queue(&self.queue),
                &delivery.data,
                properties,
            )
            .await;
        match published {
            Ok(()) => self.ack(delivery, false).await,
            Err(e) => {
                tracing::error!(service = self.service, queue = %self.queue, error = %e, "could not dead-letter; requeueing");
                let _ = delivery
                    .acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await;
            }
        }
    }
}
