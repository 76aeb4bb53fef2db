//! The chaos suite's replicas: two processes per stage and the simulated carrier, each
//! `orderflow run <stage>` with the test environment's settings, killed and restarted at random
//! by a supervisor that also restarts any that exit on their own.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orderflow_runtime::CancellationToken;
use orderflow_runtime::testing::TestEnv;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::process::{Child, Command};

use crate::support::env_vars;

pub const STAGES: [(&str, &str); 5] = [
    ("order-intake", "ORDER_INTAKE"),
    ("verification", "VERIFICATION"),
    ("fulfilment", "FULFILMENT"),
    ("shipping", "SHIPPING"),
    ("billing", "BILLING"),
];

#[derive(Default)]
pub struct Figures {
    pub kills: AtomicUsize,
    pub restarts: AtomicUsize,
    pub exits: AtomicUsize,
    pub closed_connections: AtomicUsize,
    pub duplicates: AtomicUsize,
    pub duplicator_reconnects: AtomicUsize,
}

pub struct Replica {
    stage: &'static str,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .args(["run", self.stage])
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("start a replica");
        self.child = Some(child);
    }

    /// Sets (or replaces) an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub fn stage(&self) -> &'static str {
        self.stage
    }

    /// The exit status, once the process has exited (`None` while it runs or before a start).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit: its status and how long
    /// it took, or `None` if it was still running (it is then killed).
    pub async fn terminate(
        &mut self,
        limit: Duration,
    ) -> Option<(std::process::ExitStatus, Duration)> {
        let mut child = self.child.take()?;
        let pid = child.id()?.to_string();
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -TERM {pid}");
        match tokio::time::timeout(limit, child.wait()).await {
            Ok(Ok(status)) => Some((status, started.elapsed())),
            _ => {
                let _ = child.kill().await;
                None
            }
        }
    }

    /// What the process wrote to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The HTTP port of the first replica of each stage (the tests talk to those).
pub type Ports = std::collections::BTreeMap<&'static str, u16>;

/// `per_stage` replicas of every stage and one simulated carrier.
pub fn replicas(env: &TestEnv, dir: &std::path::Path, per_stage: usize) -> (Vec<Replica>, Ports) {
    let mut ports = Ports::new();
    let mut all = Vec::new();
    for (stage, section) in STAGES {
        for i in 0..per_stage {
            let port = if i == 0 {
                *ports.entry(stage).or_insert_with(free_port)
            } else {
                0
            };
            let mut vars = env_vars(env);
            vars.push((format!("ORDERFLOW_{section}__PORT"), port.to_string()));
            vars.push((format!("ORDERFLOW_{section}__HOST"), "127.0.0.1".into()));
            vars.push(("ORDERFLOW_DATABASE__MAX_CONNECTIONS".into(), "3".into()));
            all.push(Replica {
                stage,
                env: vars,
                log: dir.join(format!("{stage}-{i}.log")),
                child: None,
            });
        }
    }
    let mut vars = env_vars(env);
    vars.push(("ORDERFLOW_CARRIER_SIM__PORT".into(), "0".into()));
    all.push(Replica {
        stage: "carrier-sim",
        env: vars,
        log: dir.join("carrier-sim.log"),
        child: None,
    });
    (all, ports)
}

/// Kills a random replica now and then and restarts it; restarts any replica that exited.
pub async fn supervise(
    mut replicas: Vec<Replica>,
    chaos: CancellationToken,
    stop: CancellationToken,
    figures: Arc<Figures>,
) {
    let mut dice = StdRng::from_os_rng();
    let mut next_kill = Instant::now() + Duration::from_secs(3);
    loop {
        if stop.is_cancelled() {
            break;
        }
        for r in &mut replicas {
            let exited = r
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                figures.exits.fetch_add(1, Ordering::Relaxed);
                figures.restarts.fetch_add(1, Ordering::Relaxed);
                r.start();
            }
        }
        if !chaos.is_cancelled() && Instant::now() >= next_kill {
            let i = dice.random_range(0..replicas.len());
            replicas[i].kill().await;
            figures.kills.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(dice.random_range(100..800))).await;
            replicas[i].start();
            figures.restarts.fetch_add(1, Ordering::Relaxed);
            next_kill = Instant::now() + Duration::from_millis(dice.random_range(1500..3500));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for r in &mut replicas {
        r.kill().await;
    }
}

/// What every whole-system test starts from: a migrated environment with every queue declared,
/// `per_stage` replicas of every stage and the simulated carrier running (logs in their own
/// directory, kept when a test fails), the shop's catalogue and stock in place, and a client.
pub struct System {
    pub env: TestEnv,
    pub logs: PathBuf,
    pub replicas: Vec<Replica>,
    pub ports: Ports,
    pub client: reqwest::Client,
}

impl System {
    /// `log_filter` replaces the replicas' `RUST_LOG` (`warn`).
    pub async fn start(label: &str, per_stage: usize, log_filter: Option<&str>) -> System {
        let env = TestEnv::new();
        let migrated = crate::support::orderflow(&env, &["migrate"]).await;
        assert!(
            migrated.status.success(),
            "{}",
            String::from_utf8_lossy(&migrated.stderr)
        );
        crate::support::declare_topology(&env).await;
        let logs = std::env::temp_dir().join(format!(
            "orderflow-{label}-{}",
            env.prefix.trim_end_matches('.')
        ));
        std::fs::create_dir_all(&logs).expect("log directory");
        let (mut replicas, ports) = replicas(&env, &logs, per_stage);
        for r in &mut replicas {
            if let Some(filter) = log_filter {
                r.set_env("RUST_LOG", filter);
            }
            r.start();
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let system = System {
            env,
            logs,
            replicas,
            ports,
            client,
        };
        crate::shop::stock_up(&system.client, &system.url("verification"), 100_000).await;
        system
    }

    /// The base URL of `stage`'s first replica.
    pub fn url(&self, stage: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[stage])
    }
}
