fn main() -> std::process::ExitCode {
    map_large_allocations();
    weir_cli::main()
}

/// glibc's malloc serves an allocation under its mmap threshold from an
/// arena, and raises that threshold (up to 32 MiB) each time a mapped block
/// is freed. In a long run, megabyte buffers that come and go — the state
/// store's table chunks, run filters and indexes, a merge's output — then
/// land in arenas that keep their pages after they are freed: peak RSS at
/// 30 M keys under a 256 MiB budget was 207 MiB, 139 MiB with the
/// threshold fixed at 1 MiB (each such buffer mapped, and unmapped when
/// freed). The seed job's time and memory were unchanged (BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn map_large_allocations() {
    // SAFETY: `mallopt` sets one of malloc's parameters; nothing else
    // runs yet (no other thread, no allocation in flight).
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn map_large_allocations() {}
