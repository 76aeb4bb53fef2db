//! Load: posting orders over HTTP, and hearing when they complete.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use orderflow_messages::{Envelope, Event, Exchange, order};
use orderflow_runtime::topology::Names;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Hears every `order.completed` under a prefix, through a private queue, and every order that
/// ended otherwise (`order.rejected`, `order.cancelled`), so a run stops at once with the reason
/// instead of waiting out its timeout for an order that will never complete.
pub struct Completions {
    _connection: Connection,
    receiver: mpsc::UnboundedReceiver<(Uuid, Instant, String)>,
}

/// The events that end an order; only the first is what the benchmark waits for.
const ENDINGS: [&str; 3] = [
    order::Completed::TYPE,
    order::Rejected::TYPE,
    order::Cancelled::TYPE,
];

impl Completions {
    pub async fn listen(amqp_url: &str, names: &Names) -> anyhow::Result<Completions> {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        orderflow_runtime::topology::declare_exchanges(&channel, names).await?;
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
            .await?;
        for ending in ENDINGS {
            channel
                .queue_bind(
                    queue.name().clone(),
                    names.exchange(Exchange::Events).as_str().into(),
                    ending.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let mut consumer = channel
            .basic_consume(
                queue.name().clone(),
                "bench-completions".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let at = Instant::now();
                if let Ok(envelope) =
                    serde_json::from_slice::<Envelope<serde_json::Value>>(&delivery.data)
                    && sender.send((envelope.order_id, at, envelope.kind)).is_err()
                {
                    break;
                }
            }
        });
        Ok(Completions {
            _connection: connection,
            receiver,
        })
    }

    /// Waits until every order of `ids` has completed; returns when each did.
    pub async fn wait_for(
        &mut self,
        ids: &[Uuid],
        timeout: Duration,
        progress: &indicatif::ProgressBar,
    ) -> anyhow::Result<HashMap<Uuid, Instant>> {
        let wanted: std::collections::HashSet<Uuid> = ids.iter().copied().collect();
        let mut done = HashMap::with_capacity(ids.len());
        let deadline = tokio::time::Instant::now() + timeout;
        while done.len() < wanted.len() {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Some((id, _, kind))) if kind != order::Completed::TYPE => {
                    if wanted.contains(&id) {
                        bail!(
                            "order {id} ended with {kind} instead of completing; its timeline \
                             (GET /v1/orders/{id}/timeline) says why"
                        );
                    }
                }
                Ok(Some((id, at, _))) => {
                    if wanted.contains(&id) && done.insert(id, at).is_none() {
                        progress.inc(1);
                    }
                }
                Ok(None) => bail!("the completion listener stopped"),
                Err(_) => bail!(
                    "{} of {} orders did not complete within {} s",
                    wanted.len() - done.len(),
                    wanted.len(),
                    timeout.as_secs()
                ),
            }
        }
        Ok(done)
    }
}

/// Posts orders to intake.
#[derive(Clone)]
pub struct Poster {
    client: reqwest::Client,
    url: String,
    key: String,
    run_id: String,
}

impl Poster {
    pub fn new(intake: SocketAddr, key: &str) -> anyhow::Result<Poster> {
        Ok(Poster {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .timeout(Duration::from_secs(30))
                .build()?,
            url: format!("http://{intake}/v1/orders"),
            key: key.to_owned(),
            run_id: Uuid::now_v7().simple().to_string(),
        })
    }

    /// Posts order `i`; returns its id, when it was accepted, and how long the request took.
    pub async fn post(&self, i: usize) -> anyhow::Result<(Uuid, Instant, Duration)> {
        let (body, _) = crate::demo::demo_order(&self.run_id, i, false, false);
        let sent = Instant::now();
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .context("POST /v1/orders")?;
        let accepted = Instant::now();
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        if status.as_u16() != 201 {
            bail!("order {i} refused with {status}: {answer}");
        }
        let id = answer["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("an order id")?;
        Ok((id, accepted, accepted - sent))
    }

    /// Posts `count` orders with `concurrency` in flight, as fast as they are accepted.
    pub async fn flood(
        &self,
        offset: usize,
        count: usize,
        concurrency: usize,
        progress: &indicatif::ProgressBar,
    ) -> anyhow::Result<Vec<(Uuid, Instant, Duration)>> {
        futures::stream::iter(offset..offset + count)
            .map(|i| async move {
                let posted = self.post(i).await;
                progress.inc(1);
                posted
            })
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// Posts `count` orders at a fixed rate (orders per second), whatever the answers' pace.
    pub async fn paced(
        &self,
        offset: usize,
        count: usize,
        rate: f64,
        progress: &indicatif::ProgressBar,
    ) -> anyhow::Result<Vec<(Uuid, Instant, Duration)>> {
        let start = tokio::time::Instant::now();
        let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..count {
            tokio::time::sleep_until(start + interval.mul_f64(n as f64)).await;
            let poster = self.clone();
            let progress = progress.clone();
            tasks.spawn(async move {
                let posted = poster.post(offset + n).await;
                progress.inc(1);
                posted
            });
        }
        let mut posted = Vec::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            posted.push(joined??);
        }
        Ok(posted)
    }
}

/// p50, p90, p99 and max of `samples`, in milliseconds.
pub fn percentiles(mut samples: Vec<f64>) -> [f64; 4] {
    if samples.is_empty() {
        return [0.0; 4];
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1]
    };
    [at(0.50), at(0.90), at(0.99), samples[samples.len() - 1]]
}

#[cfg(test)]
mod tests {
    use super::percentiles;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(samples), [50.0, 90.0, 99.0, 100.0]);
        assert_eq!(percentiles(vec![]), [0.0; 4]);
        assert_eq!(percentiles(vec![7.0]), [7.0; 4]);
    }
}
