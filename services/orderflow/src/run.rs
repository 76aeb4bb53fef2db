//! `orderflow run <stage>`: one stage in this process, exactly as its own binary runs it, so a
//! single binary can start any replica (the chaos suite starts two of each this way).

use clap::ValueEnum;
use orderflow_runtime::{CancellationToken, Settings};

/// A stage that `orderflow run` can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    OrderIntake,
    Verification,
    Fulfilment,
    Shipping,
    Billing,
    CarrierSim,
}

/// Runs `stage` until `shutdown` (SIGTERM/Ctrl-C) or a failure.
pub async fn run(
    stage: Stage,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match stage {
        Stage::OrderIntake => order_intake::run(settings, shutdown).await,
        Stage::Verification => verification::run(settings, shutdown).await,
        Stage::Fulfilment => fulfilment::run(settings, shutdown).await,
        Stage::Shipping => shipping::run(settings, shutdown).await,
        Stage::Billing => billing::run(settings, shutdown).await,
        Stage::CarrierSim => shipping::carrier_sim::run(settings, shutdown).await,
    }
}
