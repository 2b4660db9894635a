//! The interval join of two streams: a `left` row and a `right` row with
//! equal keys join when `right.ts - before <= left.ts <= right.ts + after`
//! (SQL: `l.ts BETWEEN r.ts - INTERVAL 'before' AND r.ts + INTERVAL
//! 'after'`). Each side's rows wait in the plugin until the watermark says
//! no row of the other side can match them any more, so the state stays
//! bounded by the watermark's progress; a pair comes out once, when the
//! later of its two rows arrives.

use std::collections::VecDeque;

use arrow_row::{RowConverter, Rows, SortField};
use arrow_select::interleave::interleave;
use rustc_hash::FxHashMap as HashMap;
use weir_plugin_sdk::prelude::*;

use super::{Config, Key};

/// `within = { left = "ts", right = "ts", before_ms = …, after_ms = … }`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Within {
    /// The left side's event-time column.
    left: String,
    /// The right side's event-time column.
    right: String,
    #[serde(default)]
    before_ms: u64,
    #[serde(default)]
    after_ms: u64,
}

pub const LEFT: usize = 0;
pub const RIGHT: usize = 1;

/// The output schema: the left's columns, then the right's (all but its
/// keys, or `columns`), with `prefix`.
pub fn output(
    left: &Schema,
    right: &Schema,
    config: &Config,
    within: &Within,
) -> Result<SchemaRef> {
    for (side, schema, column) in [
        ("left", left, &within.left),
        ("right", right, &within.right),
    ] {
        let field = schema.field_with_name(column).map_err(|_| {
            Error::msg(format!(
                "join: `within.{side}` names {column:?}, not a column of the {side} input"
            ))
        })?;
        ensure!(
            matches!(field.data_type(), DataType::Timestamp(_, _)),
            "join: `within.{side}` column {column:?} is {}, not a timestamp",
            field.data_type()
        );
    }
    let plan = super::plan_sides(left, right, config, "left", "right")?;
    Ok(plan.output)
}

/// One side's rows still able to match, in batches (`first` numbers the
/// front one), and where each key's rows are.
#[derive(Default)]
struct Side {
    batches: VecDeque<RecordBatch>,
    /// The newest event time in each batch (to drop whole batches).
    newest: VecDeque<i64>,
    first: usize,
    by_key: HashMap<Box<[u8]>, Vec<Waiting>>,
}

/// A waiting row: its event time (µs), its batch's number, its row.
type Waiting = (i64, usize, u32);

/// A joined pair: (left batch number, row), (right batch number, row).
type Pair = ((usize, usize), (usize, usize));

/// A batch's keys (as columns and row-encoded) and event times.
struct Keyed {
    keys: Vec<ArrayRef>,
    encoded: Rows,
    times: Vec<Option<i64>>,
}

impl Keyed {
    /// Whether `row` can join at all (a time, no null key): its time.
    fn time(&self, row: usize) -> Option<i64> {
        self.times[row].filter(|_| self.keys.iter().all(|k| k.is_valid(row)))
    }
}

/// The interval join's state: both sides' waiting rows.
pub struct IntervalJoin {
    within: Within,
    keys: Vec<(String, String)>,
    sides: [Side; 2],
    converter: Option<RowConverter>,
    output: Option<SchemaRef>,
    /// The right's columns in the output, by index in the right's batches.
    right_columns: Vec<usize>,
}

impl IntervalJoin {
    pub fn new(within: Within, on: &[Key]) -> Self {
        IntervalJoin {
            within,
            keys: on
                .iter()
                .map(|k| (k.stream().to_string(), k.table().to_string()))
                .collect(),
            sides: [Side::default(), Side::default()],
            converter: None,
            output: None,
            right_columns: Vec::new(),
        }
    }

    fn key_columns(&self, side: usize, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.keys
            .iter()
            .map(|(l, r)| {
                let name = if side == LEFT { l } else { r };
                Ok(batch.column(batch.schema().index_of(name)?).clone())
            })
            .collect()
    }

    /// One batch from `side`: its pairs with the other side's waiting rows,
    /// then it waits too; rows no future row can match are dropped.
    pub fn process(
        &mut self,
        side: usize,
        batch: RecordBatch,
        watermark: Option<i64>,
        config: &Config,
    ) -> Result<Vec<Output>> {
        let mut out = Vec::new();
        if batch.num_rows() > 0 {
            out.extend(self.probe_and_keep(side, batch, config)?);
        }
        if let Some(w) = watermark {
            self.evict(w);
        }
        Ok(out)
    }

    /// `batch`'s keys and times.
    fn keyed(&mut self, side: usize, batch: &RecordBatch) -> Result<Keyed> {
        let keys = self.key_columns(side, batch)?;
        if self.converter.is_none() {
            let fields = keys
                .iter()
                .map(|k| SortField::new(k.data_type().clone()))
                .collect();
            self.converter = Some(RowConverter::new(fields)?);
        }
        let encoded = self
            .converter
            .as_ref()
            .expect("made above")
            .convert_columns(&keys)?;
        let time = if side == LEFT {
            &self.within.left
        } else {
            &self.within.right
        };
        let times = weir_plugin_sdk::time::micros(batch.column(batch.schema().index_of(time)?))?;
        Ok(Keyed {
            keys,
            encoded,
            times,
        })
    }

    /// `batch` waits on `side`, its rows indexed by key.
    fn keep(&mut self, side: usize, batch: RecordBatch, keyed: &Keyed) {
        let s = &mut self.sides[side];
        let this = s.first + s.batches.len();
        let newest = keyed
            .times
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(i64::MIN);
        for row in 0..batch.num_rows() {
            if let Some(t) = keyed.time(row) {
                let key = keyed.encoded.row(row).as_ref().into();
                s.by_key.entry(key).or_default().push((t, this, row as u32));
            }
        }
        s.batches.push_back(batch);
        s.newest.push_back(newest);
    }

    fn probe_and_keep(
        &mut self,
        side: usize,
        batch: RecordBatch,
        config: &Config,
    ) -> Result<Vec<Output>> {
        let keyed = self.keyed(side, &batch)?;
        let (before, after) = (
            self.within.before_ms as i64 * 1000,
            self.within.after_ms as i64 * 1000,
        );
        // The other side's rows a row at `t` joins: left at t joins right
        // in [t - after, t + before]; right at t joins left in
        // [t - before, t + after].
        let (low, high) = if side == LEFT {
            (after, before)
        } else {
            (before, after)
        };
        let other = &self.sides[1 - side];
        let mut pairs: Vec<Pair> = Vec::new();
        let this = self.sides[side].first + self.sides[side].batches.len();
        for row in 0..batch.num_rows() {
            let Some(t) = keyed.time(row) else { continue };
            if let Some(rows) = other.by_key.get(keyed.encoded.row(row).as_ref()) {
                for &(ot, seg, orow) in rows {
                    if ot >= t - low && ot <= t + high {
                        let mine = (this, row);
                        let theirs = (seg, orow as usize);
                        pairs.push(if side == LEFT {
                            (mine, theirs)
                        } else {
                            (theirs, mine)
                        });
                    }
                }
            }
        }
        // The batch waits for the other side's later rows.
        self.keep(side, batch, &keyed);
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        self.pairs(&pairs, config).map(|b| vec![Output::batch(b)])
    }

    /// The output rows of `pairs` ((left batch, row), (right batch, row)).
    fn pairs(&mut self, pairs: &[Pair], config: &Config) -> Result<RecordBatch> {
        if self.output.is_none() {
            let (l, r) = (&self.sides[LEFT].batches[0], &self.sides[RIGHT].batches[0]);
            let plan = super::plan_sides(&l.schema(), &r.schema(), config, "left", "right")?;
            self.right_columns = plan.added.iter().map(|(i, _)| *i).collect();
            self.output = Some(plan.output);
        }
        let output = self.output.clone().expect("planned above");
        let mut columns = Vec::with_capacity(output.fields().len());
        for (side, picks) in [(LEFT, None), (RIGHT, Some(self.right_columns.clone()))] {
            let s = &self.sides[side];
            let index: Vec<(usize, usize)> = pairs
                .iter()
                .map(|p| if side == LEFT { p.0 } else { p.1 })
                .map(|(seg, row)| (seg - s.first, row))
                .collect();
            let width = s.batches[0].num_columns();
            let chosen: Vec<usize> = picks.unwrap_or_else(|| (0..width).collect());
            for c in chosen {
                let arrays: Vec<&dyn Array> =
                    s.batches.iter().map(|b| b.column(c).as_ref()).collect();
                columns.push(interleave(&arrays, &index)?);
            }
        }
        Ok(RecordBatch::try_new(output, columns)?)
    }

    /// Drops the front batches of each side whose rows no row at or after
    /// watermark `w` can match.
    fn evict(&mut self, w: i64) {
        let (before, after) = (
            self.within.before_ms as i64 * 1000,
            self.within.after_ms as i64 * 1000,
        );
        for side in [LEFT, RIGHT] {
            // A left row at t matches right rows up to t + before; a right
            // row at t, left rows up to t + after.
            let reach = if side == LEFT { before } else { after };
            let s = &mut self.sides[side];
            let mut dropped = 0;
            while s
                .newest
                .front()
                .is_some_and(|&n| n.saturating_add(reach) < w)
            {
                s.batches.pop_front();
                s.newest.pop_front();
                s.first += 1;
                dropped += 1;
            }
            if dropped > 0 {
                let first = s.first;
                s.by_key.retain(|_, rows| {
                    rows.retain(|&(_, seg, _)| seg >= first);
                    !rows.is_empty()
                });
            }
        }
    }

    /// Both sides' waiting batches, for a checkpoint.
    pub fn state(&self) -> [Vec<RecordBatch>; 2] {
        [LEFT, RIGHT].map(|s| self.sides[s].batches.iter().cloned().collect())
    }

    /// Takes over a checkpoint's waiting batches.
    pub fn restore(&mut self, sides: [Vec<RecordBatch>; 2], config: &Config) -> Result<()> {
        let within = self.within.clone();
        *self = IntervalJoin::new(within, &config.on);
        for (side, batches) in sides.into_iter().enumerate() {
            for batch in batches {
                // Waits again, without probing: its pairs were emitted
                // before the checkpoint.
                let keyed = self.keyed(side, &batch)?;
                self.keep(side, batch, &keyed);
            }
        }
        Ok(())
    }
}
