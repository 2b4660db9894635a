//! Checkpoints: a consistent cut through the running pipeline, kept on
//! disk, that a restarted run resumes from — no input row lost, no output
//! row repeated.
//!
//! The protocol is Flink's aligned barriers with a two-phase file commit:
//!
//! 1. Every `interval_ms` the [`Coordinator`] asks for checkpoint `n`.
//!    Each source, at its next batch boundary, records its position and
//!    sends barrier `n` downstream.
//! 2. A transform that has barrier `n` on every input (see
//!    `exec::message::Inputs`) records its plugin's `snapshot` and
//!    forwards the barrier; a sink *prepares*: a file sink closes its
//!    current part file under a temporary name (fsynced, invisible).
//! 3. When every node has answered, the checkpoint is written atomically
//!    (a directory renamed into place), and only then are the prepared
//!    part files renamed to their final names.
//!
//! On start, the newest complete checkpoint is loaded: sources seek,
//! plugins `restore`, sinks redo that checkpoint's renames (idempotent)
//! and delete temporary files written after it. A crash anywhere leaves
//! either the old checkpoint (its renames redone, the newer temporary
//! parts deleted and their rows replayed) or the new one.

mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};
pub use store::{latest, transform_states, Loaded};

/// The `[pipeline.checkpoint]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// `dir`: where checkpoints are kept, relative to the manifest. One
    /// directory per pipeline: a restarted run resumes from the newest.
    pub dir: PathBuf,
    /// `interval_ms`: time between checkpoints (default 1000).
    #[serde(default = "interval_ms")]
    pub interval_ms: u64,
    /// `keep`: completed checkpoints kept on disk (default 3, at least 1).
    #[serde(default = "keep")]
    pub keep: usize,
    /// `max_failed_snapshots`: a plugin whose `snapshot` returns an error
    /// declines that checkpoint (the next one tries again); up to this
    /// many in a row are declined, one more fails the run (default 3).
    #[serde(default = "max_failed_snapshots")]
    pub max_failed_snapshots: u32,
}

fn interval_ms() -> u64 {
    1000
}
fn keep() -> usize {
    3
}
fn max_failed_snapshots() -> u32 {
    3
}

/// A file a sink prepared, renamed into place once the checkpoint that
/// covers it is on disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rename {
    /// The temporary file.
    pub from: PathBuf,
    /// Its final name.
    pub to: PathBuf,
}

impl Rename {
    /// Renames `from` to `to`; done already (only `to` exists) is fine.
    pub fn apply(&self) -> std::io::Result<()> {
        match std::fs::rename(&self.from, &self.to) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.to.exists() => Ok(()),
            other => other,
        }
    }
}

/// What a sink hands to a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SinkState {
    /// Sink-defined state restored on resume (a file sink: its next part
    /// number).
    pub state: serde_json::Value,
    /// Files to publish once the checkpoint is durable.
    pub pending: Vec<Rename>,
    /// Bytes kept with the checkpoint, in a file of their own beside its
    /// metadata (a Kafka sink: the records of transactions not yet known
    /// committed, replayed on resume).
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
    /// Run once the checkpoint is durable, after the renames (a Kafka
    /// sink: its transaction's commit). Never stored.
    #[serde(skip)]
    pub publish: Option<Publish>,
}

/// Work a node hands to the checkpoint that covers it, run on the
/// checkpoint thread once that checkpoint is on disk: a transaction's
/// commit, offsets committed to a Kafka consumer group.
///
/// A publish must also cover whatever the node handed to earlier
/// checkpoints: those of an abandoned checkpoint run with the next
/// completed one, and any of them may be lost to a crash (a resumed node
/// redoes it from its checkpointed state).
#[derive(Clone)]
pub struct Publish(Arc<dyn Fn() -> std::result::Result<(), String> + Send + Sync>);

impl Publish {
    /// Wraps `f`; its `Err` is logged (the node itself fails the run when
    /// it can't go on).
    pub fn new(f: impl Fn() -> std::result::Result<(), String> + Send + Sync + 'static) -> Self {
        Publish(Arc::new(f))
    }

    fn run(&self) -> std::result::Result<(), String> {
        (self.0)()
    }
}

impl std::fmt::Debug for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publish")
    }
}

impl PartialEq for Publish {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What a checkpoint waits for before it is written: part of a node's
/// state still being written off the node's thread (the host state
/// store's newest run). The same shape as a [`Publish`], run before the
/// checkpoint is written instead of after, and called again for every
/// checkpoint that holds the state (a node's last state is in each one
/// after it ended). `Err`: it can't be written, nor the checkpoint.
pub type Pending = Publish;

/// One node's part of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeState {
    /// Where a source resumes (`None`: it can't replay; it starts over).
    Source {
        /// Source-defined position.
        position: Option<serde_json::Value>,
        /// The event-time watermark the source had reached.
        watermark: Option<i64>,
    },
    /// A transform's plugin state.
    Transform {
        /// The plugin's `snapshot` (`None`: stateless).
        state: Option<Vec<u8>>,
        /// Index of the next input batch.
        next_batch: u64,
        /// What `state` names that is still being written.
        pending: Option<Pending>,
    },
    /// A sink's state and the files it prepared.
    Sink(SinkState),
}

/// A sink's publish, taken out of its state (states are cloned into
/// later checkpoints; a publish runs once).
fn take_publish(state: &mut NodeState) -> Option<Publish> {
    match state {
        NodeState::Sink(sink) => sink.publish.take(),
        _ => None,
    }
}

/// What the coordinator hears from the nodes.
enum Report {
    /// `node` reached barrier `id` with `state`.
    Ack(u64, String, NodeState),
    /// `node` is done; `state` stands for it in every later checkpoint.
    Ended(String, NodeState),
    /// `node` can't take part in checkpoint `id` (its plugin's snapshot
    /// failed): the checkpoint is abandoned, the next one tries again.
    Decline(u64, String, String),
    /// A new generation runs these nodes (after a manifest reload).
    Nodes(Vec<String>),
    /// Pause: abandon the checkpoint in flight, start none.
    Pause,
    /// The run succeeded: write the final checkpoint and stop.
    Finish(mpsc::Sender<Result<()>>),
    /// Run `Publish` once checkpoint `id` (or a later one) is durable;
    /// `node` names it in the log.
    Publish(u64, String, Publish),
    /// The run failed or was abandoned: stop.
    Stop,
}

/// Runs checkpoints for one pipeline run.
pub struct Coordinator {
    requested: Arc<AtomicU64>,
    max_failed_snapshots: u32,
    reports: Mutex<mpsc::Sender<Report>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    status: Arc<Status>,
}

/// What the run summary and the progress line show.
#[derive(Debug, Default)]
pub struct Status {
    completed: AtomicU64,
    last_id: AtomicU64,
    last_unix_ms: AtomicU64,
    last_took_us: AtomicU64,
    last_bytes: AtomicU64,
}

impl Status {
    /// Checkpoints completed in this run.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// The newest completed checkpoint: its id, and how long ago it was
    /// taken.
    pub fn last(&self) -> Option<(u64, Duration)> {
        let id = self.last_id.load(Ordering::Relaxed);
        (self.completed() > 0).then(|| {
            let at = self.last_unix_ms.load(Ordering::Relaxed);
            (id, Duration::from_millis(unix_ms().saturating_sub(at)))
        })
    }

    /// How long the newest checkpoint took from request to durable.
    pub fn last_took(&self) -> Duration {
        Duration::from_micros(self.last_took_us.load(Ordering::Relaxed))
    }

    /// When the newest checkpoint became durable, in ms since the epoch.
    pub fn last_unix_ms(&self) -> u64 {
        self.last_unix_ms.load(Ordering::Relaxed)
    }

    /// The bytes the newest checkpoint wrote (state files and metadata).
    pub fn last_bytes(&self) -> u64 {
        self.last_bytes.load(Ordering::Relaxed)
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Coordinator {
    /// Starts the checkpoint timer for `nodes`; the first checkpoint taken
    /// is `after + 1` (`after`: the checkpoint the run resumed from).
    pub fn start(
        config: &CheckpointConfig,
        dir: PathBuf,
        nodes: Vec<String>,
        after: u64,
    ) -> Result<Coordinator> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let requested = Arc::new(AtomicU64::new(after));
        let status = Arc::new(Status::default());
        let (tx, rx) = mpsc::channel();
        let mut worker = Worker {
            dir,
            interval: Duration::from_millis(config.interval_ms.max(1)),
            keep: config.keep.max(1),
            requested: requested.clone(),
            status: status.clone(),
            nodes,
            ended: BTreeMap::new(),
            flight: None,
            paused: false,
            next: after + 1,
            carried: BTreeMap::new(),
            publishes: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("weir-checkpoint".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| Error::checkpoint_from("can't start the checkpoint thread", e))?;
        Ok(Coordinator {
            requested,
            max_failed_snapshots: config.max_failed_snapshots,
            reports: Mutex::new(tx),
            thread: Mutex::new(Some(thread)),
            status,
        })
    }

    /// The newest checkpoint asked for; a source injects its barrier when
    /// this is above the last one it sent.
    pub fn requested(&self) -> u64 {
        self.requested.load(Ordering::SeqCst)
    }

    /// Progress for the summary and the live line.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    fn send(&self, report: Report) {
        if let Ok(tx) = self.reports.lock() {
            let _ = tx.send(report);
        }
    }

    /// `node` reached barrier `id`.
    pub fn ack(&self, id: u64, node: &str, state: NodeState) {
        self.send(Report::Ack(id, node.to_string(), state));
    }

    /// Runs `publish` once checkpoint `id`, or a later one, is on disk
    /// (after the sinks' renames). Ask before acking `id`.
    pub fn on_durable(&self, id: u64, node: &str, publish: Publish) {
        self.send(Report::Publish(id, node.to_string(), publish));
    }

    /// `node` declines checkpoint `id` (why: its plugin's error).
    pub fn decline(&self, id: u64, node: &str, why: String) {
        self.send(Report::Decline(id, node.to_string(), why));
    }

    /// Consecutive declined checkpoints after which a node fails the run.
    pub fn max_failed_snapshots(&self) -> u32 {
        self.max_failed_snapshots
    }

    /// `node` is done; its final state.
    pub fn ended(&self, node: &str, state: NodeState) {
        self.send(Report::Ended(node.to_string(), state));
    }

    /// A generation pauses: the checkpoint in flight is abandoned.
    pub fn pause(&self) {
        self.send(Report::Pause);
    }

    /// The next generation runs `nodes`; checkpoints resume.
    pub fn resume(&self, nodes: Vec<String>) {
        self.send(Report::Nodes(nodes));
    }

    /// The run succeeded: writes the final checkpoint (every node's end
    /// state) and publishes the sinks' last files.
    pub fn finish(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Report::Finish(tx));
        let result = rx
            .recv()
            .unwrap_or_else(|_| Err(Error::checkpoint("the checkpoint thread stopped")));
        self.join();
        result
    }

    fn join(&self) {
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.send(Report::Stop);
        self.join();
    }
}

/// A checkpoint waiting for its acks.
struct Flight {
    id: u64,
    started: Instant,
    acks: HashMap<String, NodeState>,
}

struct Worker {
    dir: PathBuf,
    interval: Duration,
    keep: usize,
    requested: Arc<AtomicU64>,
    status: Arc<Status>,
    nodes: Vec<String>,
    ended: BTreeMap<String, NodeState>,
    flight: Option<Flight>,
    paused: bool,
    next: u64,
    /// Files prepared for a checkpoint that could not be written: they
    /// ride with the next one (their rows are past its source positions).
    carried: BTreeMap<String, Vec<Rename>>,
    /// Publishes waiting for their checkpoint, in the order asked.
    publishes: Vec<(u64, String, Publish)>,
}

impl Worker {
    fn run(&mut self, reports: mpsc::Receiver<Report>) {
        let mut due = Instant::now() + self.interval;
        loop {
            let wait = due.saturating_duration_since(Instant::now());
            match reports.recv_timeout(wait) {
                Ok(Report::Ack(id, node, mut state)) => match self.flight.as_mut() {
                    Some(flight) if flight.id == id => {
                        self.publishes
                            .extend(take_publish(&mut state).map(|p| (id, node.clone(), p)));
                        flight.acks.insert(node, state);
                    }
                    // A barrier of an abandoned checkpoint: files its sink
                    // prepared still must be published, with the next one.
                    _ => {
                        self.publishes
                            .extend(take_publish(&mut state).map(|p| (id, node.clone(), p)));
                        self.carry(node, state)
                    }
                },
                Ok(Report::Ended(node, mut state)) => {
                    // Covered by whichever checkpoint is written next: it
                    // holds every ended node's state.
                    self.publishes
                        .extend(take_publish(&mut state).map(|p| (0, node.clone(), p)));
                    self.ended.insert(node, state);
                }
                Ok(Report::Publish(id, node, publish)) => self.publishes.push((id, node, publish)),
                Ok(Report::Decline(id, node, why)) => {
                    if self.flight.as_ref().is_some_and(|f| f.id == id) {
                        tracing::warn!(checkpoint = id, node = %node, error = %why,
                            "checkpoint declined: the plugin's snapshot failed; the next one tries again");
                        self.abandon();
                    }
                }
                Ok(Report::Nodes(nodes)) => {
                    self.nodes = nodes;
                    self.paused = false;
                    due = Instant::now() + self.interval;
                }
                Ok(Report::Pause) => {
                    self.paused = true;
                    self.abandon();
                }
                Ok(Report::Finish(reply)) => {
                    let _ = reply.send(self.finish());
                    return;
                }
                Ok(Report::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Err(e) = self.try_complete() {
                // A checkpoint that can't be written is skipped; the run
                // goes on and the next one tries again.
                tracing::error!(error = %e, "checkpoint failed");
            }
            if let Some(flight) = self
                .flight
                .as_ref()
                .filter(|f| f.started.elapsed() > self.timeout())
            {
                tracing::warn!(checkpoint = flight.id, waited_s = flight.started.elapsed().as_secs(),
                    "a checkpoint's barriers did not come through; abandoned (the next one tries again)");
                self.abandon();
            }
            if Instant::now() >= due {
                due = Instant::now() + self.interval;
                let everyone_ended = self.nodes.iter().all(|n| self.ended.contains_key(n));
                if self.flight.is_none() && !self.paused && !everyone_ended {
                    let id = self.next;
                    self.next += 1;
                    self.flight = Some(Flight {
                        id,
                        started: Instant::now(),
                        acks: HashMap::new(),
                    });
                    self.requested.store(id, Ordering::SeqCst);
                }
            }
        }
    }

    /// How long a checkpoint may wait for its barriers.
    fn timeout(&self) -> Duration {
        (self.interval * 10).max(Duration::from_secs(60))
    }

    fn carry(&mut self, node: String, state: NodeState) {
        if let NodeState::Sink(sink) = state {
            if !sink.pending.is_empty() {
                self.carried.entry(node).or_default().extend(sink.pending);
            }
        }
    }

    fn abandon(&mut self) {
        if let Some(flight) = self.flight.take() {
            for (node, state) in flight.acks {
                self.carry(node, state);
            }
        }
    }

    /// Runs the publishes checkpoint `id` covers, in the order asked.
    fn run_publishes(&mut self, id: u64) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.publishes)
            .into_iter()
            .partition(|(at, _, _)| *at <= id);
        self.publishes = later;
        for (_, node, publish) in due {
            if let Err(e) = publish.run() {
                tracing::error!(checkpoint = id, node = %node, error = %e,
                    "publishing after the checkpoint failed");
            }
        }
    }

    /// Writes the checkpoint in flight once every node has answered.
    fn try_complete(&mut self) -> Result<()> {
        let Some(flight) = &self.flight else {
            return Ok(());
        };
        let complete = self
            .nodes
            .iter()
            .all(|n| flight.acks.contains_key(n) || self.ended.contains_key(n));
        if !complete {
            return Ok(());
        }
        let Some(flight) = self.flight.take() else {
            return Ok(());
        };
        // A node that answered the barrier is in this checkpoint as it was
        // then, even if it ended since: what it prepared after the
        // barrier belongs to a later checkpoint.
        let from_ended: Vec<String> = self
            .ended
            .keys()
            .filter(|n| !flight.acks.contains_key(*n))
            .cloned()
            .collect();
        let mut states = self.ended.clone();
        states.extend(flight.acks);
        let result = self.write(flight.id, &mut states, false, flight.started, &from_ended);
        if result.is_err() {
            self.carried.clear();
            for (node, state) in states {
                self.carry(node, state);
            }
        }
        result
    }

    fn finish(&mut self) -> Result<()> {
        let missing: Vec<&String> = self
            .nodes
            .iter()
            .filter(|n| !self.ended.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            return Err(Error::checkpoint(format!(
                "the final checkpoint lacks nodes {missing:?}"
            )));
        }
        let id = self.next.max(self.requested.load(Ordering::SeqCst) + 1);
        let mut states = self.ended.clone();
        let all: Vec<String> = states.keys().cloned().collect();
        self.write(id, &mut states, true, Instant::now(), &all)
    }

    fn write(
        &mut self,
        id: u64,
        states: &mut BTreeMap<String, NodeState>,
        finished: bool,
        started: Instant,
        from_ended: &[String],
    ) -> Result<()> {
        for (node, state) in states.iter_mut() {
            if let (NodeState::Sink(sink), Some(carried)) = (state, self.carried.get(node)) {
                let mut all = carried.clone();
                all.append(&mut sink.pending);
                sink.pending = all;
            }
        }
        // A state naming files still being written is durable once they are.
        for (node, state) in states.iter() {
            if let NodeState::Transform {
                pending: Some(pending),
                ..
            } = state
            {
                pending.run().map_err(|e| {
                    Error::checkpoint(format!("checkpoint {id}: node {node:?}: {e}"))
                })?;
            }
        }
        let bytes = store::write(&self.dir, id, states, finished)?;
        self.carried.clear();
        // Durable: now the prepared files may become visible.
        for state in states.values() {
            if let NodeState::Sink(sink) = state {
                for rename in &sink.pending {
                    rename.apply().map_err(|e| {
                        Error::checkpoint_from(
                            format!("checkpoint {id}: can't publish {}", rename.to.display()),
                            e,
                        )
                    })?;
                }
            }
        }
        self.run_publishes(id);
        // An ended sink's files are published once; later checkpoints keep
        // only its state.
        for node in from_ended {
            if let Some(NodeState::Sink(sink)) = self.ended.get_mut(node) {
                sink.pending.clear();
            }
        }
        store::prune(&self.dir, self.keep);
        let took = started.elapsed();
        self.status.completed.fetch_add(1, Ordering::Relaxed);
        self.status.last_id.store(id, Ordering::Relaxed);
        self.status.last_unix_ms.store(unix_ms(), Ordering::Relaxed);
        self.status
            .last_took_us
            .store(took.as_micros() as u64, Ordering::Relaxed);
        self.status.last_bytes.store(bytes, Ordering::Relaxed);
        tracing::debug!(
            checkpoint = id,
            finished,
            took_ms = took.as_secs_f64() * 1e3,
            "checkpoint complete"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn part(dir: &std::path::Path, name: &str) -> Rename {
        let from = dir.join(format!(".{name}.tmp"));
        std::fs::write(&from, name).unwrap();
        Rename {
            from,
            to: dir.join(name),
        }
    }

    /// Checkpoints into `<dir>/ckpt` every 10 ms.
    fn every_10_ms(dir: &std::path::Path) -> CheckpointConfig {
        CheckpointConfig {
            dir: dir.join("ckpt"),
            interval_ms: 10,
            keep: 3,
            max_failed_snapshots: 3,
        }
    }

    #[test]
    fn prepared_files_are_published_only_once_their_checkpoint_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let config = every_10_ms(dir.path());
        let nodes = vec!["src".to_string(), "sink".to_string()];
        let c = Coordinator::start(&config, config.dir.clone(), nodes, 0).unwrap();
        wait_for("a checkpoint request", || c.requested() >= 1);
        let id = c.requested();
        let a = part(dir.path(), "a");
        c.ack(
            id,
            "sink",
            NodeState::Sink(SinkState {
                state: serde_json::json!({ "next_part": 1 }),
                pending: vec![a.clone()],
                ..SinkState::default()
            }),
        );
        // The sink ends before the source answers: its last file belongs
        // to a later checkpoint than `id`.
        let b = part(dir.path(), "b");
        c.ended(
            "sink",
            NodeState::Sink(SinkState {
                state: serde_json::json!({ "next_part": 2 }),
                pending: vec![b.clone()],
                ..SinkState::default()
            }),
        );
        std::thread::sleep(Duration::from_millis(50));
        assert!(!a.to.exists(), "published before every node answered");
        c.ack(
            id,
            "src",
            NodeState::Source {
                position: Some(serde_json::json!(7)),
                watermark: None,
            },
        );
        wait_for("checkpoint complete", || c.status().completed() == 1);
        assert!(a.to.exists() && !a.from.exists());
        assert!(
            !b.to.exists(),
            "the ended sink's later file went out with an earlier checkpoint"
        );
        let loaded = latest(&config.dir).unwrap().unwrap();
        assert_eq!(loaded.id, id);
        c.ended(
            "src",
            NodeState::Source {
                position: Some(serde_json::json!(9)),
                watermark: None,
            },
        );
        c.finish().unwrap();
        assert!(
            b.to.exists(),
            "the final checkpoint publishes the last file"
        );
        let last = latest(&config.dir).unwrap().unwrap();
        assert!(last.finished);
        assert_eq!(
            last.nodes.get("src"),
            Some(&NodeState::Source {
                position: Some(serde_json::json!(9)),
                watermark: None
            })
        );
    }

    /// A publish that records when it ran into `log`.
    fn logging(log: &Arc<Mutex<Vec<String>>>, what: &str) -> Publish {
        let (log, what) = (log.clone(), what.to_string());
        Publish::new(move || {
            log.lock().unwrap().push(what.clone());
            Ok(())
        })
    }

    #[test]
    fn a_publish_runs_once_after_its_checkpoint_is_on_disk_and_a_declined_ones_with_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let config = every_10_ms(dir.path());
        let nodes = vec!["src".to_string(), "sink".to_string()];
        let c = Coordinator::start(&config, config.dir.clone(), nodes, 0).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let source = |p: i64| NodeState::Source {
            position: Some(serde_json::json!(p)),
            watermark: None,
        };
        let sink = |what: &str, data: &[u8]| {
            NodeState::Sink(SinkState {
                data: Some(data.to_vec()),
                publish: Some(logging(&log, what)),
                ..SinkState::default()
            })
        };

        wait_for("a checkpoint request", || c.requested() >= 1);
        let first = c.requested();
        c.on_durable(first, "src", logging(&log, "offsets 1"));
        c.ack(first, "src", source(1));
        c.decline(first, "plugin", "snapshot failed".into());
        // The sink's answer comes after the checkpoint was abandoned.
        c.ack(first, "sink", sink("commit 1", b"records 1"));
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            log.lock().unwrap().is_empty(),
            "ran for a declined checkpoint"
        );

        wait_for("the next request", || c.requested() > first);
        let second = c.requested();
        c.on_durable(second, "src", logging(&log, "offsets 2"));
        c.ack(second, "src", source(2));
        c.ack(second, "sink", sink("commit 2", b"records 1 and 2"));
        wait_for("checkpoint complete", || c.status().completed() == 1);
        wait_for("the publishes", || log.lock().unwrap().len() == 4);
        assert_eq!(
            *log.lock().unwrap(),
            ["offsets 1", "commit 1", "offsets 2", "commit 2"]
        );
        let loaded = latest(&config.dir).unwrap().unwrap();
        match &loaded.nodes["sink"] {
            NodeState::Sink(s) => {
                assert_eq!(s.data.as_deref(), Some(&b"records 1 and 2"[..]));
                assert!(s.publish.is_none());
            }
            other => panic!("not a sink: {other:?}"),
        }
        drop(c);
        assert_eq!(log.lock().unwrap().len(), 4, "a publish ran twice");
    }

    #[test]
    fn a_checkpoint_is_written_once_the_state_it_names_is_and_not_when_that_fails() {
        let dir = tempfile::tempdir().unwrap();
        let config = every_10_ms(dir.path());
        let c = Coordinator::start(&config, config.dir.clone(), vec!["t".into()], 0).unwrap();
        let written = Arc::new(Mutex::new(None::<std::result::Result<(), String>>));
        let transform = |w: &Arc<Mutex<Option<std::result::Result<(), String>>>>| {
            let w = w.clone();
            NodeState::Transform {
                state: Some(b"names a run".to_vec()),
                next_batch: 1,
                pending: Some(Pending::new(move || loop {
                    if let Some(result) = w.lock().unwrap().clone() {
                        return result;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                })),
            }
        };
        wait_for("a checkpoint request", || c.requested() >= 1);
        c.ack(c.requested(), "t", transform(&written));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(c.status().completed(), 0, "written before its run");
        *written.lock().unwrap() = Some(Err("disk full".into()));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(c.status().completed(), 0, "written though its run failed");
        assert!(latest(&config.dir).unwrap().is_none());

        let next = Arc::new(Mutex::new(Some(Ok(()))));
        wait_for("the next request", || c.requested() >= 2);
        c.ack(c.requested(), "t", transform(&next));
        wait_for("checkpoint complete", || c.status().completed() == 1);
        assert!(latest(&config.dir).unwrap().is_some());
    }
}
