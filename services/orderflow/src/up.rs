//! `orderflow up`, `migrate` and `topology`: the five services (and the simulated carrier) as one
//! process, each exactly as its own binary would run it.

use std::net::SocketAddr;

use anyhow::Context;
use lapin::types::AMQPValue;
use orderflow_messages::Exchange;
use orderflow_runtime::service::ServiceSpec;
use orderflow_runtime::topology::{Names, dead_letter_arguments, queue_arguments};
use orderflow_runtime::{CancellationToken, Settings};
use tokio::task::JoinSet;

pub fn specs() -> Vec<ServiceSpec> {
    vec![
        order_intake::spec(),
        verification::spec(),
        fulfilment::spec(),
        shipping::spec(),
        billing::spec(),
    ]
}

/// All five services and the simulated carrier, running in this process.
pub struct Running {
    /// Where each service listens.
    pub addrs: Vec<(&'static str, SocketAddr)>,
    stop: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

/// Starts every service on `settings`; they stop when `shutdown` is cancelled.
pub async fn start(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    let bound = vec![
        ("order-intake", order_intake::build(settings).await?),
        ("verification", verification::build(settings).await?),
        ("fulfilment", fulfilment::build(settings).await?),
        ("shipping", shipping::build(settings).await?),
        ("billing", billing::build(settings).await?),
    ];
    let mut addrs = Vec::new();
    for (name, service) in bound {
        tracing::info!(service = name, addr = %service.local_addr(), "ready");
        addrs.push((name, service.local_addr()));
        let stop = stop.clone();
        tasks.spawn(async move { (name, service.run_until_stopped(stop).await) });
    }
    {
        let settings = settings.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            (
                "carrier-sim",
                shipping::carrier_sim::run(settings, stop).await,
            )
        });
    }
    Ok(Running { addrs, stop, tasks })
}

impl Running {
    /// One service alone (the benchmark's intake-only phase).
    pub fn single(
        name: &'static str,
        addr: SocketAddr,
        stop: CancellationToken,
        service: orderflow_runtime::BoundService,
    ) -> Running {
        let mut tasks = JoinSet::new();
        let token = stop.clone();
        tasks.spawn(async move { (name, service.run_until_stopped(token).await) });
        Running {
            addrs: vec![(name, addr)],
            stop,
            tasks,
        }
    }

    /// Waits until every service has stopped; when one fails, the others are stopped and its
    /// error returned.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut failure = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (name, result) = joined.context("a service task panicked")?;
            if let Err(e) = result {
                tracing::error!(
                    service = name,
                    error = format!("{e:#}"),
                    "service failed; stopping the others"
                );
                failure.get_or_insert(e.context(format!("{name} failed")));
            }
            // A service that ends, for whatever reason, ends the whole.
            self.stop.cancel();
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops every service and waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.wait().await
    }
}

/// `orderflow up`: runs until `shutdown` or a failure.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    start(&settings, shutdown).await?.wait().await
}

/// Creates the database and runs every service's migrations.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    for spec in specs() {
        let pool = orderflow_runtime::database::connect_and_migrate(
            &settings.database,
            spec.schema,
            spec.migrator,
        )
        .await
        .with_context(|| format!("migrating {}", spec.name))?;
        pool.close().await;
        println!("{}: migrated schema {}", spec.name, spec.schema);
    }
    Ok(())
}

/// The topology as JSON: what `Service::start` declares.
pub fn topology(settings: &Settings) -> serde_json::Value {
    let names = Names {
        prefix: settings.amqp.prefix.clone(),
    };
    let exchanges: Vec<_> = Exchange::ALL
        .iter()
        .map(|e| serde_json::json!({"name": names.exchange(*e), "type": e.kind(), "durable": true}))
        .collect();
    let dead_letter_args: serde_json::Map<String, serde_json::Value> = dead_letter_arguments()
        .inner()
        .iter()
        .map(|(k, v)| (k.to_string(), amqp_value(v)))
        .collect();
    let mut queues = Vec::new();
    for spec in specs() {
        for queue in &spec.queues {
            let args: serde_json::Map<String, serde_json::Value> =
                queue_arguments(&names, queue, settings.amqp.delivery_limit)
                    .inner()
                    .iter()
                    .map(|(k, v)| (k.to_string(), amqp_value(v)))
                    .collect();
            queues.push(serde_json::json!({
                "name": names.queue(&queue.name),
                "service": spec.name,
                "arguments": args,
                "bindings": queue.bindings.iter().map(|b| serde_json::json!({
                    "exchange": names.exchange(b.exchange), "routing_key": b.key
                })).collect::<Vec<_>>(),
                "dead_letter_queue": names.queue(&queue.dead_letter_name()),
                "dead_letter_arguments": dead_letter_args.clone(),
            }));
        }
    }
    serde_json::json!({"exchanges": exchanges, "queues": queues})
}

fn amqp_value(value: &AMQPValue) -> serde_json::Value {
    match value {
        AMQPValue::LongString(s) => serde_json::Value::String(s.to_string()),
        AMQPValue::LongUInt(n) => serde_json::json!(n),
        other => serde_json::Value::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use orderflow_messages::{Exchange, Route, catalogue};

    /// Publishing is mandatory: an event no queue is bound to would stay in its outbox.
    #[test]
    fn every_event_on_the_events_exchange_reaches_at_least_one_queue() {
        let specs = super::specs();
        for event in catalogue::all() {
            if event.route != Route::Events {
                continue;
            }
            let heard = specs.iter().flat_map(|s| &s.queues).any(|q| {
                q.bindings
                    .iter()
                    .any(|b| b.exchange == Exchange::Events && b.key == event.name)
            });
            assert!(heard, "no stage's queue is bound to {}", event.name);
        }
    }
}
