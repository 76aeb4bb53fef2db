fn main() -> std::process::ExitCode {
    orderflow_runtime::service::main("shipping", shipping::run)
}
