//! A transform node's task: batches through the plugin (and its parallel
//! instances), the failure policy, barriers and watermarks, hot-reload
//! hand-over, and `finish` at the end of input.

use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use tokio::sync::Notify;
use tracing::debug_span;

use super::{send_batch, Context, TaskEnd};
use crate::checkpoint::NodeState;
use crate::exec::handover::{self, Canary, Slots};
use crate::exec::message::{send, Edge, Event, Inputs, Msg};
use crate::exec::workers::{Done, Workers};
use crate::exec::{policy, NodeStats};
use crate::graph::PreparedTransform;
use crate::manifest::{OnError, TransformConfig};
use crate::plugin::PluginInstance;
use crate::{Error, Result};

/// Where a transform's batches go: its consumers, and the consumers of
/// its dead-letter output.
pub(in crate::exec) struct TransformOutputs {
    pub main: Vec<Edge>,
    pub dead_letter: Vec<Edge>,
}

impl TransformOutputs {
    fn all(&self) -> Vec<Edge> {
        self.main.iter().chain(&self.dead_letter).cloned().collect()
    }
}

/// A transform node of a running pipeline: what the graph prepared, and
/// its run-time state (hand-over slots, a canary, worker threads), kept
/// across generations.
pub(crate) struct LiveTransform {
    pub(crate) t: PreparedTransform,
    /// Where the reload controller leaves a next version.
    pub(crate) slots: Slots,
    /// A new version running in shadow before promotion (`--canary`).
    pub(crate) canary: Option<Canary>,
    /// The threads sibling instances run on, started at the first batch.
    workers: Option<Workers>,
}

impl LiveTransform {
    pub(crate) fn new(t: PreparedTransform, slots: Slots) -> Self {
        LiveTransform {
            t,
            slots,
            canary: None,
            workers: None,
        }
    }

    /// The watermark the next batch carries into the plugin (and into a
    /// canary running beside it).
    fn set_watermark(&mut self, watermark: Option<i64>) {
        self.t.instance.set_watermark(watermark);
        if let Some(canary) = &mut self.canary {
            canary.ready.instance.set_watermark(watermark);
        }
    }

    /// Records `batch` for replay (a no-op unless `weir dev` asked).
    fn observe(&self, batch: &RecordBatch) {
        self.slots.recent.push(batch);
    }
}

/// `finish` on every instance. Under `on_error = "skip"` or
/// `"dead_letter"` a failure costs only what that `finish` would have
/// flushed (there are no input rows to dead-letter): it is counted and
/// logged, and a trapped instance is replaced, so the final checkpoint
/// holds the empty state a finished plugin has anyway.
fn finish_under_policy(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    stats: &NodeStats,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let instances = std::iter::once(&mut node.t.instance).chain(node.t.siblings.iter_mut());
    for instance in instances {
        match instance.finish() {
            Ok(batches) => out.extend(batches),
            Err(e) if config.on_error == OnError::Fail => return Err(e),
            Err(e) => {
                stats.failed(&[]);
                tracing::warn!(node = name, error = %e, policy = ?config.on_error, "finish failed; what it would have flushed is lost");
                instance.recover()?;
            }
        }
    }
    Ok(out)
}

/// Runs a transform until its input closes; `Paused` when it paused
/// (no `finish`: the node continues in the next generation).
pub(in crate::exec) fn run_transform(
    cx: &Context,
    config: &TransformConfig,
    node: &mut LiveTransform,
    input: &mut Inputs,
    outputs: &TransformOutputs,
) -> Result<TaskEnd> {
    cx.stats.starts_with(node.t.instance.plugin().version());
    let mut run = TransformRun {
        cx,
        config,
        outputs,
        schema: node.t.input.clone(),
        watermark: None,
        consecutive_failures: 0,
        failed_snapshots: 0,
    };
    while let Some(event) = input.blocking_next() {
        if cx.control.failed() {
            return Ok(TaskEnd::Done);
        }
        match event {
            Event::Barrier(id) => run.barrier(node, id)?,
            Event::Watermark(w) => run.advance(node, w)?,
            Event::Batch(first, w) => {
                run.schema = Some(first.schema());
                let started = Instant::now();
                let (group, outcomes) =
                    process_group(&cx.name, config, node, (first, w), input, &cx.stats)?;
                cx.stats.busy(started.elapsed());
                if !run.deliver(node, &group, outcomes)? {
                    return Ok(TaskEnd::Done);
                }
            }
        }
    }
    if cx.control.failed() {
        return Ok(TaskEnd::Done);
    }
    if cx.generation.pausing() {
        return Ok(TaskEnd::Paused);
    }
    run.end(node, input.stopped())?;
    Ok(TaskEnd::Done)
}

/// A transform node's state while its input flows: what it sent last,
/// and how many batches and snapshots failed in a row.
struct TransformRun<'a> {
    cx: &'a Context,
    config: &'a TransformConfig,
    outputs: &'a TransformOutputs,
    /// The last input schema (to lend a plugin an empty batch that carries
    /// a watermark advance).
    schema: Option<arrow::datatypes::SchemaRef>,
    /// The newest watermark sent on.
    watermark: Option<i64>,
    consecutive_failures: u32,
    failed_snapshots: u32,
}

impl TransformRun<'_> {
    /// A checkpoint barrier: snapshot the plugin, pass the barrier on.
    fn barrier(&mut self, node: &mut LiveTransform, id: u64) -> Result<()> {
        let name = self.cx.name.as_str();
        if let Some(checkpoints) = self.cx.checkpoints.as_deref() {
            match node.t.instance.snapshot() {
                Ok(state) => {
                    self.failed_snapshots = 0;
                    checkpoints.ack(
                        id,
                        name,
                        NodeState::Transform {
                            state,
                            next_batch: node.t.next_batch,
                        },
                    );
                }
                // An error the plugin returned: its state is intact, so
                // this checkpoint is declined and the run goes on. A trap
                // lost the state: going on would give wrong results, so
                // that fails the run.
                Err(e)
                    if !node.t.instance.trapped()
                        && self.failed_snapshots < checkpoints.max_failed_snapshots() =>
                {
                    self.failed_snapshots += 1;
                    checkpoints.decline(id, name, e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        send(&self.outputs.all(), &Msg::Barrier(id));
        Ok(())
    }

    /// A watermark advance: the plugin sees it (a windowed one may close
    /// windows); what it emits travels with it.
    fn advance(&mut self, node: &mut LiveTransform, w: i64) -> Result<()> {
        let (name, stats) = (self.cx.name.as_str(), &*self.cx.stats);
        let mut sent = false;
        if let Some(schema) = &self.schema {
            let empty = RecordBatch::new_empty(schema.clone());
            node.set_watermark(Some(w));
            let outcome = process_one(name, self.config, node, &empty, node.t.next_batch, stats)?;
            if let Some(failure) = outcome.failure {
                return Err(failure);
            }
            for b in &outcome.outputs {
                stats.emitted(b);
                sent |= b.num_rows() > 0;
                send_batch(&self.outputs.main, b, Some(w));
            }
        }
        if !sent {
            send(&self.outputs.main, &Msg::Watermark(w));
        }
        stats.watermark(w);
        self.watermark = Some(w);
        Ok(())
    }

    /// Sends on what a group of batches became, in input order: outputs,
    /// dead letters, watermarks. `Ok(false)` when no one listens any more.
    fn deliver(
        &mut self,
        node: &mut LiveTransform,
        group: &[(RecordBatch, Option<i64>)],
        outcomes: Vec<policy::Outcome>,
    ) -> Result<bool> {
        let (name, stats, outputs) = (self.cx.name.as_str(), &*self.cx.stats, self.outputs);
        for ((batch, w), outcome) in group.iter().zip(outcomes) {
            let index = node.t.next_batch;
            node.t.next_batch += 1;
            stats.consumed(batch);
            self.count_failure(index, &outcome)?;
            for (rows, error) in &outcome.dead {
                send_batch(
                    &outputs.dead_letter,
                    &policy::dead_letter_batch(name, rows, error)?,
                    *w,
                );
            }
            let mut sent = false;
            for b in &outcome.outputs {
                stats.emitted(b);
                sent = true;
                let listened = !outputs.main.is_empty() || !outputs.dead_letter.is_empty();
                if !send_batch(&outputs.main, b, *w) && outputs.dead_letter.is_empty() && listened {
                    return Ok(false);
                }
            }
            if let Some(now) = *w {
                if !sent && Some(now) > self.watermark {
                    send(&outputs.main, &Msg::Watermark(now));
                }
                stats.watermark(now);
                self.watermark = self.watermark.max(Some(now));
            }
        }
        Ok(true)
    }

    /// Counts a failed batch; past `max_failures` in a row the node stops.
    fn count_failure(&mut self, index: u64, outcome: &policy::Outcome) -> Result<()> {
        let Some(failure) = &outcome.failure else {
            self.consecutive_failures = 0;
            return Ok(());
        };
        let config = self.config;
        self.consecutive_failures += 1;
        self.cx.stats.failed(&outcome.dead);
        tracing::warn!(batch = index, error = %failure, policy = ?config.on_error,
            dead_rows = outcome.dead.iter().map(|(b, _)| b.num_rows()).sum::<usize>(), "batch failed");
        if self.consecutive_failures > config.max_failures {
            return Err(Error::Plugin {
                node: self.cx.name.clone(),
                batch: crate::BatchRef::Batch(index),
                kind: crate::FailureKind::Limit,
                message: format!(
                    "stopped after {} consecutive failed batches (max_failures = {}); last: {failure}",
                    self.consecutive_failures, config.max_failures
                ),
            });
        }
        Ok(())
    }

    /// The input ended (or was stopped): flush, keep the final state,
    /// tell downstream.
    fn end(&mut self, node: &mut LiveTransform, stopped: bool) -> Result<()> {
        let (name, stats) = (self.cx.name.as_str(), &*self.cx.stats);
        // Stopped (not ended) under checkpoints: the plugin's state (open
        // windows, seen keys) goes into the final checkpoint as it is, and
        // a restart continues from there. `finish` would emit it as final
        // and a restart would emit it again. Without checkpoints nothing
        // survives the stop, so flushing is the best there is (the summary
        // says so).
        if !(stopped && self.cx.checkpoints.is_some()) {
            let started = Instant::now();
            let out = finish_under_policy(name, self.config, node, stats)?;
            stats.busy(started.elapsed());
            for b in &out {
                stats.emitted(b);
                send_batch(&self.outputs.main, b, self.watermark);
            }
        }
        if let Some(checkpoints) = self.cx.checkpoints.as_deref() {
            let state = node.t.instance.snapshot()?;
            checkpoints.ended(
                name,
                NodeState::Transform {
                    state,
                    next_batch: node.t.next_batch,
                },
            );
        }
        send(
            &self.outputs.all(),
            if stopped { &Msg::Stopped } else { &Msg::End },
        );
        Ok(())
    }
}

/// Batches taken from the input together, each with its watermark.
type Group = Vec<(RecordBatch, Option<i64>)>;

/// Processes `first` and, under `parallelism`, the batches that arrive
/// while it runs: each on its own instance at once, numbered from
/// `node.t.next_batch`. Returns the batches and their outcomes, in order.
fn process_group(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    first: (RecordBatch, Option<i64>),
    input: &mut Inputs,
    stats: &NodeStats,
) -> Result<(Group, Vec<policy::Outcome>)> {
    let base = node.t.next_batch;
    // A swap or canary in progress goes batch by batch on the main
    // instance: versions must change at one batch boundary.
    if node.t.siblings.is_empty() || node.slots.successor.is_waiting() || node.canary.is_some() {
        node.set_watermark(first.1);
        let outcome = process_one(name, config, node, &first.0, base, stats)?;
        return Ok((vec![first], vec![outcome]));
    }
    let mut siblings = std::mem::take(&mut node.t.siblings);
    let Dispatched {
        group,
        running,
        on_main,
    } = dispatch(name, config, node, &mut siblings, first, input, stats);
    let on_siblings = collect(name, running, &mut siblings, stats);
    let settled = settle(
        name,
        config,
        node,
        &mut siblings,
        &group,
        on_siblings,
        stats,
    );
    node.t.siblings = siblings;
    let mut outcomes = settled?;
    if let Some(outcome) = on_main {
        outcomes.push(outcome?);
    }
    Ok((group, outcomes))
}

/// A group of batches under way: those on sibling instances (in order),
/// then at most one on the main instance.
struct Dispatched {
    group: Group,
    running: Vec<std::sync::mpsc::Receiver<Done>>,
    on_main: Option<Result<policy::Outcome>>,
}

/// Starts `first` on a sibling, then every batch that arrives before one
/// of them is done on the next free sibling; when none is free, the
/// newest batch runs on the main instance.
fn dispatch(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    siblings: &mut Vec<PluginInstance>,
    first: (RecordBatch, Option<i64>),
    input: &mut Inputs,
    stats: &NodeStats,
) -> Dispatched {
    let base = node.t.next_batch;
    let runtime = tokio::runtime::Handle::try_current().ok();
    let done = Arc::new(Notify::new());
    let workers = node
        .workers
        .get_or_insert_with(|| Workers::new(name, siblings.len()));
    let mut group = vec![first];
    let mut running = Vec::new();
    let mut on_main = None;
    loop {
        let k = group.len() - 1;
        let index = base + k as u64;
        let Some(mut sibling) = siblings.pop() else {
            // Every sibling is busy: the newest batch runs here.
            node.set_watermark(group[k].1);
            on_main = Some(process_one(name, config, node, &group[k].0, index, stats));
            break;
        };
        sibling.set_watermark(group[k].1);
        match workers.run(running.len(), sibling, group[k].0.clone(), index, &done) {
            Ok(result) => running.push(result),
            Err(sibling) => {
                siblings.push(sibling);
                node.set_watermark(group[k].1);
                on_main = Some(process_one(name, config, node, &group[k].0, index, stats));
                break;
            }
        }
        // Take the next batch if it arrives before a running one is done;
        // never hold a finished batch back waiting for input. A barrier
        // or watermark ends the group: it waits for the group's outputs.
        let next = match &runtime {
            Some(rt) => rt.block_on(async {
                tokio::select! {
                    event = input.next() => event,
                    () = done.notified() => None,
                }
            }),
            None => input.try_next(),
        };
        match next {
            Some(Event::Batch(batch, w)) => group.push((batch, w)),
            Some(other) => {
                input.unread(other);
                break;
            }
            None => break,
        }
    }
    Dispatched {
        group,
        running,
        on_main,
    }
}

/// Waits for every sibling's batch, in order; the instances go back to
/// `siblings`.
fn collect(
    name: &str,
    running: Vec<std::sync::mpsc::Receiver<Done>>,
    siblings: &mut Vec<PluginInstance>,
    stats: &NodeStats,
) -> Vec<Result<Vec<RecordBatch>>> {
    let mut on_siblings = Vec::with_capacity(running.len());
    for result in running {
        match result.recv() {
            Ok((instance, outcome)) => {
                stats.called(&instance);
                siblings.push(instance);
                on_siblings.push(outcome);
            }
            Err(_) => on_siblings.push(Err(Error::Plugin {
                node: name.to_string(),
                batch: crate::BatchRef::Process,
                kind: crate::FailureKind::Trap,
                message: "a parallel instance's thread stopped".into(),
            })),
        }
    }
    on_siblings
}

/// The siblings' results as outcomes: a batch that failed on a sibling
/// goes through the failure policy (bisection, dead letters) on the main
/// instance, and the trapped sibling starts afresh.
fn settle(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    siblings: &mut [PluginInstance],
    group: &Group,
    on_siblings: Vec<Result<Vec<RecordBatch>>>,
    stats: &NodeStats,
) -> Result<Vec<policy::Outcome>> {
    let base = node.t.next_batch;
    let mut outcomes = Vec::with_capacity(group.len());
    for (k, result) in on_siblings.into_iter().enumerate() {
        let index = base + k as u64;
        let batch = &group[k].0;
        match result {
            Ok(outputs) => {
                node.observe(batch);
                outcomes.push(policy::Outcome {
                    outputs,
                    ..Default::default()
                });
            }
            Err(e) if config.on_error == OnError::Fail => return Err(e),
            Err(_) => {
                if let Some(e) = siblings
                    .iter_mut()
                    .filter(|s| s.trapped())
                    .find_map(|s| s.recover().err())
                {
                    return Err(e);
                }
                node.set_watermark(group[k].1);
                outcomes.push(process_one(name, config, node, batch, index, stats)?);
            }
        }
    }
    Ok(outcomes)
}

/// One batch on the node's main instance: a waiting successor takes over
/// here, the failure policy applies, and a canary runs beside it.
fn process_one(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    batch: &RecordBatch,
    index: u64,
    stats: &NodeStats,
) -> Result<policy::Outcome> {
    let span = debug_span!("batch", index, rows = batch.num_rows());
    let _entered = span.enter();
    let isolate = config.on_error == OnError::DeadLetter;
    let swapped = handover::take_over(name, node, batch, index, stats);
    let outcome = match (swapped, config.on_error) {
        (Some(outputs), _) => policy::Outcome {
            outputs,
            ..Default::default()
        },
        (None, OnError::Fail) => policy::Outcome {
            outputs: node.t.instance.process(batch, index)?,
            ..Default::default()
        },
        (None, _) => policy::process(node, batch, index, isolate)?,
    };
    stats.called(&node.t.instance);
    node.observe(batch);
    handover::shadow(name, node, batch, index, &outcome.outputs, stats);
    Ok(outcome)
}
