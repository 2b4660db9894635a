//! The allocator setting of every process that runs pipelines.

/// glibc's malloc serves an allocation under its mmap threshold from an
/// arena, and raises that threshold (up to 32 MiB) each time a mapped block
/// is freed. In a long run, megabyte buffers that come and go — the state
/// store's table chunks, run filters and indexes, a merge's output — then
/// land in arenas that keep their pages after they are freed: peak RSS at
/// 30 M keys under a 256 MiB budget was 207 MiB, 139 MiB with the
/// threshold fixed at 1 MiB (each such buffer mapped, and unmapped when
/// freed). The seed job's time and memory were unchanged (BENCHMARKS.md).
/// Buffers a plugin returns are recycled instead (`weir::plugin::pool`):
/// mapped fresh, each page would fault and be zeroed before the copy.
///
/// Fixing the mmap threshold also fixes the trim threshold, at 128 KiB:
/// every free at the top of an arena past it gave the pages back, and the
/// next batch's half-megabyte buffers faulted them in again (a 65,536-row
/// batch through a plugin: 0.75 ms became 2.6 ms). 8 MiB keeps a batch's
/// worth per arena; the seed job's peak RSS stayed 48–61 MiB.
///
/// Call it first thing in `main`, before any other thread starts: the
/// `weir` binary does, and so do the benchmarks, to measure what it runs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn map_large_allocations() {
    // SAFETY: `mallopt` sets one of malloc's parameters; nothing else
    // runs yet (no other thread, no allocation in flight).
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn map_large_allocations() {}
