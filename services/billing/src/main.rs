fn main() -> std::process::ExitCode {
    orderflow_runtime::service::main(billing::NAME, billing::run)
}
