//! Memory while a backlog drains: intake alone accepts the orders (their `order.placed` wait in
//! verification's queue), then every stage starts and works the backlog off while the resident
//! memory of each process is sampled. Consumers hold at most `amqp.prefetch` deliveries, so
//! memory should stay flat however long the queue is; this phase shows whether it does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use orderflow_runtime::CancellationToken;
use orderflow_runtime::testing::TestEnv;
use serde::Serialize;

use super::load::{Completions, Poster};
use super::system::{System, vm_rss_mb};
use super::{BenchArgs, COMPLETION_TIMEOUT, bar, ids};

/// How often memory is sampled while the backlog drains.
const SAMPLE: Duration = Duration::from_millis(250);

#[derive(Debug, Serialize)]
pub struct Backlog {
    pub orders: usize,
    /// Messages waiting in verification's queue when the stages started.
    pub queued_messages: u32,
    pub drain_orders_per_s: f64,
    /// Resident memory per process: right after start, the highest sample, the last one.
    pub rss_mb_first: BTreeMap<String, f64>,
    pub rss_mb_peak: BTreeMap<String, f64>,
    pub rss_mb_last: BTreeMap<String, f64>,
    pub samples: usize,
}

pub async fn measure(
    env: &TestEnv,
    args: &BenchArgs,
    shop_key: &str,
    completions: &mut Completions,
    offset: usize,
) -> anyhow::Result<Backlog> {
    let n = args.backlog_orders;
    let progress = bar(n * 2, "backlog: queueing, then draining", args.json);
    let intake = System::start(&env.settings, args.processes, Some("order-intake")).await?;
    let poster = Poster::new(intake.addr("order-intake")?, shop_key)?;
    let posted = poster.flood(offset, n, args.concurrency, &progress).await?;
    // A graceful stop publishes what is still in intake's outbox.
    intake.stop().await?;
    let queued_messages = queue_depth(env, "verification.orders").await?;

    let system = System::start(&env.settings, args.processes, None).await?;
    let started = Instant::now();
    let pids = system.pids();
    let stop = CancellationToken::new();
    let sampler = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut samples: Vec<BTreeMap<String, f64>> = Vec::new();
            loop {
                samples.push(
                    pids.iter()
                        .filter_map(|(name, pid)| Some((name.clone(), vm_rss_mb(pid)?)))
                        .collect(),
                );
                tokio::select! {
                    _ = stop.cancelled() => return samples,
                    _ = tokio::time::sleep(SAMPLE) => {}
                }
            }
        }
    });
    // A large backlog takes longer than the other phases' limit: allow 20 orders/s at least.
    let limit = COMPLETION_TIMEOUT.max(Duration::from_secs((n / 20) as u64));
    let drained = completions.wait_for(&ids(&posted), limit, &progress).await;
    stop.cancel();
    let samples = sampler.await?;
    progress.finish();
    system.stop().await?;
    let done = drained?;
    let last_done = done.values().max().copied().unwrap_or_else(Instant::now);
    let seconds = (last_done - started).as_secs_f64().max(1e-3);

    let mut peak = BTreeMap::new();
    for sample in &samples {
        for (name, mb) in sample {
            let entry = peak.entry(name.clone()).or_insert(0.0_f64);
            *entry = entry.max(*mb);
        }
    }
    Ok(Backlog {
        orders: n,
        queued_messages,
        drain_orders_per_s: n as f64 / seconds,
        rss_mb_first: samples.first().cloned().unwrap_or_default(),
        rss_mb_peak: peak,
        rss_mb_last: samples.last().cloned().unwrap_or_default(),
        samples: samples.len(),
    })
}

/// Messages ready in `queue` (unprefixed name).
async fn queue_depth(env: &TestEnv, queue: &str) -> anyhow::Result<u32> {
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            env.names().queue(queue).as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let _ = connection.close(200, "counted".into()).await;
    Ok(declared.message_count())
}
