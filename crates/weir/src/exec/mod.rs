//! The executor: one blocking task per node, bounded channels between
//! nodes (backpressure), fan-out by cloning `RecordBatch` handles (cheap:
//! columns are reference-counted), fan-in by sharing one input channel.
//!
//! On the first error every node stops: sources stop reading, transforms
//! skip `finish`, sinks abort (removing their temporary files), and the
//! run returns that first error.
//!
//! A run is a sequence of *generations*. A manifest reload
//! ([`Control::reconfigure`]) pauses the running one at batch boundaries:
//! sources stop before their next batch (keeping their position), every
//! batch in flight drains through to the sinks, and each node hands itself
//! back instead of finishing. The plan is applied to those nodes — changed
//! ones replaced, new ones added, removed ones finished — and the next
//! generation starts on the new graph.

mod clock;
mod diff;
mod handover;
mod message;
mod node;
mod policy;
mod restore;
mod run;
mod stats;
mod tasks;
mod workers;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::Notify;

use crate::checkpoint::Status;
pub use crate::graph::{dead_letter_schema, ERROR_COLUMN, NODE_COLUMN, TIME_COLUMN};
use crate::graph::{Graph, NodeKind, Prepared};
use crate::sink::Sink;
use crate::source::Source;
use crate::Error;
pub use diff::Diff;
pub use handover::{Ready, Recent, Reporter, Slots, Successor};
use message::EdgeMeter;
use node::LiveTransform;
pub use run::run;
pub use stats::{
    peak_rss, CallLatency, CheckpointSummary, NodeStats, NodeSummary, RunSummary, Versions,
    CALL_SECONDS_BUCKETS,
};

/// Shared run state: the first error, a stop request (Ctrl-C or an
/// error) that sources check between batches, and a pending manifest
/// reload.
#[derive(Default)]
pub struct Control {
    failed: AtomicBool,
    stop: AtomicBool,
    /// A source stopped before its input ended.
    cut_short: AtomicBool,
    error: Mutex<Option<Error>>,
    reconfigure: Mutex<Pending>,
    reconfigured: Notify,
    progress: Mutex<Progress>,
    /// Each transform's hand-over slots, by node name.
    slots: Mutex<HashMap<String, Slots>>,
    /// `weir dev`: every node keeps its last input batches.
    keep_recent: AtomicBool,
}

/// What a manifest reload changes, with every new or changed node built
/// (by the reload planner), for [`Control::reconfigure`] to apply.
pub struct Plan {
    /// The new graph.
    pub graph: Graph,
    /// New and changed nodes, ready to run; `schemas` holds every node's.
    pub built: Prepared,
    /// Nodes no longer in the manifest.
    pub removed: Vec<String>,
    /// One line per change, for the log.
    pub changes: Vec<String>,
}

/// What a live progress line reads while the pipeline runs.
#[derive(Default, Clone)]
struct Progress {
    /// Each node: name, kind, failure policy, counters.
    nodes: Vec<(String, NodeKind, Option<&'static str>, Arc<NodeStats>)>,
    /// Each edge of the running generation: producer output, consumer.
    edges: Vec<(String, String, Arc<EdgeMeter>)>,
    checkpoints: Option<Arc<Status>>,
}

/// One edge of a running pipeline, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSummary {
    /// The producer's output: a node, or `NODE.dead_letter`.
    pub from: String,
    /// The consuming node.
    pub to: String,
    /// Batches (and barriers, watermarks) sent and not yet taken.
    pub queued: u64,
    /// Time the producer spent waiting for room on this edge.
    pub backpressure: std::time::Duration,
}

/// Checkpointing so far, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointStatus {
    /// Checkpoints completed in this run.
    pub completed: u64,
    /// The newest one: its id, when it completed (ms since the epoch),
    /// how long it took from request to durable, and the bytes written.
    pub last: Option<LastCheckpoint>,
}

/// The newest completed checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct LastCheckpoint {
    /// Its id.
    pub id: u64,
    /// When it became durable, in ms since the Unix epoch.
    pub unix_ms: u64,
    /// From request to durable.
    pub took: std::time::Duration,
    /// Bytes written: state files and metadata.
    pub bytes: u64,
}

/// A moment of a running pipeline, for a live progress line.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every node so far, in pipeline order.
    pub nodes: Vec<NodeSummary>,
    /// The newest completed checkpoint (id, age), if checkpointing.
    pub last_checkpoint: Option<(u64, std::time::Duration)>,
    /// Whether the pipeline takes checkpoints.
    pub checkpointing: bool,
    /// Every edge of the running generation.
    pub edges: Vec<EdgeSummary>,
    /// Checkpointing details, if the pipeline takes checkpoints.
    pub checkpoints: Option<CheckpointStatus>,
}

/// The reload slot: a plan waiting, and whether the run has ended (after
/// which no plan is taken: its sender would wait forever).
#[derive(Default)]
struct Pending {
    plan: Option<Reconfigure>,
    ended: bool,
}

/// A plan waiting to be applied, and who waits for the outcome.
struct Reconfigure {
    plan: Plan,
    applied: mpsc::Sender<bool>,
}

/// One generation's pause request: sources stop before their next batch,
/// and downstream nodes hand themselves back instead of finishing.
#[derive(Default)]
pub(crate) struct Generation {
    pausing: AtomicBool,
}

impl Generation {
    fn pausing(&self) -> bool {
        self.pausing.load(Ordering::SeqCst)
    }
}

impl Control {
    /// Asks sources to stop after their current batch; downstream nodes
    /// drain and finish normally (a graceful stop).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn fail(&self, e: Error) {
        if let Ok(mut slot) = self.error.lock() {
            if slot.is_none() {
                // The run returns this error and the CLI prints it once;
                // logged here only for those who follow the log closely.
                tracing::debug!(error = %e, "pipeline failed; stopping every node");
                *slot = Some(e);
            }
        }
        self.failed.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Whether a stop was asked for (or the run failed).
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The counters of every node now, for a live progress line.
    pub fn snapshot(&self) -> Snapshot {
        let progress = self.progress.lock().map(|p| p.clone()).unwrap_or_default();
        Snapshot {
            nodes: progress
                .nodes
                .iter()
                .map(|(name, kind, policy, stats)| NodeSummary {
                    policy: *policy,
                    ..stats.summary(name, *kind)
                })
                .collect(),
            last_checkpoint: progress.checkpoints.as_ref().and_then(|s| s.last()),
            checkpointing: progress.checkpoints.is_some(),
            edges: progress
                .edges
                .iter()
                .map(|(from, to, meter)| EdgeSummary {
                    from: from.clone(),
                    to: to.clone(),
                    queued: meter.queued(),
                    backpressure: meter.blocked(),
                })
                .collect(),
            checkpoints: progress.checkpoints.as_ref().map(|s| CheckpointStatus {
                completed: s.completed(),
                last: s.last().map(|(id, _)| LastCheckpoint {
                    id,
                    unix_ms: s.last_unix_ms(),
                    took: s.last_took(),
                    bytes: s.last_bytes(),
                }),
            }),
        }
    }

    /// Counts a rejected plugin version against node `name` (hot reload).
    pub fn rejected_version(&self, name: &str) {
        if let Ok(progress) = self.progress.lock() {
            if let Some((.., stats)) = progress.nodes.iter().find(|n| n.0 == name) {
                stats.rejected_version();
            }
        }
    }

    /// Hands a manifest-reload plan to the running pipeline and waits
    /// until it is applied at the next batch boundary of every node.
    /// `false` when the pipeline ended (or failed) first: nothing applied.
    pub fn reconfigure(&self, plan: Plan) -> bool {
        let (applied, outcome) = mpsc::channel();
        match self.reconfigure.lock() {
            Ok(mut slot) if !slot.ended => slot.plan = Some(Reconfigure { plan, applied }),
            _ => return false,
        }
        self.reconfigured.notify_one();
        outcome.recv().unwrap_or(false)
    }

    /// The hand-over slots of transform `node`: where the reload
    /// controller offers a next version and reads recent batches.
    pub fn slots(&self, node: &str) -> Slots {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(node.to_string())
            .or_insert_with(|| self.fresh_slots())
            .clone()
    }

    /// `weir dev`: every transform keeps its last few input batches, so a
    /// rebuilt version can be tried on them at once.
    pub fn keep_recent_batches(&self) {
        self.keep_recent.store(true, Ordering::SeqCst);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        for s in slots.values_mut() {
            s.recent.enable();
        }
    }

    fn fresh_slots(&self) -> Slots {
        let mut slots = Slots::default();
        if self.keep_recent.load(Ordering::SeqCst) {
            slots.recent.enable();
        }
        slots
    }

    /// New slots for a rebuilt node: a version offered to the old one
    /// must not reach it.
    fn renew_slots(&self, node: &str) -> Slots {
        let fresh = self.fresh_slots();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.insert(node.to_string(), fresh.clone());
        fresh
    }

    fn take_reconfigure(&self) -> Option<Reconfigure> {
        self.reconfigure
            .lock()
            .ok()
            .and_then(|mut slot| slot.plan.take())
    }

    /// Marks the run ended and answers a plan that raced the end "not
    /// applied".
    fn end_reconfiguring(&self) {
        if let Ok(mut slot) = self.reconfigure.lock() {
            slot.ended = true;
            if let Some(r) = slot.plan.take() {
                let _ = r.applied.send(false);
            }
        }
    }
}

/// A node handed back by its task when a generation pauses.
pub(crate) enum Parked {
    Source(Box<dyn Source>),
    Transform(Box<LiveTransform>),
    Sink(Box<dyn Sink>),
}

/// The nodes of a running pipeline between generations: what
/// [`Prepared`] holds, and each transform's run-time state.
struct Live {
    sources: std::collections::BTreeMap<String, Box<dyn Source>>,
    transforms: std::collections::BTreeMap<String, LiveTransform>,
    sinks: std::collections::BTreeMap<String, Box<dyn Sink>>,
    schemas: std::collections::BTreeMap<String, Option<arrow::datatypes::SchemaRef>>,
}

impl Live {
    fn new(prepared: Prepared, control: &Control) -> Live {
        Live {
            sources: prepared.sources,
            transforms: prepared
                .transforms
                .into_iter()
                .map(|(name, t)| {
                    let slots = control.slots(&name);
                    (name, LiveTransform::new(t, slots))
                })
                .collect(),
            sinks: prepared.sinks,
            schemas: prepared.schemas,
        }
    }

    fn put(&mut self, name: String, node: Parked) {
        match node {
            Parked::Source(s) => {
                self.sources.insert(name, s);
            }
            Parked::Transform(t) => {
                self.transforms.insert(name, *t);
            }
            Parked::Sink(s) => {
                self.sinks.insert(name, s);
            }
        }
    }
}

/// Applies `plan` to the paused nodes: removed nodes end (transforms
/// finish, sinks commit), replaced transforms hand their state to their
/// successor, restarted sinks commit before the new one takes over.
fn apply(plan: Plan, live: &mut Live, done: &mut HashSet<String>, control: &Control) -> Graph {
    let Plan {
        graph,
        built,
        removed,
        ..
    } = plan;
    for name in removed.iter().chain(built.sinks.keys()) {
        live.sources.remove(name);
        if let Some(sink) = live.sinks.remove(name) {
            if let Err(e) = sink.commit() {
                control.fail(e);
            }
        }
        if let Some(mut old) = live.transforms.remove(name) {
            if removed.contains(name) {
                match old.t.instance.finish() {
                    Ok(out) if out.iter().any(|e| e.batch.num_rows() > 0) => tracing::warn!(
                        node = %name,
                        rows = out.iter().map(|e| e.batch.num_rows()).sum::<usize>(),
                        "the removed node emitted rows at finish; they have nowhere to go"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e, "the removed node failed to finish")
                    }
                }
            }
        }
    }
    for (name, mut new) in built.transforms {
        if let Some(mut old) = live.transforms.remove(&name) {
            handover::hand_over(&name, &mut old.t.instance, &mut new.instance);
            new.next_batch = old.t.next_batch;
        }
        done.remove(&name);
        let slots = control.renew_slots(&name);
        live.transforms
            .insert(name.clone(), LiveTransform::new(new, slots));
    }
    for (name, sink) in built.sinks {
        done.remove(&name);
        live.sinks.insert(name, sink);
    }
    for (name, source) in built.sources {
        done.remove(&name);
        live.sources.insert(name, source);
    }
    for name in &removed {
        done.remove(name);
    }
    live.schemas = built.schemas;
    graph
}
