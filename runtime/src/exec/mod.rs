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

mod node;
mod policy;
mod stats;
mod workers;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::info_span;

use crate::graph::{Graph, NodeKind, Prepared, PreparedTransform};
use crate::manifest::DEAD_LETTER;
use crate::reload::Plan;
use crate::sink::Sink;
use crate::source::Source;
use crate::{Error, Result};
use node::{run_sink, run_source, run_transform, SourceEnd, TransformOutputs};
pub use policy::{dead_letter_schema, ERROR_COLUMN, NODE_COLUMN, TIME_COLUMN};
pub use stats::{NodeStats, NodeSummary, RunSummary};
pub(crate) use workers::Workers;

/// Shared run state: the first error, a stop request (Ctrl-C or an
/// error) that sources check between batches, and a pending manifest
/// reload.
#[derive(Default)]
pub struct Control {
    failed: AtomicBool,
    stop: AtomicBool,
    error: Mutex<Option<Error>>,
    reconfigure: Mutex<Pending>,
    reconfigured: Notify,
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
                tracing::error!(error = %e, "pipeline failed");
                *slot = Some(e);
            }
        }
        self.failed.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
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
enum Parked {
    Source(Box<dyn Source>),
    Transform(Box<PreparedTransform>),
    Sink(Box<dyn Sink>),
}

/// Runs a prepared pipeline to completion (or first error), applying
/// manifest reloads handed to [`Control::reconfigure`] on the way.
pub async fn run(graph: &Graph, prepared: Prepared, control: Arc<Control>) -> Result<RunSummary> {
    let mut graph = graph.clone();
    let mut live = prepared;
    // Nodes whose input ended in an earlier generation.
    let mut done: HashSet<String> = HashSet::new();
    let mut stats: HashMap<String, Arc<NodeStats>> = HashMap::new();
    let started = Instant::now();
    loop {
        let generation = Arc::new(Generation::default());
        let (mut tasks, names) = spawn(&graph, &mut live, &done, &mut stats, &control, &generation);
        let mut pending: Option<Reconfigure> = None;
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(Ok((name, Some(node)))) => live.put(name, node),
                    Some(Ok((name, None))) => {
                        done.insert(name);
                    }
                    Some(Err(e)) => {
                        let node = names.get(&e.id()).cloned().unwrap_or_default();
                        done.insert(node.clone());
                        control.fail(Error::Plugin {
                            node,
                            batch: "?".into(),
                            kind: crate::FailureKind::Trap,
                            message: format!("node task panicked: {e}"),
                        });
                    }
                },
                () = control.reconfigured.notified(), if pending.is_none() => {
                    pending = control.take_reconfigure();
                    if pending.is_some() {
                        generation.pausing.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
        let Some(Reconfigure { plan, applied }) = pending else {
            break;
        };
        if control.failed() {
            let _ = applied.send(false);
            break;
        }
        let paused = Instant::now();
        graph = apply(plan, &mut live, &mut done, &control);
        tracing::info!(
            apply_ms = paused.elapsed().as_secs_f64() * 1e3,
            "manifest change applied; the pipeline continues"
        );
        let _ = applied.send(true);
    }
    control.end_reconfiguring();
    let error = control.error.lock().ok().and_then(|mut e| e.take());
    if let Some(e) = error {
        return Err(e);
    }
    let nodes = graph
        .order
        .iter()
        .map(|(name, kind)| {
            stats
                .get(name)
                .map(|s| s.summary(name, *kind))
                .unwrap_or_else(|| NodeStats::default().summary(name, *kind))
        })
        .collect();
    Ok(RunSummary {
        elapsed: started.elapsed(),
        nodes,
        peak_rss: stats::peak_rss(),
    })
}

impl Prepared {
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
fn apply(plan: Plan, live: &mut Prepared, done: &mut HashSet<String>, control: &Control) -> Graph {
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
                match old.instance.finish() {
                    Ok(out) if out.iter().any(|b| b.num_rows() > 0) => tracing::warn!(
                        node = %name,
                        rows = out.iter().map(RecordBatch::num_rows).sum::<usize>(),
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
            crate::reload::hand_over(&name, &mut old.instance, &mut new.instance);
            new.next_batch = old.next_batch;
        }
        done.remove(&name);
        live.transforms.insert(name, new);
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

/// One generation's node tasks: each returns its node's name, and the node
/// itself when it paused.
type Tasks = JoinSet<(String, Option<Parked>)>;

/// Starts one task per node of `graph` not yet done, wired by fresh
/// channels; returns the tasks and their node names.
fn spawn(
    graph: &Graph,
    live: &mut Prepared,
    done: &HashSet<String>,
    stats: &mut HashMap<String, Arc<NodeStats>>,
    control: &Arc<Control>,
    generation: &Arc<Generation>,
) -> (Tasks, HashMap<tokio::task::Id, String>) {
    let capacity = graph.manifest.pipeline.channel_capacity;
    // One input channel per consuming node; upstreams hold sender clones.
    let mut receivers: HashMap<String, Receiver<RecordBatch>> = HashMap::new();
    let mut senders: HashMap<String, Sender<RecordBatch>> = HashMap::new();
    for (name, kind) in &graph.order {
        if *kind != NodeKind::Source && !done.contains(name) {
            let (tx, rx) = channel(capacity);
            senders.insert(name.clone(), tx);
            receivers.insert(name.clone(), rx);
        }
    }
    let outputs_of = |name: &str| -> Vec<Sender<RecordBatch>> {
        graph
            .consumers
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|c| senders.get(c).cloned())
            .collect()
    };

    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    for (name, kind) in &graph.order {
        if done.contains(name) {
            continue;
        }
        let stats = stats.entry(name.clone()).or_default().clone();
        let control = control.clone();
        let generation = generation.clone();
        let span = info_span!("node", name = %name, kind = kind.section());
        let outputs = outputs_of(name);
        let dead_letter = outputs_of(&format!("{name}{DEAD_LETTER}"));
        let name = name.clone();
        // Each task records its own error before returning, i.e. before its
        // senders drop, so a sink that sees its input close can tell a
        // failure upstream from the end of input.
        let task: Box<dyn FnOnce() -> Option<Parked> + Send> = match kind {
            NodeKind::Source => {
                let Some(mut source) = live.sources.remove(&name) else {
                    continue;
                };
                let name = name.clone();
                Box::new(move || {
                    match run_source(
                        &name,
                        source.as_mut(),
                        &outputs,
                        &dead_letter,
                        &stats,
                        &control,
                        &generation,
                    ) {
                        Ok(SourceEnd::Paused) => Some(Parked::Source(source)),
                        Ok(SourceEnd::Done) => None,
                        Err(e) => {
                            control.fail(e);
                            None
                        }
                    }
                })
            }
            NodeKind::Transform => {
                let (Some(mut node), Some(mut input)) =
                    (live.transforms.remove(&name), receivers.remove(&name))
                else {
                    continue;
                };
                let config = graph.manifest.transforms[&name].clone();
                let outputs = TransformOutputs {
                    main: outputs,
                    dead_letter,
                };
                let name = name.clone();
                Box::new(move || {
                    match run_transform(
                        &name,
                        &config,
                        &mut node,
                        &mut input,
                        &outputs,
                        &stats,
                        &control,
                        &generation,
                    ) {
                        Ok(true) => Some(Parked::Transform(Box::new(node))),
                        Ok(false) => None,
                        Err(e) => {
                            control.fail(e);
                            None
                        }
                    }
                })
            }
            NodeKind::Sink => {
                let (Some(mut sink), Some(mut input)) =
                    (live.sinks.remove(&name), receivers.remove(&name))
                else {
                    continue;
                };
                Box::new(move || {
                    let result = run_sink(sink.as_mut(), &mut input, &stats, &control, &generation);
                    // Drain so upstream never blocks on a sink that stopped.
                    input.close();
                    let result = match result {
                        Ok(true) => return Some(Parked::Sink(sink)),
                        Ok(false) if !control.failed() => sink.commit(),
                        other => {
                            sink.abort();
                            other.map(|_| ())
                        }
                    };
                    if let Err(e) = result {
                        control.fail(e);
                    }
                    None
                })
            }
        };
        let node = name.clone();
        let handle = tasks.spawn_blocking(move || {
            let _entered = span.enter();
            (node, task())
        });
        names.insert(handle.id(), name);
    }
    // Senders held here would keep channels open forever.
    drop(senders);
    (tasks, names)
}
