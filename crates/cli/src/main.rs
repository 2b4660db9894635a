fn main() -> std::process::ExitCode {
    weir_cli::map_large_allocations();
    weir_cli::main()
}
