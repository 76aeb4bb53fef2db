//! `orderflow bench`: how fast orders flow with every durability guarantee on, measured against
//! what this machine's broker can do in the same run.
//!
//! In a fresh database and queue-name prefix (removed afterwards) it measures: the pipeline's
//! throughput (orders posted over HTTP as fast as intake accepts them, until each is
//! `completed`) and the broker messages each order takes (counted from the services' metrics);
//! latency from accepted to completed at half that rate; the broker's own ceiling for messages
//! of the pipeline's average size; intake alone; and peak memory.

mod backlog;
mod ceiling;
mod hops;
mod load;
mod system;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use orderflow_runtime::Settings;
use orderflow_runtime::testing::TestEnv;
use serde::Serialize;
use uuid::Uuid;

use load::{Completions, Poster, percentiles};
use system::{Counters, System};

#[derive(clap::Args, Debug, Clone, Serialize)]
pub struct BenchArgs {
    /// Orders for the throughput phase.
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Orders for the latency phase (posted at half the measured throughput).
    #[arg(long, default_value_t = 1000)]
    latency_orders: usize,
    /// Orders for the intake-alone phase.
    #[arg(long, default_value_t = 5000)]
    intake_orders: usize,
    /// Messages for the broker-ceiling phase.
    #[arg(long, default_value_t = 30000)]
    ceiling_messages: usize,
    /// Orders for the backlog phase (0: skip it): intake alone queues them, then every stage
    /// starts and works the backlog off while each process's memory is sampled.
    #[arg(long, default_value_t = 0)]
    backlog_orders: usize,
    /// HTTP requests in flight while flooding.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Run one process per service (built binaries next to this one) instead of one process.
    #[arg(long)]
    processes: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

#[derive(Serialize)]
struct Report {
    broker_ceiling_msgs_per_s: f64,
    pipeline_orders_per_s: f64,
    messages_per_order: f64,
    ratio_to_ceiling: f64,
    latency_ms: Latency,
    latency_offered_orders_per_s: f64,
    /// The latency phase's hops from a message to the one it caused, slowest median first.
    latency_hops: Vec<hops::Hop>,
    intake_orders_per_s: f64,
    intake_p99_ms: f64,
    peak_rss_mb: BTreeMap<String, f64>,
    /// Present when `--backlog-orders` is above 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    backlog: Option<backlog::Backlog>,
    average_message_bytes: f64,
    parameters: BenchArgs,
}

pub(crate) const COMPLETION_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn bar(len: usize, message: &'static str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:<34} [{elapsed_precise}] {bar:40} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message);
    bar
}

pub async fn run(settings: &Settings, args: BenchArgs) -> anyhow::Result<()> {
    let amqp_url = settings.amqp.url.expose().to_owned();
    let env = TestEnv::isolated(settings, "bench", 16)?;
    let quiet = args.json;

    // Throughput and latency, all stages running.
    let system = System::start(&env.settings, args.processes, None).await?;
    let intake = system.addr("order-intake")?;
    let verification = system.addr("verification")?;
    let api = crate::demo::Api::new(
        &env.settings,
        format!("http://{intake}"),
        format!("http://{verification}"),
        format!("http://{}", system.addr("billing")?),
    )?;
    crate::demo::load_catalogue(
        &api,
        args.orders + args.latency_orders + args.backlog_orders + 100,
    )
    .await?;
    let mut completions = Completions::listen(&amqp_url, &env.names()).await?;
    let poster = Poster::new(intake, api.shop_key())?;

    // Warm up: connections, prepared statements, the JIT of our caches.
    let warm = bar(50, "warming up", quiet);
    let warmup = poster.flood(0, 50, 8, &warm).await?;
    completions
        .wait_for(&ids(&warmup), COMPLETION_TIMEOUT, &ProgressBar::hidden())
        .await?;
    warm.finish();
    let before = settled(&system).await?;

    let flood = bar(args.orders * 2, "pipeline: posting + completing", quiet);
    let started = Instant::now();
    let posted = poster
        .flood(50, args.orders, args.concurrency, &flood)
        .await?;
    let done = completions
        .wait_for(&ids(&posted), COMPLETION_TIMEOUT, &flood)
        .await?;
    let last = done.values().max().copied().unwrap_or_else(Instant::now);
    let pipeline_secs = (last - started).as_secs_f64().max(1e-3);
    flood.finish();
    let pipeline_orders_per_s = args.orders as f64 / pipeline_secs;
    let counted = settled(&system).await?.since(&before);
    let messages_per_order = (counted.processed + counted.to_carriers) / args.orders as f64;
    let average_message_bytes = if counted.published > 0.0 {
        counted.published_bytes / counted.published
    } else {
        1024.0
    };

    let offered = (pipeline_orders_per_s / 2.0).max(1.0);
    let paced = bar(
        args.latency_orders * 2,
        "latency at half the maximum rate",
        quiet,
    );
    let posted = poster
        .paced(50 + args.orders, args.latency_orders, offered, &paced)
        .await?;
    let done = completions
        .wait_for(&ids(&posted), COMPLETION_TIMEOUT, &paced)
        .await?;
    paced.finish();
    let latencies: Vec<f64> = posted
        .iter()
        .filter_map(|(id, accepted, _)| {
            done.get(id).map(|at| (*at - *accepted).as_secs_f64() * 1e3)
        })
        .collect();
    let [p50, p90, p99, max] = percentiles(latencies);
    let latency_hops = hops::measure(&env.pool("order_intake").await, &ids(&posted)).await?;
    let peak_rss_mb = system.peak_rss_mb();
    system.stop().await?;
    let backlog = if args.backlog_orders > 0 {
        Some(
            backlog::measure(
                &env,
                &args,
                api.shop_key(),
                &mut completions,
                50 + args.orders + args.latency_orders,
            )
            .await?,
        )
    } else {
        None
    };
    if args.processes {
        delete_queues(&env).await;
    }

    // The broker's own ceiling, with messages of the pipeline's average size.
    let ceiling_bar = bar(args.ceiling_messages, "broker ceiling", quiet);
    let broker_ceiling = ceiling::measure(
        &amqp_url,
        &env.names().queue("bench.ceiling"),
        args.ceiling_messages,
        average_message_bytes.round() as usize,
        &ceiling_bar,
    )
    .await?;
    ceiling_bar.finish();
    drop(env);

    // Intake alone.
    let alone = TestEnv::isolated(settings, "bench", 16)?;
    let system = System::start(&alone.settings, args.processes, Some("order-intake")).await?;
    let poster = Poster::new(system.addr("order-intake")?, api.shop_key())?;
    let intake_bar = bar(args.intake_orders, "intake alone", quiet);
    poster
        .flood(0, 200, args.concurrency, &ProgressBar::hidden())
        .await?;
    let started = Instant::now();
    let posted = poster
        .flood(200, args.intake_orders, args.concurrency, &intake_bar)
        .await?;
    let intake_secs = started.elapsed().as_secs_f64().max(1e-3);
    intake_bar.finish();
    let intake_rss = system.peak_rss_mb();
    system.stop().await?;
    if args.processes {
        delete_queues(&alone).await;
    }
    drop(alone);
    let [_, _, intake_p99, _] = percentiles(
        posted
            .iter()
            .map(|(_, _, took)| took.as_secs_f64() * 1e3)
            .collect(),
    );

    let mut peak_rss_mb = peak_rss_mb;
    if args.processes {
        for (name, mb) in intake_rss {
            let entry = peak_rss_mb.entry(name).or_insert(0.0);
            *entry = entry.max(mb);
        }
    }
    let report = Report {
        broker_ceiling_msgs_per_s: broker_ceiling,
        pipeline_orders_per_s,
        messages_per_order,
        ratio_to_ceiling: pipeline_orders_per_s * messages_per_order / broker_ceiling,
        latency_ms: Latency { p50, p90, p99, max },
        latency_offered_orders_per_s: offered,
        latency_hops,
        intake_orders_per_s: args.intake_orders as f64 / intake_secs,
        intake_p99_ms: intake_p99,
        peak_rss_mb,
        backlog,
        average_message_bytes,
        parameters: args.clone(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

pub(crate) fn ids(posted: &[(Uuid, Instant, Duration)]) -> Vec<Uuid> {
    posted.iter().map(|(id, _, _)| *id).collect()
}

/// The counters once they stop moving: messages that follow `order.completed` (intake hearing
/// its own event, for one) belong to the orders too.
async fn settled(system: &System) -> anyhow::Result<Counters> {
    let mut last = system.counters().await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = system.counters().await?;
        if (now.processed - last.processed).abs() < 0.5 || Instant::now() > deadline {
            return Ok(now);
        }
        last = now;
    }
}

/// In `--processes` mode the queues were declared by the children: delete them by name.
async fn delete_queues(env: &TestEnv) {
    use lapin::options::QueueDeleteOptions;
    let connection = env.connect_broker().await;
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    let names = env.names();
    let mut queues: Vec<String> = crate::up::specs()
        .iter()
        .flat_map(|spec| spec.queues.iter())
        .flat_map(|q| [q.name.clone(), q.dead_letter_name()])
        .collect();
    queues.extend(["carrier.sim".to_owned(), "carrier.sim.dead".to_owned()]);
    for queue in queues {
        let _ = channel
            .queue_delete(
                names.queue(&queue).as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await;
    }
    let _ = connection.close(200, "bench done".into()).await;
}

fn print_table(r: &Report) {
    let mode = if r.parameters.processes {
        "one process per service"
    } else {
        "all services in one process"
    };
    println!();
    println!("orderflow bench ({mode})");
    println!("{:-<64}", "");
    println!(
        "{:<40} {:>12.0} msg/s",
        "broker ceiling (quorum, confirms, acks)", r.broker_ceiling_msgs_per_s
    );
    println!(
        "{:<40} {:>12.0} bytes",
        "  message size (pipeline average)", r.average_message_bytes
    );
    println!(
        "{:<40} {:>12.1} orders/s",
        "pipeline throughput", r.pipeline_orders_per_s
    );
    println!(
        "{:<40} {:>12.1}",
        "broker messages per order (counted)", r.messages_per_order
    );
    println!(
        "{:<40} {:>12.2}",
        "ratio to the broker ceiling", r.ratio_to_ceiling
    );
    println!(
        "{:<40} {:>12}",
        format!(
            "latency at {:.0} orders/s (ms)",
            r.latency_offered_orders_per_s
        ),
        format!("p50 {:.0}", r.latency_ms.p50)
    );
    println!(
        "{:<40} {:>12}",
        "",
        format!(
            "p90 {:.0}  p99 {:.0}  max {:.0}",
            r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.max
        )
    );
    println!("  hops, message → the message it caused (ms):");
    for hop in &r.latency_hops {
        println!(
            "  {:<62} p50 {:>5.0}  p99 {:>5.0}",
            format!("{} → {}", hop.from, hop.to),
            hop.p50_ms,
            hop.p99_ms
        );
    }
    println!(
        "{:<40} {:>12.0} orders/s",
        "intake alone", r.intake_orders_per_s
    );
    println!("{:<40} {:>12.1} ms", "intake alone p99", r.intake_p99_ms);
    for (service, mb) in &r.peak_rss_mb {
        println!("{:<40} {:>12.1} MB", format!("peak RSS: {service}"), mb);
    }
    if let Some(b) = &r.backlog {
        println!(
            "backlog of {} orders ({} messages queued) drained at {:.1} orders/s; RSS (MB):",
            b.orders, b.queued_messages, b.drain_orders_per_s
        );
        for (service, first) in &b.rss_mb_first {
            println!(
                "  {:<38} first {:>6.1}  peak {:>6.1}  last {:>6.1}",
                service,
                first,
                b.rss_mb_peak.get(service).copied().unwrap_or(0.0),
                b.rss_mb_last.get(service).copied().unwrap_or(0.0)
            );
        }
    }
    println!(
        "parameters: {} orders, {} latency orders, {} intake orders, {} ceiling messages, concurrency {}",
        r.parameters.orders,
        r.parameters.latency_orders,
        r.parameters.intake_orders,
        r.parameters.ceiling_messages,
        r.parameters.concurrency
    );
}
