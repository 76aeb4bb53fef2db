fn main() -> std::process::ExitCode {
    orderflow_runtime::service::main("verification", verification::run)
}
