//! One generation's tasks: a blocking task per node not yet done, wired by
//! fresh channels, one function per node kind.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{channel, Sender};
use tokio::task::JoinSet;
use tracing::info_span;

use super::clock::SourceClock;
use super::message::{Edge, EdgeMeter, Envelope, Inputs};
use super::node::{
    run_sink, run_source, run_transform, Context, LiveTransform, TaskEnd, TransformOutputs,
};
use super::{Control, Generation, Live, NodeStats, Parked};
use crate::checkpoint::{Coordinator, NodeState};
use crate::graph::{Graph, NodeKind};
use crate::manifest::DEAD_LETTER;
use crate::sink::Sink;
use crate::source::Source;

/// One generation's node tasks: each returns its node's name, and the node
/// itself when it paused.
pub(super) type Tasks = JoinSet<(String, Option<Parked>)>;

/// What a task is: run its node, hand it back if it paused.
type Task = Box<dyn FnOnce() -> Option<Parked> + Send>;

/// What every task of a generation shares.
pub(super) struct Shared<'a> {
    pub graph: &'a Graph,
    pub control: &'a Arc<Control>,
    pub generation: &'a Arc<Generation>,
    pub checkpoints: Option<&'a Arc<Coordinator>>,
}

/// One input channel per consuming node; upstreams hold sender clones and
/// tag what they send with their slot (their index in `inputs`). Each
/// edge has a meter the consumer and the producer share.
struct Wiring {
    receivers: HashMap<String, Inputs>,
    senders: HashMap<String, Sender<Envelope>>,
    meters: HashMap<String, Vec<Arc<EdgeMeter>>>,
}

impl Wiring {
    fn new(graph: &Graph, done: &HashSet<String>) -> Wiring {
        let capacity = graph.manifest.pipeline.channel_capacity;
        let mut receivers = HashMap::new();
        let mut senders = HashMap::new();
        let mut meters = HashMap::new();
        for (name, kind) in &graph.order {
            if *kind != NodeKind::Source && !done.contains(name) {
                let (tx, rx) = channel(capacity);
                let slots: Vec<Arc<EdgeMeter>> =
                    graph.inputs(name).iter().map(|_| Arc::default()).collect();
                senders.insert(name.clone(), tx);
                receivers.insert(name.clone(), Inputs::new(rx, slots.clone()));
                meters.insert(name.clone(), slots);
            }
        }
        Wiring {
            receivers,
            senders,
            meters,
        }
    }

    /// The edges from output `name` (a node, or `NODE.PORT`).
    fn outputs_of(&self, graph: &Graph, name: &str) -> Vec<Edge> {
        graph
            .consumers
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let slot = graph.inputs(c).iter().position(|i| i == name)?;
                let tx = self.senders.get(c)?.clone();
                let meter = self.meters.get(c)?.get(slot)?.clone();
                let whole = graph
                    .order
                    .iter()
                    .any(|(n, kind)| n == c && matches!(kind, NodeKind::Sink));
                Some(Edge {
                    tx,
                    slot,
                    meter,
                    whole,
                })
            })
            .collect()
    }

    /// The edges from each of a transform's output ports, by index: the
    /// first is read as `node` or `node.PORT`, the others as `node.PORT`.
    fn port_outputs(&self, graph: &Graph, node: &str, ports: &[String]) -> Vec<Vec<Edge>> {
        ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let mut edges = self.outputs_of(graph, &format!("{node}.{port}"));
                if i == 0 {
                    edges.extend(self.outputs_of(graph, node));
                }
                edges
            })
            .collect()
    }

    /// Every edge as (producer output, consumer, meter), in pipeline order
    /// of the consumers.
    fn edges(&self, graph: &Graph) -> Vec<(String, String, Arc<EdgeMeter>)> {
        let mut edges = Vec::new();
        for (consumer, _) in &graph.order {
            let Some(meters) = self.meters.get(consumer) else {
                continue;
            };
            for (input, meter) in graph.inputs(consumer).iter().zip(meters) {
                edges.push((input.clone(), consumer.clone(), meter.clone()));
            }
        }
        edges
    }
}

/// What [`spawn`] started: the tasks, their node names and kinds by task
/// id, and the generation's edges for the metrics.
pub(super) struct Spawned {
    pub tasks: Tasks,
    pub names: HashMap<tokio::task::Id, (String, &'static str)>,
    pub edges: Vec<(String, String, Arc<EdgeMeter>)>,
}

/// Starts one task per node of the graph not yet done; returns the tasks
/// and, by task id, their node names and kinds.
pub(super) fn spawn(
    shared: &Shared<'_>,
    live: &mut Live,
    done: &HashSet<String>,
    stats: &mut HashMap<String, Arc<NodeStats>>,
    clocks: &mut HashMap<String, Arc<Mutex<SourceClock>>>,
) -> Spawned {
    let graph = shared.graph;
    let mut wiring = Wiring::new(graph, done);
    let edges = wiring.edges(graph);
    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    for (name, kind) in &graph.order {
        if done.contains(name) {
            continue;
        }
        let cx = Context {
            name: name.clone(),
            stats: stats.entry(name.clone()).or_default().clone(),
            control: shared.control.clone(),
            generation: shared.generation.clone(),
            checkpoints: shared.checkpoints.cloned(),
            checkpoint_dir: graph.manifest.checkpoint_dir(),
            state_dir: graph.manifest.state_dir(name),
        };
        let outputs = wiring.outputs_of(graph, name);
        let dead_letter = wiring.outputs_of(graph, &format!("{name}{DEAD_LETTER}"));
        // Each task records its own error before returning, i.e. before its
        // senders drop, so a sink that sees its input close can tell a
        // failure upstream from the end of input.
        let task = match kind {
            NodeKind::Source => live.sources.remove(name).map(|source| {
                let clock = clock(shared, clocks, name);
                source_task(cx, source, outputs, dead_letter, clock)
            }),
            NodeKind::Transform => live
                .transforms
                .remove(name)
                .zip(wiring.receivers.remove(name))
                .map(|(node, input)| {
                    let config = graph.manifest.transforms[name].clone();
                    let outputs = TransformOutputs {
                        ports: wiring.port_outputs(graph, name, &node.t.ports.outputs),
                        dead_letter,
                    };
                    transform_task(cx, config, node, input, outputs)
                }),
            NodeKind::Sink => live
                .sinks
                .remove(name)
                .zip(wiring.receivers.remove(name))
                .map(|(sink, input)| sink_task(cx, sink, input)),
        };
        let Some(task) = task else {
            continue;
        };
        let span = info_span!("node", name = %name, kind = kind.section());
        let node = name.clone();
        let handle = tasks.spawn_blocking(move || {
            let _entered = span.enter();
            (node, task())
        });
        names.insert(handle.id(), (name.clone(), kind.section()));
    }
    // Senders held here would keep channels open forever.
    drop(wiring);
    Spawned {
        tasks,
        names,
        edges,
    }
}

/// The source's event-time clock; a source added by a manifest reload
/// starts its clock here.
fn clock(
    shared: &Shared<'_>,
    clocks: &mut HashMap<String, Arc<Mutex<SourceClock>>>,
    name: &str,
) -> Arc<Mutex<SourceClock>> {
    clocks
        .entry(name.to_string())
        .or_insert_with(|| {
            Arc::new(Mutex::new(SourceClock::new(
                shared.graph.manifest.watermarks.get(name).cloned(),
                shared.checkpoints.map_or(0, |c| c.requested()),
            )))
        })
        .clone()
}

fn source_task(
    cx: Context,
    mut source: Box<dyn Source>,
    outputs: Vec<Edge>,
    dead_letter: Vec<Edge>,
    clock: Arc<Mutex<SourceClock>>,
) -> Task {
    Box::new(
        move || match run_source(&cx, source.as_mut(), &outputs, &dead_letter, &clock) {
            Ok(TaskEnd::Paused) => Some(Parked::Source(source)),
            Ok(TaskEnd::Done) => None,
            Err(e) => {
                cx.control.fail(e);
                None
            }
        },
    )
}

fn transform_task(
    cx: Context,
    config: crate::manifest::TransformConfig,
    mut node: LiveTransform,
    mut input: Inputs,
    outputs: TransformOutputs,
) -> Task {
    Box::new(
        move || match run_transform(&cx, &config, &mut node, &mut input, &outputs) {
            Ok(TaskEnd::Paused) => Some(Parked::Transform(Box::new(node))),
            Ok(TaskEnd::Done) => None,
            Err(e) => {
                cx.control.fail(e);
                None
            }
        },
    )
}

fn sink_task(cx: Context, mut sink: Box<dyn Sink>, mut input: Inputs) -> Task {
    Box::new(move || {
        let result = run_sink(&cx, sink.as_mut(), &mut input);
        // Drain so upstream never blocks on a sink that stopped.
        input.close();
        let control = &cx.control;
        let result = match (result, &cx.checkpoints) {
            (Ok(TaskEnd::Paused), _) => return Some(Parked::Sink(sink)),
            // Under checkpoints the last part is published by the final
            // checkpoint, like every other.
            (Ok(TaskEnd::Done), Some(c)) if !control.failed() => sink
                .prepare()
                .map(|state| c.ended(&cx.name, NodeState::Sink(state))),
            (Ok(TaskEnd::Done), None) if !control.failed() => sink.commit(),
            (other, _) => {
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
