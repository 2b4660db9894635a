//! A transform node's task: batches through the plugin (and its parallel
//! instances), the failure policy, barriers and watermarks, hot-reload
//! hand-over, and `finish` at the end of input.

use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use tracing::debug_span;
use weir_plugin_host::kv;

use super::{send_batch, Context, TaskEnd};
use crate::checkpoint::NodeState;
use crate::exec::handover::{self, Canary, Slots};
use crate::exec::message::{send, Edge, Event, Inputs, Msg};
use crate::exec::policy::At;
use crate::exec::workers::Workers;
use crate::exec::{policy, NodeStats};
use crate::graph::PreparedTransform;
use crate::manifest::{OnError, TransformConfig};
use crate::plugin::{Emitted, Rows};
use crate::{Error, Result};
use parallel::process_group;

mod parallel;

/// Where a transform's batches go: the consumers of each output port, by
/// port index, and of its dead-letter output.
pub(in crate::exec) struct TransformOutputs {
    pub ports: Vec<Vec<Edge>>,
    pub dead_letter: Vec<Edge>,
}

impl TransformOutputs {
    /// Every edge: barriers, watermarks and the end go down all of them.
    fn all(&self) -> Vec<Edge> {
        self.ports
            .iter()
            .flatten()
            .chain(&self.dead_letter)
            .cloned()
            .collect()
    }

    /// The edges of output port `port`.
    fn port(&self, port: usize) -> &[Edge] {
        self.ports.get(port).map_or(&[], Vec::as_slice)
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

    /// Tells every instance which output ports someone reads.
    fn set_wired(&mut self, outputs: &TransformOutputs) {
        let wired: Vec<bool> = outputs.ports.iter().map(|p| !p.is_empty()).collect();
        let canary = self.canary.iter_mut().flat_map(|c| {
            std::iter::once(&mut c.ready.instance).chain(c.ready.siblings.iter_mut())
        });
        std::iter::once(&mut self.t.instance)
            .chain(self.t.siblings.iter_mut())
            .chain(canary)
            .for_each(|i| i.set_wired(wired.clone()));
    }

    /// Records `batch` for replay (a no-op unless `weir dev` asked; only
    /// the first input port's batches are replayed).
    fn observe(&self, batch: &Rows, port: usize) {
        if port == 0 {
            self.slots.recent.push(batch);
        }
    }

    /// The input port input slot `slot` feeds.
    fn port_of(&self, slot: usize) -> usize {
        self.t.port_of_slot.get(slot).copied().unwrap_or(0)
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
) -> Result<Vec<Emitted>> {
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
    node.set_wired(outputs);
    let mut run = TransformRun {
        cx,
        config,
        outputs,
        schema: node.t.input().cloned(),
        watermark: None,
        consecutive_failures: 0,
        failed_snapshots: 0,
        gone: Default::default(),
        ended: Default::default(),
        complete: Default::default(),
        port_schemas: Default::default(),
    };
    while let Some(event) = input.blocking_next() {
        if cx.control.failed() {
            return Ok(TaskEnd::Done);
        }
        match event {
            Event::Barrier(id) => run.barrier(node, id)?,
            Event::Watermark(w) => run.advance(node, w)?,
            Event::Ended(slot) => run.slot_ended(node, slot)?,
            Event::Complete(slot) => run.slot_complete(node, slot)?,
            Event::Batch(first, w, slot) => {
                let port = node.port_of(slot);
                if port == 0 {
                    run.schema = Some(first.schema());
                }
                run.port_schemas.insert(port, first.schema());
                let started = Instant::now();
                let (group, outcomes) =
                    process_group(&cx.name, config, node, (first, w, port), input, &cx.stats)?;
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
    /// The output ports whose every reader stopped listening.
    gone: std::collections::BTreeSet<usize>,
    /// The input slots that ended.
    ended: std::collections::BTreeSet<usize>,
    /// The input slots that completed a version their port has not yet
    /// been told of.
    complete: std::collections::BTreeSet<usize>,
    /// The last schema seen on each input port.
    port_schemas: std::collections::BTreeMap<usize, arrow::datatypes::SchemaRef>,
}

impl TransformRun<'_> {
    /// A checkpoint barrier: snapshot the plugin, pass the barrier on.
    fn barrier(&mut self, node: &mut LiveTransform, id: u64) -> Result<()> {
        let name = self.cx.name.as_str();
        if let Some(checkpoints) = self.cx.checkpoints.as_deref() {
            let taken = std::time::SystemTime::now();
            match node.t.instance.checkpoint_snapshot() {
                Ok((state, written)) => {
                    self.failed_snapshots = 0;
                    if let (Some(checkpoint_dir), Some(state_dir)) =
                        (&self.cx.checkpoint_dir, &self.cx.state_dir)
                    {
                        let keep = state.as_deref().map(kv::snapshot_runs);
                        let gc =
                            collect_state_garbage(checkpoint_dir, state_dir, name, keep, taken);
                        checkpoints.on_durable(id, name, gc);
                    }
                    checkpoints.ack(
                        id,
                        name,
                        NodeState::Transform {
                            state,
                            next_batch: node.t.next_batch,
                            pending: written.map(pending),
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
            let empty = Rows::from(RecordBatch::new_empty(schema.clone()));
            node.set_watermark(Some(w));
            let at = At {
                port: 0,
                index: node.t.next_batch,
            };
            let outcome = process_one(name, self.config, node, &empty, at, stats)?;
            if let Some(failure) = outcome.failure {
                return Err(failure);
            }
            for e in &outcome.outputs {
                stats.emitted(&e.batch);
                sent |= e.batch.num_rows() > 0;
                send_batch(self.outputs.port(e.port), &e.batch, Some(w), stats);
            }
        }
        if !sent {
            send(&self.outputs.all(), &Msg::Watermark(w));
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
        group: &[(Rows, Option<i64>, usize)],
        outcomes: Vec<policy::Outcome>,
    ) -> Result<bool> {
        let (name, stats, outputs) = (self.cx.name.as_str(), &*self.cx.stats, self.outputs);
        for ((batch, w, _), outcome) in group.iter().zip(outcomes) {
            let index = node.t.next_batch;
            node.t.next_batch += 1;
            stats.consumed(batch);
            self.count_failure(index, &outcome)?;
            for (rows, error) in &outcome.dead {
                send_batch(
                    &outputs.dead_letter,
                    &policy::dead_letter_batch(name, rows, error)?.into(),
                    *w,
                    stats,
                );
            }
            let mut sent = false;
            for e in &outcome.outputs {
                stats.emitted(&e.batch);
                sent = true;
                let edges = outputs.port(e.port);
                if !send_batch(edges, &e.batch, *w, stats) && !edges.is_empty() {
                    self.gone.insert(e.port);
                    // Every reader gone: stop reading.
                    let read = |(p, edges): (usize, &Vec<Edge>)| {
                        !edges.is_empty() && !self.gone.contains(&p)
                    };
                    if outputs.dead_letter.is_empty() && !outputs.ports.iter().enumerate().any(read)
                    {
                        return Ok(false);
                    }
                }
            }
            if let Some(now) = *w {
                if !sent && Some(now) > self.watermark {
                    send(&outputs.all(), &Msg::Watermark(now));
                }
                stats.watermark(now);
                self.watermark = self.watermark.max(Some(now));
            }
        }
        Ok(true)
    }

    /// Input slot `slot` ended. When it was the last of its input port's
    /// slots, a node with several input ports is told (a join's table is
    /// complete), and what it emits goes on.
    fn slot_ended(&mut self, node: &mut LiveTransform, slot: usize) -> Result<()> {
        self.ended.insert(slot);
        if node.t.ports.inputs.len() < 2 {
            return Ok(());
        }
        let port = node.port_of(slot);
        let slots = node.t.port_of_slot.len();
        if (0..slots).any(|s| node.port_of(s) == port && !self.ended.contains(&s)) {
            return Ok(());
        }
        self.end_port(node, port)
    }

    /// Input slot `slot` sent a complete version of its data (a
    /// `refresh_ms` table between two reads). Once every slot of its port
    /// has (or has ended), a node with several input ports is told the
    /// port ended — a join swaps in the new table at this batch boundary —
    /// and a node with one input port passes the mark on, so a table can
    /// be reshaped on its way to a join.
    fn slot_complete(&mut self, node: &mut LiveTransform, slot: usize) -> Result<()> {
        self.complete.insert(slot);
        let port = node.port_of(slot);
        let slots: Vec<usize> = (0..node.t.port_of_slot.len().max(slot + 1))
            .filter(|&s| node.port_of(s) == port)
            .collect();
        if slots
            .iter()
            .any(|s| !self.complete.contains(s) && !self.ended.contains(s))
        {
            return Ok(());
        }
        for s in &slots {
            self.complete.remove(s);
        }
        if node.t.ports.inputs.len() < 2 {
            let ports: Vec<Edge> = self.outputs.ports.iter().flatten().cloned().collect();
            send(&ports, &Msg::Complete);
            return Ok(());
        }
        self.end_port(node, port)
    }

    /// Tells the plugin input port `port` ended (or completed a version),
    /// and sends on what it emits.
    fn end_port(&mut self, node: &mut LiveTransform, port: usize) -> Result<()> {
        let schema = self
            .port_schemas
            .get(&port)
            .cloned()
            .or_else(|| node.t.inputs.get(port).cloned().flatten())
            .unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
        let started = Instant::now();
        let out = node.t.instance.end_port(port, schema, node.t.next_batch)?;
        self.cx.stats.busy(started.elapsed());
        tracing::debug!(node = %self.cx.name, port = %node.t.ports.inputs[port], "input port ended");
        for e in &out {
            self.cx.stats.emitted(&e.batch);
            send_batch(
                self.outputs.port(e.port),
                &e.batch,
                self.watermark,
                &self.cx.stats,
            );
        }
        Ok(())
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
            for e in &out {
                stats.emitted(&e.batch);
                send_batch(self.outputs.port(e.port), &e.batch, self.watermark, stats);
            }
        }
        if let Some(checkpoints) = self.cx.checkpoints.as_deref() {
            let taken = std::time::SystemTime::now();
            let (state, written) = node.t.instance.checkpoint_snapshot()?;
            if let (Some(checkpoint_dir), Some(state_dir)) =
                (&self.cx.checkpoint_dir, &self.cx.state_dir)
            {
                // 0: whichever checkpoint is written next — which may hold
                // this node as it was at an earlier barrier; the runs of
                // this snapshot are spared all the same.
                let keep = state.as_deref().map(kv::snapshot_runs);
                let gc = collect_state_garbage(checkpoint_dir, state_dir, name, keep, taken);
                checkpoints.on_durable(0, name, gc);
            }
            checkpoints.ended(
                name,
                NodeState::Transform {
                    state,
                    next_batch: node.t.next_batch,
                    pending: written.map(pending),
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

/// One batch on the node's main instance: a waiting successor takes over
/// here, the failure policy applies, and a canary runs beside it.
pub(super) fn process_one(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    batch: &Rows,
    at: At,
    stats: &NodeStats,
) -> Result<policy::Outcome> {
    let span = debug_span!(
        "batch",
        index = at.index,
        port = at.port,
        rows = batch.num_rows()
    );
    let _entered = span.enter();
    let isolate = config.on_error == OnError::DeadLetter;
    let swapped = handover::take_over(name, node, batch, at, stats);
    let outcome = match (swapped, config.on_error) {
        (Some(outputs), _) => policy::Outcome {
            outputs,
            ..Default::default()
        },
        (None, OnError::Fail) => policy::Outcome {
            outputs: node.t.instance.process_port(at.port, batch, at.index)?,
            ..Default::default()
        },
        (None, _) => policy::process(name, node, batch, at, isolate)?,
    };
    stats.called(&node.t.instance);
    node.observe(batch, at.port);
    handover::shadow(name, node, batch, at, &outcome.outputs, stats);
    Ok(outcome)
}

/// What a checkpoint waits for: the state store's run a snapshot names,
/// written on a thread of its own.
fn pending(written: kv::Written) -> crate::checkpoint::Pending {
    crate::checkpoint::Pending::new(move || written.wait())
}

/// Once a checkpoint is durable: deletes the node's state-store runs that
/// no kept checkpoint names nor this snapshot (`keep`: the checkpoint that
/// holds it may not be written yet), written before the snapshot was
/// `taken` (a run written since may be in the next one), and open nowhere
/// in the process (a canary's, say). On the checkpoint thread, off the
/// data path.
fn collect_state_garbage(
    checkpoint_dir: &std::path::Path,
    state_dir: &std::path::Path,
    node: &str,
    keep: Option<Vec<String>>,
    taken: std::time::SystemTime,
) -> crate::checkpoint::Publish {
    let (checkpoint_dir, state_dir) = (checkpoint_dir.to_path_buf(), state_dir.to_path_buf());
    let node = node.to_string();
    let keep = keep.unwrap_or_default();
    crate::checkpoint::Publish::new(move || {
        let states = crate::checkpoint::transform_states(&checkpoint_dir, &node);
        let deleted = kv::collect_garbage(&state_dir, &states, &keep, taken);
        if deleted > 0 {
            tracing::debug!(node = %node, runs = deleted, "deleted state-store runs no checkpoint needs");
        }
        Ok(())
    })
}
