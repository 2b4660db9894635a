//! `type = "generate"`: deterministic synthetic rows, bounded or unbounded,
//! optionally paced to a rate. For demos, hot-reload tests and benchmarks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::{Source, SourceContext};
use crate::{Error, Result};

/// A `type = "generate"` source. Columns: `seq` (int64, 0, 1, 2, …), `ts`
/// (timestamp µs UTC, one row per millisecond from `start_us`), `key`
/// (utf8, `k0`…`k{keys-1}`), `value` (float64, pseudo-random in [-100, 100)).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// `rows`: total rows; absent means unbounded (until the run stops).
    pub rows: Option<u64>,
    /// `rate`: rows per second; absent means as fast as downstream takes them.
    pub rate: Option<f64>,
    /// `keys`: distinct values of `key` (default 100).
    #[serde(default = "default_keys")]
    pub keys: u64,
    /// `seed`: changes `value`; the same seed gives the same rows (default 0).
    #[serde(default)]
    pub seed: u64,
    /// `start_us`: `ts` of row 0, µs since the epoch (default 2024-01-01).
    #[serde(default = "default_start")]
    pub start_us: i64,
    /// `batch_size`: rows per batch, overriding `[pipeline]`.
    pub batch_size: Option<usize>,
}

fn default_keys() -> u64 {
    100
}
fn default_start() -> i64 {
    1_704_067_200_000_000
}

/// The schema every `generate` source emits.
pub fn generate_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// splitmix64: a fast, well-mixed hash of the row number.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

struct Generate {
    config: GenerateConfig,
    schema: SchemaRef,
    batch_rows: u64,
    next: u64,
    started: Option<Instant>,
}

impl GenerateConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        if self.keys == 0 {
            return Err(Error::source(ctx.name, "`keys` must be at least 1"));
        }
        let mut batch_rows = self.batch_size.unwrap_or(ctx.batch_size) as u64;
        if let Some(rate) = self.rate {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(Error::source(ctx.name, "`rate` must be a positive number"));
            }
            // A paced stream still flows: cut a batch at least every 100 ms.
            batch_rows = batch_rows.min(((rate / 10.0).ceil() as u64).max(1));
        }
        Ok(Box::new(Generate {
            config: self.clone(),
            schema: generate_schema(),
            batch_rows: batch_rows.max(1),
            next: 0,
            started: None,
        }))
    }
}

impl Source for Generate {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let remaining = self.config.rows.map_or(u64::MAX, |r| r - self.next.min(r));
        let n = self.batch_rows.min(remaining);
        if n == 0 {
            return Ok(None);
        }
        let resumed_at = self.next;
        let rate = self.config.rate;
        // A resumed source keeps pace from where it is, not from row 0.
        let started = *self.started.get_or_insert_with(|| {
            let ahead = rate.map_or(0.0, |r| resumed_at as f64 / r);
            Instant::now()
                .checked_sub(Duration::from_secs_f64(ahead))
                .unwrap_or_else(Instant::now)
        });
        if let Some(rate) = self.config.rate {
            let due = started + Duration::from_secs_f64((self.next + n) as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let range = self.next..self.next + n;
        self.next += n;
        let seed = self.config.seed;
        let seq = Int64Array::from_iter_values(range.clone().map(|i| i as i64));
        let ts = TimestampMicrosecondArray::from_iter_values(
            range
                .clone()
                .map(|i| self.config.start_us + i as i64 * 1000),
        )
        .with_timezone("UTC");
        let key = StringArray::from_iter_values(
            range
                .clone()
                .map(|i| format!("k{}", mix(i ^ seed.rotate_left(17)) % self.config.keys)),
        );
        let value = Float64Array::from_iter_values(range.map(|i| {
            (mix(i.wrapping_add(seed)) >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0
        }));
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![Arc::new(seq), Arc::new(ts), Arc::new(key), Arc::new(value)],
        )
        .map_err(|e| Error::source("generate", e))?;
        Ok(Some(batch))
    }

    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "next": self.next }))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        self.next = position
            .get("next")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| Error::source("generate", format!("not a position: {position}")))?;
        self.started = None;
        Ok(())
    }
}
