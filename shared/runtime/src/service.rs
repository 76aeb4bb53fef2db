//! The composition root every service shares: [`Service::start`] connects and migrates,
//! [`Service::consume`] adds a consumer loop per queue, [`Service::bind`] opens the HTTP port
//! and [`BoundService::run_until_stopped`] runs until shutdown, then stops in order: HTTP,
//! consumers (finishing their batch in hand), outbox relay (draining what is due), connections.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::amqp::{Broker, Publisher};
use crate::config::Settings;
use crate::consumer::{ConsumerLoop, Handler};
use crate::outbox::Relay;
use crate::topology::{self, QueueSpec};

/// What a service is, as data.
pub struct ServiceSpec {
    /// The service's name in logs, metrics and as `producer` of its messages.
    pub name: &'static str,
    /// Its PostgreSQL schema and its config section (`order_intake`, `verification`, …).
    pub schema: &'static str,
    pub migrator: &'static Migrator,
    pub queues: Vec<QueueSpec>,
}

/// A started service: database migrated, topology declared, outbox relay running.
pub struct Service {
    pub name: &'static str,
    pub schema: &'static str,
    pub settings: Settings,
    pub pool: PgPool,
    pub broker: Arc<Broker>,
    pub publisher: Publisher,
    queues: Vec<QueueSpec>,
    consumers: TaskTracker,
    stop_consuming: CancellationToken,
    relay: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop_relay: CancellationToken,
    /// Set when a background part failed for good; the service then stops with this reason.
    fatal: Arc<Mutex<Option<String>>>,
    fatal_signal: CancellationToken,
}

impl Service {
    pub async fn start(settings: &Settings, spec: ServiceSpec) -> anyhow::Result<Service> {
        let pool = crate::database::connect(&settings.database, spec.schema, spec.migrator)
            .await
            .with_context(|| format!("{}: database", spec.name))?;
        let broker = Broker::connect(&settings.amqp, spec.name)
            .await
            .with_context(|| format!("{}: broker", spec.name))?;
        crate::amqp::log_events(spec.name, &broker.publish);
        crate::amqp::log_events(spec.name, &broker.consume);
        let channel = broker.publish.create_channel().await?;
        topology::declare_exchanges(&channel, &broker.names).await?;
        for queue in &spec.queues {
            topology::declare_queue(
                &broker.publish,
                &broker.names,
                queue,
                settings.amqp.delivery_limit,
            )
            .await
            .with_context(|| format!("declaring queue {}", queue.name))?;
        }
        let _ = channel.close(200, "topology declared".into()).await;

        let publisher = broker.publisher().await?;
        let stop_relay = CancellationToken::new();
        let relay = tokio::spawn(
            Relay {
                service: spec.name,
                schema: spec.schema.to_owned(),
                pool: pool.clone(),
                publisher: broker.publisher().await?,
            }
            .run(stop_relay.clone()),
        );
        spawn_outbox_gauge(spec.name, pool.clone(), stop_relay.clone());
        tracing::info!(service = spec.name, "started");
        Ok(Service {
            name: spec.name,
            schema: spec.schema,
            settings: settings.clone(),
            pool,
            broker: Arc::new(broker),
            publisher,
            queues: spec.queues,
            consumers: TaskTracker::new(),
            stop_consuming: CancellationToken::new(),
            relay,
            stop_relay,
            fatal: Arc::new(Mutex::new(None)),
            fatal_signal: CancellationToken::new(),
        })
    }

    /// Starts a consumer loop on `queue` (one of the spec's queues, unprefixed).
    pub fn consume<H: Handler>(&self, queue: &str, handler: H) -> anyhow::Result<()> {
        if !self.queues.iter().any(|q| q.name == queue) {
            bail!("{}: queue {queue} is not in the service's spec", self.name);
        }
        let consumer = ConsumerLoop {
            service: self.name,
            queue: queue.to_owned(),
            names: self.broker.names.clone(),
            schema: self.schema,
            pool: self.pool.clone(),
            broker: self.broker.clone(),
            publisher: self.publisher.clone(),
            prefetch: self.settings.amqp.prefetch,
            batch_size: self.settings.amqp.batch_size.max(1),
            handler,
        };
        let stop = self.stop_consuming.clone();
        let fatal = self.fatal.clone();
        let signal = self.fatal_signal.clone();
        let (name, queue) = (self.name, queue.to_owned());
        self.consumers.spawn(async move {
            if let Err(e) = consumer.run(stop).await {
                let reason = format!("{name}: consumer of {queue} stopped: {e:#}");
                tracing::error!("{reason}");
                if let Ok(mut f) = fatal.lock() {
                    f.get_or_insert(reason);
                }
                signal.cancel();
            }
        });
        Ok(())
    }

    /// Binds the HTTP port of the service's section (`host`, `port`; port 0 picks a free one).
    pub async fn bind(self, api: Router) -> anyhow::Result<BoundService> {
        let http = self.settings.http(self.schema)?;
        let listener = TcpListener::bind((http.host.as_str(), http.port))
            .await
            .with_context(|| {
                format!(
                    "{}: cannot listen on {}:{} (set ORDERFLOW_{}__PORT)",
                    self.name,
                    http.host,
                    http.port,
                    self.schema.to_uppercase()
                )
            })?;
        let router = crate::http::with_health(api, self.pool.clone(), self.broker.clone());
        Ok(BoundService {
            listener,
            router,
            service: self,
        })
    }
}

fn spawn_outbox_gauge(service: &'static str, pool: PgPool, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            if let Ok(n) = crate::outbox::pending(&pool).await {
                metrics::gauge!("orderflow_outbox_pending", "service" => service).set(n as f64);
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    });
}

/// A service with its HTTP port open.
pub struct BoundService {
    listener: TcpListener,
    router: Router,
    service: Service,
}

impl BoundService {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn pool(&self) -> &PgPool {
        &self.service.pool
    }

    /// Serves until `shutdown` (or a fatal failure), then stops everything in order. Returns an
    /// error when the stop was caused by a failure, so the process exits non-zero.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let BoundService {
            listener,
            router,
            service,
        } = self;
        let name = service.name;
        tracing::info!(service = name, addr = %listener.local_addr()?, "listening");
        let broker = service.broker.clone();
        let fatal = service.fatal.clone();
        let fatal_signal = service.fatal_signal.clone();
        let stop_http = CancellationToken::new();
        {
            let stop_http = stop_http.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = fatal_signal.cancelled() => {}
                    reason = broker.watch() => {
                        tracing::error!(service = name, %reason, "stopping");
                        if let Ok(mut f) = fatal.lock() {
                    f.get_or_insert(reason);
                }
                    }
                }
                stop_http.cancel();
            });
        }
        let stop = stop_http.clone();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .context("HTTP server")?;

        tracing::info!(service = name, "stopping consumers");
        service.stop_consuming.cancel();
        service.consumers.close();
        if tokio::time::timeout(Duration::from_secs(30), service.consumers.wait())
            .await
            .is_err()
        {
            tracing::warn!(service = name, "consumers did not stop within 30 s");
        }
        tracing::info!(service = name, "flushing the outbox");
        service.stop_relay.cancel();
        match tokio::time::timeout(Duration::from_secs(30), service.relay).await {
            Ok(Ok(Err(e))) => {
                tracing::warn!(service = name, error = format!("{e:#}"), "outbox relay")
            }
            Err(_) => tracing::warn!(service = name, "outbox relay did not finish within 30 s"),
            _ => {}
        }
        service.broker.close().await;
        service.pool.close().await;
        tracing::info!(service = name, "stopped");
        let reason = service.fatal.lock().ok().and_then(|mut f| f.take());
        match reason {
            Some(reason) => bail!(reason),
            None => Ok(()),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

/// The whole `main` of a service binary: `--config FILE`, settings, telemetry, a runtime, and
/// `run` until SIGTERM/Ctrl-C. A failure is printed with its causes and exits with status 1.
pub fn main<F, Fut>(name: &str, run: F) -> std::process::ExitCode
where
    F: FnOnce(Settings, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut args = std::env::args().skip(1);
    let mut config = None;
    let mut healthcheck = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => config = args.next().map(std::path::PathBuf::from),
            "healthcheck" => healthcheck = true,
            "--help" | "-h" => {
                println!(
                    "usage: {name} [--config FILE] [healthcheck]\n\n`healthcheck` exits 0 when the running {name} is ready (its /readyz), 1 otherwise.\n\nSettings: defaults, then FILE, then the environment (AMQP_URL, DATABASE_URL, ORDERFLOW_<SECTION>__<KEY>)."
                );
                return std::process::ExitCode::SUCCESS;
            }
            other => {
                eprintln!("{name}: unknown argument `{other}` (try --help)");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if healthcheck {
        return crate::healthcheck::run(name, &settings);
    }
    crate::telemetry::init(&settings);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = shutdown_token();
        run(settings, shutdown).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{name} failed");
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
