//! A source node's task: reads batches until its input ends or the
//! pipeline stops, stamps event time, reports bad records, and takes part
//! in checkpoints between two batches.

use std::sync::Mutex;
use std::time::Instant;

use arrow::record_batch::RecordBatch;

use super::{send_batch, Context, TaskEnd};
use crate::checkpoint::NodeState;
use crate::exec::clock::SourceClock;
use crate::exec::message::{send, Edge, Msg};
use crate::plugin::Rows;
use crate::source::Source;
use crate::Result;

/// The first few bad records each get a line; after that one line per
/// batch counts them (a file of a million bad lines must not flood the
/// log — they are all in the dead-letter output when it is routed).
const NAMED_BAD_RECORDS: u64 = 10;

/// Reads batches until the input ends (`Done`), the pipeline stops
/// (`Done`, after draining what the source already accepted), or a reload
/// pauses it (`Paused`).
pub(in crate::exec) fn run_source(
    cx: &Context,
    source: &mut dyn Source,
    outputs: &[Edge],
    dead_letter: &[Edge],
    clock: &Mutex<SourceClock>,
) -> Result<TaskEnd> {
    let mut run = SourceRun {
        cx,
        outputs,
        dead_letter,
        all: outputs.iter().chain(dead_letter).cloned().collect(),
        clock,
        bad_so_far: 0,
    };
    let mut ended = false;
    while !cx.control.stopping() {
        if cx.generation.pausing() {
            return Ok(TaskEnd::Paused);
        }
        if source.at_boundary() {
            run.barrier(source);
        }
        let started = Instant::now();
        let next = source.next_batch()?;
        run.report_bad(source)?;
        let Some(batch) = next else {
            ended = true;
            break;
        };
        // An unbounded source that found nothing (a poll with no new
        // records) returns an empty batch, so stop, pause and checkpoints
        // are seen.
        if batch.num_rows() > 0 && !run.emit(source, &batch, started)? {
            break;
        }
        run.complete(source);
    }
    if !ended && !cx.control.failed() {
        run.drain(source)?;
        run.complete(source);
    }
    run.end(source, ended);
    Ok(TaskEnd::Done)
}

/// One source task's state between two batches.
struct SourceRun<'a> {
    cx: &'a Context,
    outputs: &'a [Edge],
    dead_letter: &'a [Edge],
    /// Both, for barriers and end markers.
    all: Vec<Edge>,
    clock: &'a Mutex<SourceClock>,
    bad_so_far: u64,
}

impl SourceRun<'_> {
    /// Counts and logs the records the source rejected since the last
    /// call, and sends them to the dead-letter output.
    fn report_bad(&mut self, source: &mut dyn Source) -> Result<()> {
        let bad = source.bad_records();
        if bad.is_empty() {
            return Ok(());
        }
        self.cx.stats.rejected(bad.len());
        let named = NAMED_BAD_RECORDS.saturating_sub(self.bad_so_far) as usize;
        for record in bad.iter().take(named) {
            tracing::warn!(file = %record.file, location = %record.location,
                error = %record.error, "bad record");
        }
        self.bad_so_far += bad.len() as u64;
        if bad.len() > named {
            tracing::warn!(
                more = bad.len() - named,
                total = self.bad_so_far,
                "more bad records{}",
                if self.dead_letter.is_empty() {
                    " (each was skipped)"
                } else {
                    " (each went to the dead-letter output)"
                }
            );
        }
        send_batch(
            self.dead_letter,
            &crate::source::bad::source_dead_letter_batch(&self.cx.name, &bad)?.into(),
            None,
            &self.cx.stats,
        );
        Ok(())
    }

    /// Between two batches: a checkpoint asked for gets this source's
    /// position and its barrier downstream.
    fn barrier(&self, source: &mut dyn Source) {
        let Some(checkpoints) = self.cx.checkpoints.as_deref() else {
            return;
        };
        let id = checkpoints.requested();
        let Ok(mut clock) = self.clock.lock() else {
            return;
        };
        if id > clock.last_barrier {
            clock.last_barrier = id;
            if let Some(publish) = source.publish() {
                checkpoints.on_durable(id, &self.cx.name, publish);
            }
            checkpoints.ack(
                id,
                &self.cx.name,
                NodeState::Source {
                    position: source.position(),
                    watermark: clock.watermark(),
                },
            );
            send(&self.all, &Msg::Barrier(id));
        }
    }

    /// Stamps event time and sends `batch` on; `false` once every consumer
    /// is gone.
    fn emit(&self, source: &mut dyn Source, batch: &RecordBatch, started: Instant) -> Result<bool> {
        let watermark = match self.clock.lock() {
            Ok(mut clock) => {
                let splits = match clock.column() {
                    Some(column) => source.split_event_time(column, batch)?,
                    None => None,
                };
                clock.observe(&self.cx.name, batch, splits)?
            }
            Err(_) => None,
        };
        if let Some(w) = watermark {
            self.cx.stats.watermark(w);
        }
        let rows = Rows::from(batch.clone());
        self.cx.stats.produced(&rows, started.elapsed());
        // Every consumer gone means the pipeline is failing. No consumer
        // at all is a node nobody reads yet (mid-way through a manifest
        // edit): its batches are discarded, as the manifest says.
        Ok(send_batch(self.outputs, &rows, watermark, &self.cx.stats) || self.outputs.is_empty())
    }

    /// After a refreshed table's last batch of a version: the mark that
    /// lets a join swap tables there.
    fn complete(&self, source: &mut dyn Source) {
        if source.take_complete() {
            send(self.outputs, &Msg::Complete);
        }
    }

    /// A graceful stop: what the source already took on still goes.
    fn drain(&self, source: &mut dyn Source) -> Result<()> {
        let started = Instant::now();
        for batch in source.drain()? {
            if batch.num_rows() > 0 && !self.emit(source, &batch, started)? {
                break;
            }
        }
        Ok(())
    }

    /// The source's final state for the checkpoint coordinator, and the
    /// end marker downstream: `End` when its input ended, `Stopped` when
    /// it was stopped on request (downstream must not take what it holds
    /// for final).
    fn end(&self, source: &mut dyn Source, ended: bool) {
        if let (Some(checkpoints), Ok(clock)) = (self.cx.checkpoints.as_deref(), self.clock.lock())
        {
            if let Some(publish) = source.publish() {
                checkpoints.on_durable(0, &self.cx.name, publish);
            }
            checkpoints.ended(
                &self.cx.name,
                NodeState::Source {
                    position: source.position(),
                    watermark: clock.watermark(),
                },
            );
        }
        if !ended {
            self.cx
                .control
                .cut_short
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        send(&self.all, if ended { &Msg::End } else { &Msg::Stopped });
    }
}
