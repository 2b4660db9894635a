//! `type = "blackhole"`: counts rows and drops them, optionally no faster
//! than `rate` rows per second — for benchmarks, and for seeing what a
//! slow destination does to the pipeline (backpressure) without one.

use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::{Sink, SinkContext};
use crate::{Error, Result};

/// A `type = "blackhole"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BlackholeSinkConfig {
    /// `rate`: the most rows per second it takes; absent: as fast as they come.
    pub rate: Option<f64>,
}

struct Blackhole {
    node: String,
    rate: Option<f64>,
    rows: u64,
    started: Option<Instant>,
}

impl BlackholeSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        if let Some(rate) = self.rate {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(Error::sink(ctx.name, "`rate` must be a positive number"));
            }
        }
        Ok(Box::new(Blackhole {
            node: ctx.name.to_string(),
            rate: self.rate,
            rows: 0,
            started: None,
        }))
    }
}

impl Sink for Blackhole {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let started = *self.started.get_or_insert_with(Instant::now);
        self.rows += batch.num_rows() as u64;
        if let Some(rate) = self.rate {
            let due = started + Duration::from_secs_f64(self.rows as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        tracing::info!(node = %self.node, rows = self.rows, "blackhole: rows dropped");
        Ok(())
    }

    fn abort(self: Box<Self>) {}

    fn exactly_once(&self) -> bool {
        // Nothing is published, so nothing can be published twice.
        true
    }
}
