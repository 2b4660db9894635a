//! Per-node counters and the run summary.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;

use crate::plugin::Rows;

use crate::graph::NodeKind;

/// Upper bounds (seconds) of the plugin call latency histogram's buckets:
/// 50 µs (a trivial plugin on a small batch) to 10 s (past the default
/// 2 s time limit).
pub const CALL_SECONDS_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    10.0,
];

/// Plugin call latencies, bucketed as they happen (a few relaxed atomic
/// adds per call); read as a Prometheus histogram.
#[derive(Debug, Default)]
struct CallTimes {
    /// Calls per bucket (not cumulative), the last one past every bound.
    buckets: [AtomicU64; CALL_SECONDS_BUCKETS.len() + 1],
    total_ns: AtomicU64,
}

impl CallTimes {
    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let k = CALL_SECONDS_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(CALL_SECONDS_BUCKETS.len());
        self.buckets[k].fetch_add(1, Ordering::Relaxed);
        self.total_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    fn read(&self) -> CallLatency {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        CallLatency {
            counts,
            total: Duration::from_nanos(self.total_ns.load(Ordering::Relaxed)),
        }
    }
}

/// Plugin call latencies so far: calls per bucket of
/// [`CALL_SECONDS_BUCKETS`] (not cumulative; one more bucket at the end
/// for calls past the last bound), and their total time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLatency {
    /// Calls per bucket.
    pub counts: Vec<u64>,
    /// Time in all calls together.
    pub total: Duration,
}

impl CallLatency {
    /// Calls counted.
    pub fn calls(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Counters a node updates as it works.
#[derive(Debug, Default)]
pub struct NodeStats {
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    batches_in: AtomicU64,
    batches_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    busy_ns: AtomicU64,
    failed_batches: AtomicU64,
    dead_rows: AtomicU64,
    bad_records: AtomicU64,
    swaps: AtomicU64,
    rejected_versions: AtomicU64,
    longest_switch_ns: AtomicU64,
    /// The node's event-time watermark (µs since the epoch; 0: none yet).
    watermark_us: AtomicI64,
    calls: CallTimes,
    /// The largest linear memory any of the node's plugin instances holds.
    plugin_memory: AtomicU64,
    /// The plugin version running, and every change of version (rare:
    /// a mutex is fine).
    versions: Mutex<Versions>,
}

/// A transform's plugin versions: the one running and when each took over.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Versions {
    /// The version running now (the component's content hash, short).
    pub current: Option<String>,
    /// Each hot swap or canary promotion: when (ms since the Unix epoch)
    /// and to which version.
    pub history: Vec<(u64, String)>,
}

/// A batch's size as the metrics count it: its Arrow buffers' memory
/// (a slice counts the buffers it shares in full, as arrow-rs reports).
/// The memory `rows` take; for rows under a pending selection, their share
/// of the batch the selection applies to.
fn bytes(rows: &Rows) -> u64 {
    let base = rows.base();
    let size = base.get_array_memory_size() as u64;
    match rows.is_deferred() {
        false => size,
        true => size * rows.num_rows() as u64 / base.num_rows().max(1) as u64,
    }
}

impl NodeStats {
    pub(crate) fn swapped(&self, took: Duration, version: String) {
        self.swaps.fetch_add(1, Ordering::Relaxed);
        self.longest_switch_ns
            .fetch_max(took.as_nanos() as u64, Ordering::Relaxed);
        self.took_over(version);
    }

    /// `version` runs from now on (a swap, or a canary promoted).
    pub(crate) fn took_over(&self, version: String) {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if let Ok(mut v) = self.versions.lock() {
            v.history.push((at, version.clone()));
            v.current = Some(version);
        }
    }

    /// The version a transform starts with (kept across generations).
    pub(crate) fn starts_with(&self, version: String) {
        if let Ok(mut v) = self.versions.lock() {
            v.current.get_or_insert(version);
        }
    }

    pub(crate) fn watermark(&self, us: i64) {
        self.watermark_us.fetch_max(us, Ordering::Relaxed);
    }

    pub(crate) fn consumed(&self, batch: &Rows) {
        self.rows_in
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        self.batches_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes(batch), Ordering::Relaxed);
    }

    pub(crate) fn emitted(&self, batch: &Rows) {
        self.rows_out
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        self.batches_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes(batch), Ordering::Relaxed);
    }

    /// One plugin call done on `instance`: its latency, and the memory
    /// the instance holds now.
    pub(crate) fn called(&self, instance: &weir_plugin_host::PluginInstance) {
        self.calls.observe(instance.last_call());
        self.plugin_memory
            .fetch_max(instance.memory_bytes(), Ordering::Relaxed);
    }

    /// A new plugin version was rejected (hot reload).
    pub fn rejected_version(&self) {
        self.rejected_versions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn produced(&self, batch: &Rows, took: Duration) {
        self.emitted(batch);
        self.busy(took);
    }

    pub(crate) fn failed(&self, dead: &[(RecordBatch, String)]) {
        self.failed_batches.fetch_add(1, Ordering::Relaxed);
        let rows: usize = dead.iter().map(|(b, _)| b.num_rows()).sum();
        self.dead_rows.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// A source met `records` bad records (skipped or dead-lettered).
    pub(crate) fn rejected(&self, records: usize) {
        self.dead_rows.fetch_add(records as u64, Ordering::Relaxed);
        self.bad_records
            .fetch_add(records as u64, Ordering::Relaxed);
    }

    pub(crate) fn busy(&self, took: Duration) {
        self.busy_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn summary(&self, name: &str, kind: NodeKind) -> NodeSummary {
        NodeSummary {
            name: name.to_string(),
            kind,
            rows_in: self.rows_in.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
            batches_in: self.batches_in.load(Ordering::Relaxed),
            batches_out: self.batches_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed)),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            dead_rows: self.dead_rows.load(Ordering::Relaxed),
            bad_records: self.bad_records.load(Ordering::Relaxed),
            swaps: self.swaps.load(Ordering::Relaxed),
            rejected_versions: self.rejected_versions.load(Ordering::Relaxed),
            longest_switch: Duration::from_nanos(self.longest_switch_ns.load(Ordering::Relaxed)),
            watermark: Some(self.watermark_us.load(Ordering::Relaxed)).filter(|w| *w != 0),
            calls: (kind == NodeKind::Transform).then(|| self.calls.read()),
            versions: self.versions.lock().map(|v| v.clone()).unwrap_or_default(),
            plugin_memory: Some(self.plugin_memory.load(Ordering::Relaxed)).filter(|m| *m != 0),
            policy: None,
        }
    }
}

/// What one node did in a run.
#[derive(Debug, Clone)]
pub struct NodeSummary {
    /// Node name.
    pub name: String,
    /// Source, transform or sink.
    pub kind: NodeKind,
    /// Rows received.
    pub rows_in: u64,
    /// Rows emitted.
    pub rows_out: u64,
    /// Batches received.
    pub batches_in: u64,
    /// Batches emitted.
    pub batches_out: u64,
    /// Arrow memory of the batches received, in bytes.
    pub bytes_in: u64,
    /// Arrow memory of the batches emitted, in bytes.
    pub bytes_out: u64,
    /// Time spent in the node's own work (reading, plugin calls, writing).
    pub busy: Duration,
    /// Batches that failed (skipped or dead-lettered).
    pub failed_batches: u64,
    /// Rows sent to the dead-letter output (for a source: bad records,
    /// skipped or dead-lettered).
    pub dead_rows: u64,
    /// A source's bad records (skipped or dead-lettered).
    pub bad_records: u64,
    /// Hot swaps to a new plugin version.
    pub swaps: u64,
    /// New plugin versions rejected (they failed to load, `init`, their
    /// first batch, or a replay), the running one kept.
    pub rejected_versions: u64,
    /// The longest switch at a batch boundary (state hand-over included).
    pub longest_switch: Duration,
    /// The newest event-time watermark the node passed on (µs since the
    /// epoch), if the pipeline has event time.
    pub watermark: Option<i64>,
    /// A transform's plugin call latencies.
    pub calls: Option<CallLatency>,
    /// The largest linear memory of the node's plugin instances, in bytes.
    pub plugin_memory: Option<u64>,
    /// A transform's plugin version and swap history.
    pub versions: Versions,
    /// The failure policy in force: a transform's `on_error`, a source's
    /// `on_bad_record` (as written in the manifest).
    pub policy: Option<&'static str>,
}

/// What a whole run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Wall-clock time from the first batch to the last commit.
    pub elapsed: Duration,
    /// Every node, in pipeline order.
    pub nodes: Vec<NodeSummary>,
    /// The process's peak resident memory so far, in bytes (Linux).
    pub peak_rss: Option<u64>,
    /// Checkpoints, when the pipeline takes them.
    pub checkpoint: Option<CheckpointSummary>,
    /// Time spent before the first batch: opening sources and sinks,
    /// loading and compiling plugins (set by whoever prepared the graph).
    pub load: Option<Duration>,
    /// Stopped on request (Ctrl-C, SIGTERM) before every source ended.
    pub stopped: bool,
}

/// What checkpointing did in a run, and what it guarantees.
#[derive(Debug, Clone)]
pub struct CheckpointSummary {
    /// Checkpoints completed (the final one included).
    pub completed: u64,
    /// The newest one's id.
    pub last: Option<u64>,
    /// The checkpoint this run resumed from.
    pub resumed_from: Option<u64>,
    /// Each source's delivery guarantee across a crash.
    pub sources: Vec<(String, crate::source::Delivery)>,
    /// Each sink, and whether it publishes only checkpointed output.
    pub sinks: Vec<(String, bool)>,
}

/// The process's peak resident set size (`VmHWM`), where the OS tells it.
/// Unlike `getrusage`, it is not inflated by the parent's image before
/// `exec`.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl RunSummary {
    /// The summary of the node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeSummary> {
        self.nodes.iter().find(|n| n.name == name)
    }
}
