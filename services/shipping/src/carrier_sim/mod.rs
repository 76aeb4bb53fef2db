//! The simulated carrier `sim`, for demos, tests and benchmarks.
//!
//! It is a carrier adapter like any other and speaks only the public protocol (DESIGN §3): it
//! consumes its queue `carrier.sim` with manual acks and answers on `orderflow.carrier-events`
//! with `sim.shipment.label_created`, then `sim.shipment.tracking_updated` in transit, out for
//! delivery (or available for pickup) and delivered — or, as configured by chance, `failure` or
//! `return_to_sender`. Each request is carried in its own task (at most `amqp.prefetch` at
//! once), so long delays do not hold up other shipments; a request is acked only after all its
//! replies are confirmed. `shipment.cancel_requested` stops a shipment that is not yet picked
//! up (it then reports `cancelled`).
//!
//! Settings, section `[carrier_sim]`: `label_delay_ms`, `transit_delay_ms`, `delivery_delay_ms`
//! (default 0), `delay_jitter` (0.0–1.0, default 0.0: each delay varies by up to that share),
//! `failure_rate`, `return_rate` (0.0–1.0, default 0.0), `seed` (default: random, logged at
//! start; the same seed gives the same outcomes and delays for the same requests),
//! `label_url_base`.

mod courier;
pub mod journey;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use orderflow_messages::Envelope;
use orderflow_messages::shipment::{CancelRequested, Requested};
use orderflow_runtime::amqp::Broker;
use orderflow_runtime::topology::{self, QueueSpec};
use orderflow_runtime::{CancellationToken, Settings};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use courier::Courier;
pub use journey::CODE;
use journey::{Delays, Dice};

/// The `producer` of the simulator's replies.
pub const PRODUCER: &str = "carrier-sim";
/// Its settings section.
pub const SECTION: &str = "carrier_sim";
/// How long shutdown waits for shipments in flight before closing; the broker redelivers the
/// unfinished ones to the next run.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The `[carrier_sim]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SimSettings {
    pub label_delay_ms: u64,
    pub transit_delay_ms: u64,
    pub delivery_delay_ms: u64,
    /// Each delay varies by up to this share of itself, 0.0–1.0.
    pub delay_jitter: f64,
    /// Share of shipments lost or damaged (`failure`), 0.0–1.0.
    pub failure_rate: f64,
    /// Share of shipments returned to the sender, 0.0–1.0.
    pub return_rate: f64,
    /// Labels are "printed" at `<base>/<shipment id>.pdf`.
    pub label_url_base: String,
    /// Seeds the chance (outcomes, delay jitter); absent: a random seed, logged.
    pub seed: Option<u64>,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            label_delay_ms: 0,
            transit_delay_ms: 0,
            delivery_delay_ms: 0,
            delay_jitter: 0.0,
            failure_rate: 0.0,
            return_rate: 0.0,
            label_url_base: "https://labels.example/sim".to_owned(),
            seed: None,
        }
    }
}

impl SimSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        for (key, rate) in [
            ("failure_rate", self.failure_rate),
            ("return_rate", self.return_rate),
            ("delay_jitter", self.delay_jitter),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                bail!("{SECTION}.{key} is {rate}: give a share between 0.0 and 1.0");
            }
        }
        if self.failure_rate + self.return_rate > 1.0 {
            bail!("{SECTION}.failure_rate + return_rate exceed 1.0: lower one of them");
        }
        Ok(())
    }
}

/// Runs the simulator until `shutdown`: stops consuming, lets shipments in flight finish (up
/// to a grace period), then closes.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let sim: SimSettings = settings.section(SECTION)?;
    sim.validate()?;
    let broker = Broker::connect(&settings.amqp, PRODUCER)
        .await
        .context("carrier-sim: broker")?;
    orderflow_runtime::amqp::log_events(PRODUCER, &broker.publish);
    orderflow_runtime::amqp::log_events(PRODUCER, &broker.consume);

    let queue_spec = QueueSpec::carrier(CODE);
    let channel = broker.consume.create_channel().await?;
    topology::declare_exchanges(&channel, &broker.names).await?;
    topology::declare_queue(
        &broker.consume,
        &broker.names,
        &queue_spec,
        settings.amqp.delivery_limit,
    )
    .await
    .with_context(|| format!("declaring queue {}", queue_spec.name))?;
    let seed = sim.seed.unwrap_or_else(rand::random);
    let mut dice = Dice::new(seed);
    let base = Delays {
        label: Duration::from_millis(sim.label_delay_ms),
        transit: Duration::from_millis(sim.transit_delay_ms),
        delivery: Duration::from_millis(sim.delivery_delay_ms),
    };
    let prefetch = settings.amqp.prefetch.max(1);
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("{PRODUCER}/{}", uuid::Uuid::now_v7());
    let queue = broker.names.queue(&queue_spec.name);
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            tag.as_str().into(),
            // Manual acks: a request is acked only once its replies are confirmed.
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(%queue, ?sim, seed, "carrier simulator consuming (set carrier_sim.seed to replay this run's chance)");

    let courier = Arc::new(Courier {
        publisher: broker.publisher().await?,
        settings: sim,
        pending: Mutex::new(HashMap::new()),
        shutdown: shutdown.clone(),
    });
    // One permit per unacked delivery the broker may push: a task for each, never more.
    let permits = Arc::new(Semaphore::new(usize::from(prefetch)));
    let tasks = TaskTracker::new();
    let mut failure = None;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            reason = broker.watch() => { failure = Some(reason); break }
            next = consumer.next() => next,
        };
        let delivery = match next {
            None => {
                failure = Some(format!(
                    "the consumer of {queue} was cancelled by the broker"
                ));
                break;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error; waiting for recovery");
                channel.wait_for_recovery(e).await?;
                continue;
            }
            Some(Ok(delivery)) => delivery,
        };
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit?,
        };
        match read(&delivery) {
            Message::Request(envelope, request) => match courier.begin(request.shipment_id) {
                Some(cancel) => {
                    let plan = dice.plan(
                        base,
                        courier.settings.failure_rate,
                        courier.settings.return_rate,
                        courier.settings.delay_jitter,
                    );
                    tracing::info!(shipment_id = %request.shipment_id, order_id = %request.order_id,
                        service_level = %request.service_level, ?plan, "shipment requested");
                    let courier = courier.clone();
                    tasks.spawn(async move {
                        courier
                            .carry(delivery, *envelope, *request, plan, cancel)
                            .await;
                        drop(permit);
                    });
                }
                None => {
                    tracing::info!(shipment_id = %request.shipment_id, "request repeated while in flight");
                    settle(&delivery, Settle::Ack).await;
                }
            },
            Message::Cancel(cancel) => {
                let stopped = courier.cancel(cancel.shipment_id);
                tracing::info!(shipment_id = %cancel.shipment_id, reason = %cancel.reason,
                    in_flight = stopped, "cancellation requested");
                settle(&delivery, Settle::Ack).await;
            }
            Message::Other(kind) => {
                tracing::info!(%kind, "not a carrier command; ignored");
                settle(&delivery, Settle::Ack).await;
            }
            Message::Malformed(reason) => {
                tracing::warn!(%reason, "malformed carrier request; dead-lettering it");
                settle(&delivery, Settle::DeadLetter).await;
            }
        }
    }

    tracing::info!("carrier simulator stopping: no new requests; finishing those in flight");
    let _ = channel
        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
        .await;
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "shipments still in flight after {SHUTDOWN_GRACE:?}; the broker redelivers them"
        );
    }
    let _ = channel.close(200, "shutdown".into()).await;
    broker.close().await;
    match failure {
        Some(reason) => bail!("carrier-sim: {reason}"),
        None => Ok(()),
    }
}

/// What a delivery holds, read once.
enum Message {
    Request(Box<Envelope<Value>>, Box<Requested>),
    Cancel(CancelRequested),
    Other(String),
    Malformed(String),
}

fn read(delivery: &Delivery) -> Message {
    let envelope = match serde_json::from_slice::<Envelope<Value>>(&delivery.data) {
        Ok(envelope) => envelope,
        Err(e) => return Message::Malformed(format!("malformed envelope: {e}")),
    };
    if envelope.is::<Requested>() {
        match envelope.decode::<Requested>() {
            Ok(request) if request.carrier == CODE => {
                Message::Request(Box::new(envelope), Box::new(request))
            }
            Ok(request) => Message::Malformed(format!(
                "shipment {} is for carrier `{}`, not `{CODE}`",
                request.shipment_id, request.carrier
            )),
            Err(e) => Message::Malformed(e.to_string()),
        }
    } else if envelope.is::<CancelRequested>() {
        match envelope.decode::<CancelRequested>() {
            Ok(cancel) => Message::Cancel(cancel),
            Err(e) => Message::Malformed(e.to_string()),
        }
    } else {
        Message::Other(envelope.kind)
    }
}

enum Settle {
    Ack,
    /// Rejected without requeue: the queue dead-letters it to `carrier.sim.dead`.
    DeadLetter,
}

async fn settle(delivery: &Delivery, how: Settle) {
    let settled = match how {
        Settle::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
        Settle::DeadLetter => {
            let reject = BasicNackOptions {
                multiple: false,
                requeue: false,
            };
            delivery.acker.nack(reject).await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "could not settle a delivery; the broker will redeliver it");
    }
}
