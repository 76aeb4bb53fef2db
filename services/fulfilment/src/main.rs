fn main() -> std::process::ExitCode {
    orderflow_runtime::service::main("fulfilment", fulfilment::run)
}
