//! The `weir` CLI, built inside the test package so CLI tests always run
//! the current code (`env!("CARGO_BIN_EXE_weir-under-test")`).
fn main() -> std::process::ExitCode {
    weir_cli::map_large_allocations();
    weir_cli::main()
}
