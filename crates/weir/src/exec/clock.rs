//! Event time at a source: the watermark each batch carries, computed
//! from the source's `watermark = { column, delay_ms }` as the newest
//! event time seen so far minus the delay.

use arrow::array::{Array, TimestampMicrosecondArray};
use arrow::compute::cast;
use arrow::compute::kernels::aggregate::max;
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::manifest::WatermarkConfig;
use crate::{Error, Result};

/// A source's event-time clock and checkpoint bookkeeping; it outlives a
/// generation (a manifest reload), as the source does.
#[derive(Debug)]
pub(crate) struct SourceClock {
    config: Option<WatermarkConfig>,
    newest: Option<i64>,
    /// The newest checkpoint barrier this source sent.
    pub last_barrier: u64,
}

impl SourceClock {
    pub(crate) fn new(config: Option<WatermarkConfig>, last_barrier: u64) -> SourceClock {
        SourceClock {
            config,
            newest: None,
            last_barrier,
        }
    }

    fn delay_us(&self) -> i64 {
        self.config
            .as_ref()
            .map_or(0, |c| (c.delay_ms as i64).saturating_mul(1000))
    }

    /// The watermark, in microseconds since the epoch.
    pub(crate) fn watermark(&self) -> Option<i64> {
        self.newest.map(|t| t.saturating_sub(self.delay_us()))
    }

    /// Resumes at a checkpointed watermark.
    pub(crate) fn restore(&mut self, watermark: Option<i64>) {
        self.newest = watermark.map(|w| w.saturating_add(self.delay_us()));
    }

    /// The watermark's column, if the source has a watermark.
    pub(crate) fn column(&self) -> Option<&str> {
        self.config.as_ref().map(|c| c.column.as_str())
    }

    /// Counts `batch`'s event times; the watermark after it. `splits`:
    /// the time every split of the source has passed, when it reads
    /// several (Kafka partitions); then that, not the batch's newest,
    /// moves the clock.
    pub(crate) fn observe(
        &mut self,
        node: &str,
        batch: &RecordBatch,
        splits: Option<Option<i64>>,
    ) -> Result<Option<i64>> {
        let Some(config) = &self.config else {
            return Ok(None);
        };
        let column = batch.column_by_name(&config.column).ok_or_else(|| {
            Error::source(
                node,
                format!(
                    "watermark.column {:?} is not a column of this source",
                    config.column
                ),
            )
        })?;
        if !matches!(column.data_type(), DataType::Timestamp(_, _)) {
            return Err(Error::source(
                node,
                format!(
                    "watermark.column {:?} is {}, not a timestamp; parse it first or declare it \
                     as timestamp in the source's `schema`",
                    config.column,
                    column.data_type()
                ),
            ));
        }
        let micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))
            .map_err(|e| Error::source_from(node, "watermark.column", e))?;
        let Some(micros) = micros.as_any().downcast_ref::<TimestampMicrosecondArray>() else {
            return Ok(self.watermark());
        };
        let newest = match splits {
            Some(splits) => splits,
            None => max(micros),
        };
        if let Some(newest) = newest {
            self.newest = Some(self.newest.map_or(newest, |n| n.max(newest)));
        }
        Ok(self.watermark())
    }
}
