//! What each node's task does with its batches: one function per node
//! kind. A task returns its node when the pipeline pauses for a manifest
//! reload (the node lives on in the next generation) and `None` when the
//! node is done (input ended: transforms ran `finish`, sinks committed).

use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc::{Receiver, Sender};
use tokio::sync::Notify;
use tracing::debug_span;

use super::workers::Workers;
use super::{policy, Control, Generation, NodeStats};
use crate::graph::PreparedTransform;
use crate::manifest::{OnError, TransformConfig};
use crate::sink::Sink;
use crate::source::Source;
use crate::{Error, Result};

/// Sends `batch` to every consumer; `false` once none is listening.
pub(super) fn send(outputs: &[Sender<RecordBatch>], batch: &RecordBatch) -> bool {
    let mut delivered = false;
    for tx in outputs {
        delivered |= tx.blocking_send(batch.clone()).is_ok();
    }
    delivered
}

/// How a source's task ended.
pub(super) enum SourceEnd {
    /// Input exhausted, or the pipeline stops.
    Done,
    /// Paused for a reload: the source keeps its position.
    Paused,
}

pub(super) fn run_source(
    name: &str,
    source: &mut dyn Source,
    outputs: &[Sender<RecordBatch>],
    dead_letter: &[Sender<RecordBatch>],
    stats: &NodeStats,
    control: &Control,
    generation: &Generation,
) -> Result<SourceEnd> {
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
        if generation.pausing() {
            return Ok(SourceEnd::Paused);
        }
        let started = Instant::now();
        let next = source.next_batch()?;
        report_bad(source)?;
        let Some(batch) = next else {
            break;
        };
        // An unbounded source that found nothing (a poll with no new
        // records) returns an empty batch, so stop and pause are seen.
        if batch.num_rows() == 0 {
            continue;
        }
        stats.produced(&batch, started.elapsed());
        // Every consumer gone means the pipeline is failing. No consumer
        // at all is a node nobody reads yet (mid-way through a manifest
        // edit): its batches are discarded, as the manifest says.
        if !send(outputs, &batch) && !outputs.is_empty() {
            break;
        }
    }
    Ok(SourceEnd::Done)
}

/// Where a transform's batches go: its consumers, and the consumers of
/// its dead-letter output.
pub(super) struct TransformOutputs {
    pub main: Vec<Sender<RecordBatch>>,
    pub dead_letter: Vec<Sender<RecordBatch>>,
}

/// Runs a transform until its input closes; `Ok(true)` when it paused
/// (no `finish`: the node continues in the next generation).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_transform(
    name: &str,
    config: &TransformConfig,
    node: &mut PreparedTransform,
    input: &mut Receiver<RecordBatch>,
    outputs: &TransformOutputs,
    stats: &NodeStats,
    control: &Control,
    generation: &Generation,
) -> Result<bool> {
    let mut consecutive_failures = 0;
    while let Some(first) = input.blocking_recv() {
        if control.failed() {
            return Ok(false);
        }
        let started = Instant::now();
        let (group, outcomes) = process_group(name, config, node, first, input, stats)?;
        stats.busy(started.elapsed());
        for (batch, outcome) in group.iter().zip(outcomes) {
            let index = node.next_batch;
            node.next_batch += 1;
            stats.consumed(batch);
            if let Some(failure) = &outcome.failure {
                consecutive_failures += 1;
                stats.failed(&outcome.dead);
                tracing::warn!(batch = index, error = %failure, policy = ?config.on_error,
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
                let listened = !outputs.main.is_empty() || !outputs.dead_letter.is_empty();
                if !send(&outputs.main, b) && outputs.dead_letter.is_empty() && listened {
                    return Ok(false);
                }
            }
        }
    }
    if control.failed() {
        return Ok(false);
    }
    if generation.pausing() {
        return Ok(true);
    }
    let started = Instant::now();
    let mut out = node.instance.finish()?;
    for sibling in &mut node.siblings {
        out.extend(sibling.finish()?);
    }
    stats.busy(started.elapsed());
    for b in &out {
        stats.emitted(b);
        send(&outputs.main, b);
    }
    Ok(false)
}

/// Processes `first` and, under `parallelism`, the batches that arrive
/// while it runs: each on its own instance at once, numbered from
/// `node.next_batch`. Returns the batches and their outcomes, in order.
fn process_group(
    name: &str,
    config: &TransformConfig,
    node: &mut PreparedTransform,
    first: RecordBatch,
    input: &mut Receiver<RecordBatch>,
    stats: &NodeStats,
) -> Result<(Vec<RecordBatch>, Vec<policy::Outcome>)> {
    let base = node.next_batch;
    // A swap or canary in progress goes batch by batch on the main
    // instance: versions must change at one batch boundary.
    if node.siblings.is_empty() || node.successor.is_waiting() || node.canary.is_some() {
        let outcome = process_one(name, config, node, &first, base, stats)?;
        return Ok((vec![first], vec![outcome]));
    }
    let runtime = tokio::runtime::Handle::try_current().ok();
    let done = Arc::new(Notify::new());
    let mut siblings = std::mem::take(&mut node.siblings);
    let workers = node
        .workers
        .get_or_insert_with(|| Workers::new(name, siblings.len()));
    let mut group = vec![first];
    let mut running = Vec::new();
    let mut on_main = None;
    loop {
        let k = group.len() - 1;
        let index = base + k as u64;
        let Some(sibling) = siblings.pop() else {
            // Every sibling is busy: the newest batch runs here.
            on_main = Some(process_one(name, config, node, &group[k], index, stats));
            break;
        };
        match workers.run(running.len(), sibling, group[k].clone(), index, &done) {
            Ok(result) => running.push(result),
            Err(sibling) => {
                siblings.push(sibling);
                on_main = Some(process_one(name, config, node, &group[k], index, stats));
                break;
            }
        }
        // Take the next batch if it arrives before a running one is done;
        // never hold a finished batch back waiting for input.
        let next = match &runtime {
            Some(rt) => rt.block_on(async {
                tokio::select! {
                    batch = input.recv() => batch,
                    () = done.notified() => None,
                }
            }),
            None => input.try_recv().ok(),
        };
        match next {
            Some(batch) => group.push(batch),
            None => break,
        }
    }
    let mut on_siblings = Vec::with_capacity(running.len());
    for result in running {
        match result.recv() {
            Ok((instance, outcome)) => {
                siblings.push(instance);
                on_siblings.push(outcome);
            }
            Err(_) => on_siblings.push(Err(Error::Plugin {
                node: name.to_string(),
                batch: "?".into(),
                kind: crate::FailureKind::Trap,
                message: "a parallel instance's thread stopped".into(),
            })),
        }
    }
    let mut outcomes = Vec::with_capacity(group.len());
    for (k, result) in on_siblings.into_iter().enumerate() {
        let index = base + k as u64;
        let batch = &group[k];
        match result {
            Ok(outputs) => {
                node.observe(batch);
                outcomes.push(policy::Outcome {
                    outputs,
                    ..Default::default()
                });
            }
            Err(e) if config.on_error == OnError::Fail => {
                node.siblings = siblings;
                return Err(e);
            }
            Err(_) => {
                // The failure policy (bisection, dead letters) runs on
                // the main instance; the sibling starts afresh.
                if let Some(e) = siblings
                    .iter_mut()
                    .filter(|s| s.trapped())
                    .find_map(|s| s.recover().err())
                {
                    node.siblings = siblings;
                    return Err(e);
                }
                match process_one(name, config, node, batch, index, stats) {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(e) => {
                        node.siblings = siblings;
                        return Err(e);
                    }
                }
            }
        }
    }
    node.siblings = siblings;
    if let Some(outcome) = on_main {
        outcomes.push(outcome?);
    }
    Ok((group, outcomes))
}

/// One batch on the node's main instance: a waiting successor takes over
/// here, the failure policy applies, and a canary runs beside it.
fn process_one(
    name: &str,
    config: &TransformConfig,
    node: &mut PreparedTransform,
    batch: &RecordBatch,
    index: u64,
    stats: &NodeStats,
) -> Result<policy::Outcome> {
    let span = debug_span!("batch", index, rows = batch.num_rows());
    let _entered = span.enter();
    let isolate = config.on_error == OnError::DeadLetter;
    let swapped = crate::reload::take_over(name, node, batch, index, stats);
    let outcome = match (swapped, config.on_error) {
        (Some(outputs), _) => policy::Outcome {
            outputs,
            ..Default::default()
        },
        (None, OnError::Fail) => policy::Outcome {
            outputs: node.instance.process(batch, index)?,
            ..Default::default()
        },
        (None, _) => policy::process(node, batch, index, isolate)?,
    };
    node.observe(batch);
    crate::reload::shadow(name, node, batch, index, &outcome.outputs);
    Ok(outcome)
}

/// Writes batches until the input closes; `Ok(true)` when it paused (no
/// commit: the sink continues in the next generation).
pub(super) fn run_sink(
    sink: &mut dyn Sink,
    input: &mut Receiver<RecordBatch>,
    stats: &NodeStats,
    control: &Control,
    generation: &Generation,
) -> Result<bool> {
    while let Some(batch) = input.blocking_recv() {
        if control.failed() {
            return Ok(false);
        }
        let started = Instant::now();
        sink.write(&batch)?;
        stats.consumed(&batch);
        stats.busy(started.elapsed());
    }
    Ok(!control.failed() && generation.pausing())
}
