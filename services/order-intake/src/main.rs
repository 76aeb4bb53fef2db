//! The order-intake service alone, as compose runs it.

fn main() -> std::process::ExitCode {
    orderflow_runtime::service::main(order_intake::NAME, order_intake::run)
}
