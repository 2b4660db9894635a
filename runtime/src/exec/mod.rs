//! The executor: one blocking task per node, bounded channels between
//! nodes (backpressure), fan-out by cloning `RecordBatch` handles (cheap:
//! columns are reference-counted), fan-in by sharing one input channel.
//!
//! On the first error every node stops: sources stop reading, transforms
//! skip `finish`, sinks abort (removing their temporary files), and the
//! run returns that first error.

mod policy;
mod stats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tracing::{debug_span, info_span};

use crate::graph::{Graph, NodeKind, Prepared, PreparedTransform};
use crate::sink::Sink;
use crate::source::Source;
use crate::{Error, Result};
pub use policy::{dead_letter_schema, ERROR_COLUMN, NODE_COLUMN, TIME_COLUMN};
pub use stats::{NodeStats, NodeSummary, RunSummary};

use crate::manifest::{OnError, TransformConfig};

/// Shared run state: the first error, and a stop request (Ctrl-C or an
/// error) that sources check between batches.
#[derive(Default)]
pub struct Control {
    failed: AtomicBool,
    stop: AtomicBool,
    error: Mutex<Option<Error>>,
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
}

/// Sends `batch` to every consumer; `false` once none is listening.
fn send(outputs: &[Sender<RecordBatch>], batch: &RecordBatch) -> bool {
    let mut delivered = false;
    for tx in outputs {
        delivered |= tx.blocking_send(batch.clone()).is_ok();
    }
    delivered
}

fn run_source(
    name: &str,
    source: &mut dyn Source,
    outputs: &[Sender<RecordBatch>],
    dead_letter: &[Sender<RecordBatch>],
    stats: &NodeStats,
    control: &Control,
) -> Result<()> {
    let report_bad = |source: &mut dyn Source| -> Result<()> {
        let bad = source.bad_records();
        if !bad.is_empty() {
            stats.rejected(bad.len());
            for record in &bad {
                tracing::warn!(file = %record.file, location = %record.location,
                    error = %record.error, "bad record");
            }
            send(
                dead_letter,
                &crate::source::bad::source_dead_letter_batch(name, &bad)?,
            );
        }
        Ok(())
    };
    while !control.stopping() {
        let started = Instant::now();
        let next = source.next_batch()?;
        report_bad(source)?;
        let Some(batch) = next else {
            break;
        };
        stats.produced(&batch, started.elapsed());
        if !send(outputs, &batch) {
            break;
        }
    }
    Ok(())
}

/// Where a transform's batches go: its consumers, and the consumers of
/// its dead-letter output.
struct TransformOutputs {
    main: Vec<Sender<RecordBatch>>,
    dead_letter: Vec<Sender<RecordBatch>>,
}

fn run_transform(
    name: &str,
    config: &TransformConfig,
    node: &mut PreparedTransform,
    input: &mut Receiver<RecordBatch>,
    outputs: &TransformOutputs,
    stats: &NodeStats,
    control: &Control,
) -> Result<()> {
    let mut index: u64 = 0;
    let mut consecutive_failures = 0;
    while let Some(batch) = input.blocking_recv() {
        if control.failed() {
            return Ok(());
        }
        let span = debug_span!("batch", index, rows = batch.num_rows());
        let _entered = span.enter();
        let started = Instant::now();
        let isolate = config.on_error == OnError::DeadLetter;
        let swapped =
            crate::reload::take_over(name, &mut node.instance, &node.successor, &batch, index);
        let outcome = match (swapped, config.on_error) {
            (Some(outputs), _) => policy::Outcome {
                outputs,
                ..Default::default()
            },
            (None, OnError::Fail) => policy::Outcome {
                outputs: node.instance.process(&batch, index)?,
                ..Default::default()
            },
            (None, _) => policy::process(node, &batch, index, isolate)?,
        };
        stats.consumed(&batch);
        stats.busy(started.elapsed());
        if let Some(failure) = &outcome.failure {
            consecutive_failures += 1;
            stats.failed(&outcome.dead);
            tracing::warn!(error = %failure, policy = ?config.on_error,
                dead_rows = outcome.dead.iter().map(|(b, _)| b.num_rows()).sum::<usize>(), "batch failed");
            if consecutive_failures > config.max_failures {
                return Err(Error::Plugin {
                    node: name.to_string(),
                    batch: index.to_string(),
                    kind: crate::FailureKind::Limit,
                    message: format!(
                        "stopped after {consecutive_failures} consecutive failed batches \
                         (max_failures = {}); last: {failure}",
                        config.max_failures
                    ),
                });
            }
        } else {
            consecutive_failures = 0;
        }
        for (rows, error) in &outcome.dead {
            send(
                &outputs.dead_letter,
                &policy::dead_letter_batch(name, rows, error)?,
            );
        }
        for b in &outcome.outputs {
            stats.emitted(b);
            if !send(&outputs.main, b) && outputs.dead_letter.is_empty() {
                return Ok(());
            }
        }
        index += 1;
    }
    if control.failed() {
        return Ok(());
    }
    let started = Instant::now();
    let out = node.instance.finish()?;
    stats.busy(started.elapsed());
    for b in &out {
        stats.emitted(b);
        send(&outputs.main, b);
    }
    Ok(())
}

fn run_sink(
    sink: &mut dyn Sink,
    input: &mut Receiver<RecordBatch>,
    stats: &NodeStats,
    control: &Control,
) -> Result<()> {
    while let Some(batch) = input.blocking_recv() {
        if control.failed() {
            return Ok(());
        }
        let started = Instant::now();
        sink.write(&batch)?;
        stats.consumed(&batch);
        stats.busy(started.elapsed());
    }
    Ok(())
}

/// Runs a prepared pipeline to completion (or first error).
pub async fn run(graph: &Graph, prepared: Prepared, control: Arc<Control>) -> Result<RunSummary> {
    let capacity = graph.manifest.pipeline.channel_capacity;
    let Prepared {
        mut sources,
        mut transforms,
        mut sinks,
        ..
    } = prepared;

    // One input channel per consuming node; upstreams hold sender clones.
    let mut receivers: HashMap<String, Receiver<RecordBatch>> = HashMap::new();
    let mut senders: HashMap<String, Sender<RecordBatch>> = HashMap::new();
    for (name, kind) in &graph.order {
        if *kind != NodeKind::Source {
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

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (name, kind) in &graph.order {
        let stats = Arc::new(NodeStats::default());
        let control = control.clone();
        let span = info_span!("node", name = %name, kind = kind.section());
        let outputs = outputs_of(name);
        // Each task records its own error before returning, i.e. before its
        // senders drop, so a sink that sees its input close can tell a
        // failure upstream from the end of input.
        let task: Box<dyn FnOnce() + Send> = match kind {
            NodeKind::Source => {
                let Some(mut source) = sources.remove(name) else {
                    continue;
                };
                let stats = stats.clone();
                let control = control.clone();
                let dead_letter = outputs_of(&format!("{name}{}", crate::manifest::DEAD_LETTER));
                let name = name.clone();
                Box::new(move || {
                    if let Err(e) = run_source(
                        &name,
                        source.as_mut(),
                        &outputs,
                        &dead_letter,
                        &stats,
                        &control,
                    ) {
                        control.fail(e);
                    }
                })
            }
            NodeKind::Transform => {
                let (Some(mut node), Some(mut input)) =
                    (transforms.remove(name), receivers.remove(name))
                else {
                    continue;
                };
                let stats = stats.clone();
                let control = control.clone();
                let config = graph.manifest.transforms[name].clone();
                let outputs = TransformOutputs {
                    main: outputs,
                    dead_letter: outputs_of(&format!("{name}{}", crate::manifest::DEAD_LETTER)),
                };
                let name = name.clone();
                Box::new(move || {
                    if let Err(e) = run_transform(
                        &name, &config, &mut node, &mut input, &outputs, &stats, &control,
                    ) {
                        control.fail(e);
                    }
                })
            }
            NodeKind::Sink => {
                let (Some(mut sink), Some(mut input)) =
                    (sinks.remove(name), receivers.remove(name))
                else {
                    continue;
                };
                let stats = stats.clone();
                let control = control.clone();
                Box::new(move || {
                    let result = run_sink(sink.as_mut(), &mut input, &stats, &control);
                    // Drain so upstream never blocks on a sink that stopped.
                    input.close();
                    let result = match result {
                        Ok(()) if !control.failed() => sink.commit(),
                        other => {
                            sink.abort();
                            other
                        }
                    };
                    if let Err(e) = result {
                        control.fail(e);
                    }
                })
            }
        };
        let handle = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            task();
        });
        tasks.push((name.clone(), *kind, stats, handle));
    }
    // Senders held here would keep channels open forever.
    drop(senders);

    let mut nodes = Vec::new();
    for (name, kind, stats, handle) in tasks {
        if let Err(e) = handle.await {
            control.fail(Error::Plugin {
                node: name.clone(),
                batch: "?".into(),
                kind: crate::FailureKind::Trap,
                message: format!("node task panicked: {e}"),
            });
        }
        nodes.push(stats.summary(&name, kind));
    }
    let error = control.error.lock().ok().and_then(|mut e| e.take());
    match error {
        Some(e) => Err(e),
        None => Ok(RunSummary {
            elapsed: started.elapsed(),
            nodes,
        }),
    }
}
