//! The system under test: all services in this process (as `orderflow up`), or one process per
//! service (as in production), built from the binaries next to this one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use orderflow_runtime::{CancellationToken, Settings};
use tokio::process::{Child, Command};

use crate::up;

/// The service binaries and their config sections, in start order.
const SERVICES: &[(&str, &str)] = &[
    ("order-intake", "order_intake"),
    ("verification", "verification"),
    ("fulfilment", "fulfilment"),
    ("shipping", "shipping"),
    ("billing", "billing"),
];

pub enum System {
    InProcess(up::Running),
    Processes {
        children: Vec<(&'static str, Child)>,
        addrs: Vec<(&'static str, SocketAddr)>,
    },
}

impl System {
    /// Starts `only` (or every service and the carrier when `None`).
    pub async fn start(
        settings: &Settings,
        processes: bool,
        only: Option<&'static str>,
    ) -> anyhow::Result<System> {
        if !processes {
            return match only {
                None => Ok(System::InProcess(
                    up::start(settings, CancellationToken::new()).await?,
                )),
                Some(name) => {
                    // The stages' queues exist, so what intake publishes waits there (as in a
                    // deployment whose stages are down) instead of being refused as unroutable.
                    declare_topology(settings).await?;
                    let service = match name {
                        "order-intake" => order_intake::build(settings).await?,
                        other => bail!("cannot start {other} alone"),
                    };
                    let addr = service.local_addr();
                    let stop = CancellationToken::new();
                    let running = up::Running::single(name, addr, stop, service);
                    Ok(System::InProcess(running))
                }
            };
        }
        if only.is_some() {
            declare_topology(settings).await?;
        }
        let dir = std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .context("the directory of this binary")?;
        let mut children = Vec::new();
        let mut addrs = Vec::new();
        for (name, section) in SERVICES
            .iter()
            .filter(|(n, _)| only.is_none_or(|o| o == *n))
        {
            let port = free_port()?;
            let child = spawn(
                &dir.join(name),
                settings,
                &[
                    (
                        format!("ORDERFLOW_{}__PORT", section.to_uppercase()),
                        port.to_string(),
                    ),
                    (
                        format!("ORDERFLOW_{}__HOST", section.to_uppercase()),
                        "127.0.0.1".into(),
                    ),
                ],
            )?;
            children.push((*name, child));
            addrs.push((*name, SocketAddr::from(([127, 0, 0, 1], port))));
        }
        if only.is_none() {
            children.push((
                "carrier-sim",
                spawn(&dir.join("carrier-sim"), settings, &[])?,
            ));
        }
        let system = System::Processes { children, addrs };
        system.wait_ready().await?;
        Ok(system)
    }

    pub fn addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        match self {
            System::InProcess(running) => running.addrs.clone(),
            System::Processes { addrs, .. } => addrs.clone(),
        }
    }

    pub fn addr(&self, service: &str) -> anyhow::Result<SocketAddr> {
        self.addrs()
            .into_iter()
            .find(|(n, _)| *n == service)
            .map(|(_, a)| a)
            .with_context(|| format!("{service} is not running"))
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for (name, addr) in self.addrs() {
            loop {
                let ready = client.get(format!("http://{addr}/readyz")).send().await;
                if ready.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{name} did not become ready within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Sums of the counters every service exports, from their `/metrics` (one scrape suffices
    /// in process: the services share one registry).
    pub async fn counters(&self) -> anyhow::Result<Counters> {
        let client = reqwest::Client::new();
        let addrs = match self {
            System::InProcess(running) => running.addrs.iter().take(1).copied().collect(),
            System::Processes { addrs, .. } => addrs.clone(),
        };
        let mut total = Counters::default();
        for (_, addr) in addrs {
            let text = client
                .get(format!("http://{addr}/metrics"))
                .send()
                .await?
                .text()
                .await?;
            total.add(&Counters::parse(&text));
        }
        Ok(total)
    }

    /// Peak resident memory per process, in MB.
    pub fn peak_rss_mb(&self) -> BTreeMap<String, f64> {
        match self {
            System::InProcess(_) => BTreeMap::from([(
                "orderflow (all services in one process)".to_owned(),
                vm_hwm_mb("self").unwrap_or(0.0),
            )]),
            System::Processes { children, .. } => children
                .iter()
                .filter_map(|(name, child)| {
                    let pid = child.id()?;
                    Some((
                        (*name).to_owned(),
                        vm_hwm_mb(&pid.to_string()).unwrap_or(0.0),
                    ))
                })
                .collect(),
        }
    }

    /// The processes to watch: `self` for the services in this process, else each child.
    pub fn pids(&self) -> Vec<(String, String)> {
        match self {
            System::InProcess(_) => vec![(
                "orderflow (all services in one process)".to_owned(),
                "self".to_owned(),
            )],
            System::Processes { children, .. } => children
                .iter()
                .filter_map(|(name, child)| Some(((*name).to_owned(), child.id()?.to_string())))
                .collect(),
        }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        match self {
            System::InProcess(running) => running.stop().await,
            System::Processes { children, .. } => {
                for (_, child) in &children {
                    if let Some(pid) = child.id() {
                        // SIGTERM: the services shut down gracefully.
                        let _ = std::process::Command::new("kill")
                            .arg(pid.to_string())
                            .status();
                    }
                }
                for (name, mut child) in children {
                    match tokio::time::timeout(Duration::from_secs(40), child.wait()).await {
                        Ok(Ok(status)) if status.success() => {}
                        Ok(Ok(status)) => tracing::warn!(service = name, %status, "exited"),
                        _ => {
                            let _ = child.kill().await;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Declares every stage's queues and bindings under the settings' prefix.
async fn declare_topology(settings: &Settings) -> anyhow::Result<()> {
    use orderflow_runtime::topology::{self, Names};
    let connection = lapin::Connection::connect(
        settings.amqp.url.expose(),
        lapin::ConnectionProperties::default(),
    )
    .await?;
    let channel = connection.create_channel().await?;
    let names = Names {
        prefix: settings.amqp.prefix.clone(),
    };
    topology::declare_exchanges(&channel, &names).await?;
    for spec in up::specs() {
        for queue in &spec.queues {
            topology::declare_queue(&connection, &names, queue, settings.amqp.delivery_limit)
                .await?;
        }
    }
    let _ = connection.close(200, "declared".into()).await;
    Ok(())
}

fn spawn(
    binary: &std::path::Path,
    settings: &Settings,
    extra: &[(String, String)],
) -> anyhow::Result<Child> {
    if !binary.exists() {
        bail!(
            "{} is missing: build every binary first (`cargo build --release --workspace`)",
            binary.display()
        );
    }
    let mut command = Command::new(binary);
    command
        .env("AMQP_URL", settings.amqp.url.expose())
        .env("DATABASE_URL", settings.database.url.expose())
        .env("ORDERFLOW_AMQP__PREFIX", &settings.amqp.prefix)
        .env(
            "ORDERFLOW_DATABASE__MAX_CONNECTIONS",
            settings.database.max_connections.to_string(),
        )
        .env("ORDERFLOW_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (key, value) in extra {
        command.env(key, value);
    }
    command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn vm_hwm_mb(pid: &str) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

/// Resident memory of `pid` now, in MB.
pub fn vm_rss_mb(pid: &str) -> Option<f64> {
    status_mb(pid, "VmRSS:")
}

fn status_mb(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The counters the benchmark reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Deliveries handled by the services' consumers (any outcome).
    pub processed: f64,
    /// Confirmed publications to `orderflow.carriers` (each one delivery to a carrier queue).
    pub to_carriers: f64,
    /// Confirmed publications, all exchanges.
    pub published: f64,
    pub published_bytes: f64,
}

impl Counters {
    fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if name.starts_with("orderflow_messages_processed_total") {
                c.processed += value;
            } else if name.starts_with("orderflow_messages_published_total") {
                if !name.contains("exchange=\"raw\"") {
                    c.published += value;
                }
                if name.contains("exchange=\"orderflow.carriers\"") {
                    c.to_carriers += value;
                }
            } else if name.starts_with("orderflow_published_bytes_total") {
                c.published_bytes += value;
            }
        }
        c
    }

    fn add(&mut self, other: &Counters) {
        self.processed += other.processed;
        self.to_carriers += other.to_carriers;
        self.published += other.published;
        self.published_bytes += other.published_bytes;
    }

    /// `self - earlier`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            processed: self.processed - earlier.processed,
            to_carriers: self.to_carriers - earlier.to_carriers,
            published: self.published - earlier.published,
            published_bytes: self.published_bytes - earlier.published_bytes,
        }
    }
}
