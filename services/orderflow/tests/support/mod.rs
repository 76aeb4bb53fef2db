//! Running the `orderflow` binary against a test environment, and the topology it expects.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use orderflow_runtime::testing::TestEnv;

/// The environment variables that point a child process at `env`'s database and prefix.
pub fn env_vars(env: &TestEnv) -> Vec<(String, String)> {
    vec![
        ("AMQP_URL".into(), env.settings.amqp.url.expose().to_owned()),
        (
            "DATABASE_URL".into(),
            env.settings.database.url.expose().to_owned(),
        ),
        ("ORDERFLOW_AMQP__PREFIX".into(), env.prefix.clone()),
        ("RUST_LOG".into(), "warn".into()),
    ]
}

/// `orderflow <args>` for `env`, run to completion.
pub fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    cmd.args(args)
        .envs(env_vars(env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `orderflow <args>` off the async runtime and returns its output.
pub async fn orderflow(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = command(env, args);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run orderflow")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `orderflow <args> --json`, parsed; the command must succeed.
pub async fn orderflow_json(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let output = orderflow(env, args).await;
    assert!(
        output.status.success(),
        "orderflow {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// Runs `orderflow check --in-flight-secs 0 --outbox-secs 0` until it passes (the replicas
/// may still be draining their outboxes) or `within` has passed; then fails the test with the
/// last report.
pub async fn assert_check_passes(env: &TestEnv, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    let check = loop {
        let check = orderflow(
            env,
            &["check", "--in-flight-secs", "0", "--outbox-secs", "0"],
        )
        .await;
        if check.status.success() || std::time::Instant::now() > deadline {
            break check;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    assert!(
        check.status.success(),
        "orderflow check failed:\n{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Declares every service's exchanges and queues from this process, so the environment
/// deletes them when it is dropped (it deletes what its own process declared).
pub async fn declare_topology(env: &TestEnv) {
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    let names = env.names();
    orderflow_runtime::topology::declare_exchanges(&channel, &names)
        .await
        .expect("exchanges");
    let specs = [
        order_intake::spec(),
        verification::spec(),
        fulfilment::spec(),
        shipping::spec(),
        billing::spec(),
    ];
    for spec in specs {
        for queue in &spec.queues {
            orderflow_runtime::topology::declare_queue(
                &connection,
                &names,
                queue,
                env.settings.amqp.delivery_limit,
            )
            .await
            .expect("queue");
        }
    }
    let _ = connection.close(200, "declared".into()).await;
}
