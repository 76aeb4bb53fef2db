//! `orderflow`, the operator's binary: run everything in one process, load a demo, migrate,
//! print the topology or the message schemas.

mod bench;
mod check;
mod definitions;
mod demo;
mod dlq;
mod run;
mod stalled;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orderflow_runtime::Settings;

#[derive(Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Order processing: intake, verification, fulfilment, shipping, billing"
)]
struct Cli {
    /// Settings file (TOML); environment variables override it.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all five services and the simulated carrier in this process until SIGTERM/Ctrl-C.
    Up,
    /// Load a demo catalogue and stock, submit N varied orders and wait until each is final.
    Demo(demo::DemoArgs),
    /// Measure throughput, latency and memory against the broker's own ceiling.
    Bench(bench::BenchArgs),
    /// Create the database and run every service's migrations, then exit.
    Migrate,
    /// Print the broker topology (exchanges, queues, bindings) as JSON.
    Topology,
    /// Write the broker's definitions (topology, users, permissions) for RabbitMQ to load at boot.
    Definitions(definitions::DefinitionsArgs),
    /// Run one stage (or the simulated carrier) in this process, as its own binary would.
    Run {
        #[arg(value_enum)]
        stage: run::Stage,
    },
    /// Inspect, replay or purge the dead-letter queues.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Verify the invariants (nothing lost, nothing doubled) on a live system; non-zero on a breach.
    Check(check::CheckArgs),
    /// List orders waiting in one status longer than its limit; `--publish` announces them.
    Stalled(stalled::StalledArgs),
    /// Write the messages' JSON Schemas into a directory.
    Schemas {
        #[arg(default_value = "shared/messages/schemas")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("orderflow: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // The benchmark and the demo print tables; the services they run should only speak up
    // when something is wrong (RUST_LOG still wins).
    let quiet = matches!(cli.command, Command::Bench(_) | Command::Demo(_));
    let log_settings = if quiet {
        settings
            .with("log.level", "warn")
            .unwrap_or_else(|_| settings.clone())
    } else {
        settings.clone()
    };
    // The reports print to stdout (`--json` for machines), where log lines would corrupt them.
    let reports = matches!(
        cli.command,
        Command::Dlq(_) | Command::Check(_) | Command::Stalled(_)
    );
    if !reports {
        orderflow_runtime::telemetry::init(&log_settings);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("orderflow: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up => up::run(settings, orderflow_runtime::service::shutdown_token()).await,
            Command::Demo(args) => demo::run(&settings, args).await,
            Command::Bench(args) => bench::run(&settings, args).await,
            Command::Migrate => up::migrate(&settings).await,
            Command::Run { stage } => {
                run::run(
                    stage,
                    settings,
                    orderflow_runtime::service::shutdown_token(),
                )
                .await
            }
            Command::Dlq(command) => dlq::run(&settings, command).await,
            Command::Check(args) => check::run(&settings, args).await,
            Command::Stalled(args) => stalled::run(&settings, args).await,
            Command::Definitions(args) => definitions::run(&settings, args),
            Command::Topology => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&up::topology(&settings))?
                );
                Ok(())
            }
            Command::Schemas { dir } => {
                orderflow_messages::schema::write_all(&dir)?;
                println!(
                    "wrote {} schemas to {}",
                    orderflow_messages::catalogue::all().len(),
                    dir.display()
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orderflow: {e:#}");
            ExitCode::FAILURE
        }
    }
}
