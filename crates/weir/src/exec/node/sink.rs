//! A sink node's task: writes every batch, prepares its output at a
//! checkpoint barrier.

use std::time::Instant;

use super::{Context, TaskEnd};
use crate::checkpoint::NodeState;
use crate::exec::message::{Event, Inputs};
use crate::sink::Sink;
use crate::{Error, Result};

/// Writes batches until the input closes; `Paused` when it paused (no
/// commit: the sink continues in the next generation). At a barrier the
/// sink prepares its output for the checkpoint.
pub(in crate::exec) fn run_sink(
    cx: &Context,
    sink: &mut dyn Sink,
    input: &mut Inputs,
) -> Result<TaskEnd> {
    while let Some(event) = input.blocking_next() {
        if cx.control.failed() {
            return Ok(TaskEnd::Done);
        }
        match event {
            Event::Batch(rows, w, _) => {
                let started = Instant::now();
                // The sender applied any pending selection already (an
                // edge into a sink is `whole`); this takes its result.
                let batch = rows.to_batch().map_err(|e| {
                    Error::sink_from(&cx.name, "applying the upstream plugin's selection", e)
                })?;
                sink.write(&batch)?;
                cx.stats.consumed(&rows);
                cx.stats.busy(started.elapsed());
                if let Some(w) = w {
                    cx.stats.watermark(w);
                }
            }
            Event::Watermark(w) => cx.stats.watermark(w),
            Event::Ended(_) | Event::Complete(_) => {}
            Event::Barrier(id) => {
                if let Some(checkpoints) = cx.checkpoints.as_deref() {
                    let started = Instant::now();
                    let state = sink.prepare()?;
                    cx.stats.busy(started.elapsed());
                    checkpoints.ack(id, &cx.name, NodeState::Sink(state));
                }
            }
        }
    }
    Ok(if !cx.control.failed() && cx.generation.pausing() {
        TaskEnd::Paused
    } else {
        TaskEnd::Done
    })
}
