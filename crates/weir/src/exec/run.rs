//! One pipeline run, generation after generation: resume from the last
//! checkpoint, start a task per node, wait for them (or for a manifest
//! change to apply between two generations), then sum the run up.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::task::{Id, JoinError};

use super::clock::SourceClock;
use super::message::EdgeMeter;
use super::tasks;
use super::{apply, stats, Control, Generation, Live, Reconfigure};
use super::{CheckpointSummary, NodeStats, NodeSummary, RunSummary};
use crate::checkpoint::{Coordinator, Loaded, NodeState};
use crate::graph::{Graph, NodeKind, Prepared};
use crate::source::Delivery;
use crate::{Error, Result};

/// Runs a prepared pipeline to completion (or first error), applying
/// manifest reloads handed to [`Control::reconfigure`] on the way. With
/// `[pipeline.checkpoint]`, the run first resumes from the newest
/// checkpoint and takes one every `interval_ms`.
pub async fn run(graph: &Graph, prepared: Prepared, control: Arc<Control>) -> Result<RunSummary> {
    let mut run = Run::start(graph.clone(), prepared, &control).await?;
    while let Some(Reconfigure { plan, applied }) = run.generation().await {
        if control.failed() {
            let _ = applied.send(false);
            break;
        }
        let paused = Instant::now();
        run.graph = apply(plan, &mut run.live, &mut run.done, &control);
        if let Some(c) = &run.checkpoints {
            c.resume(run.graph.order.iter().map(|(n, _)| n.clone()).collect());
        }
        tracing::info!(
            apply_ms = paused.elapsed().as_secs_f64() * 1e3,
            "manifest change applied; the pipeline continues"
        );
        let _ = applied.send(true);
    }
    control.end_reconfiguring();
    run.finish()
}

/// What a run keeps from one generation to the next.
struct Run<'c> {
    graph: Graph,
    live: Live,
    control: &'c Arc<Control>,
    checkpoints: Option<Arc<Coordinator>>,
    /// The checkpoint this run resumed from.
    resumed: Option<Loaded>,
    /// Nodes whose input ended in an earlier generation.
    done: HashSet<String>,
    stats: HashMap<String, Arc<NodeStats>>,
    clocks: HashMap<String, Arc<Mutex<SourceClock>>>,
    /// What a restart means for each source's rows and each sink's output,
    /// taken before the nodes move into tasks.
    deliveries: Vec<(String, Delivery)>,
    sinks_exactly_once: Vec<(String, bool)>,
    started: Instant,
}

impl<'c> Run<'c> {
    /// Resumes from the last checkpoint (if the pipeline takes them) and
    /// sets up each source's event-time clock.
    async fn start(graph: Graph, prepared: Prepared, control: &'c Arc<Control>) -> Result<Run<'c>> {
        let started = Instant::now();
        // Plugins `restore` on a blocking thread, as every other plugin call:
        // WASI's host calls (a trap's report too) block on their own runtime,
        // which panics on a thread of this one.
        let restoring = graph.clone();
        let (resumed, prepared) = tokio::task::spawn_blocking(move || {
            let mut prepared = prepared;
            (super::restore::resume(&restoring, &mut prepared), prepared)
        })
        .await
        .map_err(|e| Error::checkpoint_from("resuming from the checkpoint stopped", e))?;
        let (checkpoints, resumed) = resumed?;
        let live = Live::new(prepared, control);
        let clocks = source_clocks(&graph, resumed.as_ref());
        let deliveries = live
            .sources
            .iter()
            .map(|(name, s)| (name.clone(), s.delivery()))
            .collect();
        let sinks_exactly_once = live
            .sinks
            .iter()
            .map(|(name, s)| (name.clone(), s.exactly_once()))
            .collect();
        Ok(Run {
            graph,
            live,
            control,
            checkpoints,
            resumed,
            done: HashSet::new(),
            stats: HashMap::new(),
            clocks,
            deliveries,
            sinks_exactly_once,
            started,
        })
    }

    /// Runs one generation to its end: every task finished, or all paused
    /// for the manifest change it returns.
    async fn generation(&mut self) -> Option<Reconfigure> {
        let generation = Arc::new(Generation::default());
        let shared = tasks::Shared {
            graph: &self.graph,
            control: self.control,
            generation: &generation,
            checkpoints: self.checkpoints.as_ref(),
        };
        let tasks::Spawned {
            mut tasks,
            names,
            edges,
        } = tasks::spawn(
            &shared,
            &mut self.live,
            &self.done,
            &mut self.stats,
            &mut self.clocks,
        );
        self.publish_progress(edges);
        let mut pending: Option<Reconfigure> = None;
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    None => return pending,
                    Some(Ok((name, Some(node)))) => self.live.put(name, node),
                    Some(Ok((name, None))) => {
                        self.done.insert(name);
                    }
                    Some(Err(e)) => self.task_failed(e, &names),
                },
                () = self.control.reconfigured.notified(), if pending.is_none() => {
                    pending = self.control.take_reconfigure();
                    if pending.is_some() {
                        if let Some(c) = &self.checkpoints {
                            c.pause();
                        }
                        generation.pausing.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
    }

    /// The nodes `weir run`'s progress line reads, for this generation.
    fn publish_progress(&self, edges: Vec<(String, String, Arc<EdgeMeter>)>) {
        if let Ok(mut progress) = self.control.progress.lock() {
            progress.nodes = self
                .graph
                .order
                .iter()
                .filter_map(|(n, k)| {
                    let stats = self.stats.get(n)?.clone();
                    Some((n.clone(), *k, policy(&self.graph, n, *k), stats))
                })
                .collect();
            progress.edges = edges;
            progress.checkpoints = self.checkpoints.as_ref().map(|c| c.status().clone());
        }
    }

    /// A node's task panicked (or was cancelled): the run fails, naming it.
    fn task_failed(&mut self, e: JoinError, names: &HashMap<Id, (String, &'static str)>) {
        let (node, kind) = names.get(&e.id()).cloned().unwrap_or_default();
        self.done.insert(node.clone());
        let message = match e.try_into_panic() {
            Ok(panic) => panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into()),
            Err(e) => e.to_string(),
        };
        self.control.fail(Error::Panicked {
            node,
            kind,
            message,
        });
    }

    /// The first error, or the run's summary.
    fn finish(self) -> Result<RunSummary> {
        let error = self.control.error.lock().ok().and_then(|mut e| e.take());
        if let Some(e) = error {
            return Err(e);
        }
        let checkpoint = match &self.checkpoints {
            Some(c) => {
                c.finish()?;
                Some(CheckpointSummary {
                    completed: c.status().completed(),
                    last: c.status().last().map(|(id, _)| id),
                    resumed_from: self.resumed.as_ref().map(|r| r.id),
                    sources: self.deliveries,
                    sinks: self.sinks_exactly_once,
                })
            }
            None => None,
        };
        let nodes = self
            .graph
            .order
            .iter()
            .map(|(name, kind)| NodeSummary {
                policy: policy(&self.graph, name, *kind),
                ..node_summary(&self.stats, name, *kind)
            })
            .collect();
        Ok(RunSummary {
            elapsed: self.started.elapsed(),
            nodes,
            peak_rss: stats::peak_rss(),
            checkpoint,
            load: None,
            stopped: self.control.cut_short.load(Ordering::SeqCst) && !self.control.failed(),
        })
    }
}

/// Each source's event-time clock, at its checkpointed watermark when the
/// run resumes.
fn source_clocks(
    graph: &Graph,
    resumed: Option<&Loaded>,
) -> HashMap<String, Arc<Mutex<SourceClock>>> {
    let mut clocks = HashMap::new();
    for name in graph.manifest.sources.keys() {
        let mut clock = SourceClock::new(
            graph.manifest.watermarks.get(name).cloned(),
            resumed.map_or(0, |r| r.id),
        );
        if let Some(NodeState::Source { watermark, .. }) = resumed.and_then(|r| r.nodes.get(name)) {
            clock.restore(*watermark);
        }
        clocks.insert(name.clone(), Arc::new(Mutex::new(clock)));
    }
    clocks
}

/// A node's failure policy as the manifest spells it: a transform's
/// `on_error`, a source's `on_bad_record`.
pub(super) fn policy(graph: &Graph, name: &str, kind: NodeKind) -> Option<&'static str> {
    use crate::manifest::OnError;
    use crate::source::bad::OnBadRecord;
    match kind {
        NodeKind::Transform => Some(match graph.manifest.transforms.get(name)?.on_error {
            OnError::Fail => "fail",
            OnError::Skip => "skip",
            OnError::DeadLetter => "dead_letter",
        }),
        NodeKind::Source => Some(match graph.manifest.sources.get(name)?.on_bad_record() {
            OnBadRecord::Fail => "fail",
            OnBadRecord::Skip => "skip",
            OnBadRecord::DeadLetter => "dead_letter",
        }),
        NodeKind::Sink => None,
    }
}

fn node_summary(
    stats: &HashMap<String, Arc<NodeStats>>,
    name: &str,
    kind: NodeKind,
) -> super::NodeSummary {
    stats
        .get(name)
        .map(|s| s.summary(name, kind))
        .unwrap_or_else(|| NodeStats::default().summary(name, kind))
}
