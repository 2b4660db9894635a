//! Defaults, in one place: every layer reads them from here (the
//! manifest's `[pipeline]`, a plugin's `limits`).

/// Rows per batch a source emits.
pub const BATCH_SIZE: usize = 8192;
/// Batches buffered between two nodes before the upstream waits.
pub const CHANNEL_CAPACITY: usize = 4;
/// Wasm stack a plugin call may use, in KiB.
pub const MAX_STACK_KB: usize = 1024;
/// Linear memory a plugin instance may grow to.
pub const MEMORY_MB: u64 = 512;
/// Wall-clock budget of one plugin call.
pub const TIMEOUT_MS: u64 = 2_000;
/// Compiled components kept on disk, in MiB (`WEIR_CACHE_MAX_MB`): past
/// it, the least recently used go.
pub const CACHE_MAX_MB: u64 = 2048;
/// Consecutive failed batches after which a node stops, under the
/// `skip` and `dead_letter` policies.
pub const MAX_FAILURES: u32 = 10;

/// `[pipeline] lineage.running_interval_ms`: how often a running pipeline
/// sends an OpenLineage RUNNING event with its row counts so far.
pub const LINEAGE_RUNNING_INTERVAL_MS: u64 = 60_000;
