//! The simulated carrier `sim`, on its own: consumes `carrier.sim`, answers on
//! `orderflow.carrier-events`.

fn main() -> std::process::ExitCode {
    orderflow_runtime::service::main("carrier-sim", shipping::carrier_sim::run)
}
