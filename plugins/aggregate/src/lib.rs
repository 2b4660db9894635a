//! `aggregate`: event-time windows. Groups rows by window and key and
//! emits one row per (window, key) once the watermark says the window is
//! complete.
//!
//! ```toml
//! [transforms.per_minute]
//! plugin = "plugins/aggregate.wasm"
//! inputs = ["orders"]
//! config = { time = "ts", window_ms = 60000, group_by = ["customer"],
//!            aggregates = [{ op = "count" }, { op = "sum", column = "amount" }],
//!            allowed_lateness_ms = 5000 }
//! ```
//!
//! - `time`: a timestamp column (any unit); windows are aligned to the
//!   UNIX epoch: `[k·slide, k·slide + window)`.
//! - `window_ms`; `slide_ms` (optional) makes windows slide: a row then
//!   counts in every window that contains it. Without it, tumbling.
//! - `group_by`: key columns (strings of any encoding, integers,
//!   booleans, decimal128, date32; nulls are a key of their own). Integer
//!   keys come out as int64, the others as their input type.
//! - `aggregates`: `count` (rows, or non-null values of `column`), `sum`,
//!   `min`, `max`, `avg` of a numeric `column`; `as` names the output
//!   column (default `count` / `<op>_<column>`). Integer inputs sum, min
//!   and max as int64; floats and `avg` as float64; nulls are skipped.
//! - `allowed_lateness_ms`: a window is emitted once the watermark passes
//!   its end plus this. A row arriving for a window already emitted is
//!   late: it is never silently merged. It leaves unchanged by the `late`
//!   port (`inputs = ["per_minute.late"]` downstream) and is counted
//!   (`late rows` in the log, with the running total). With sliding
//!   windows, a row late for any of its windows goes there (it still
//!   counts in those of its windows still open).
//!
//! - `store` (optional): where the open windows are kept. `"memory"`
//!   (default) is the plugin's own memory, snapshotted whole at every
//!   checkpoint: the fastest while they fit. `"host"` is the host's state
//!   store: memory bounded by `limits.memory_mb` however many groups are
//!   open, and a checkpoint writes only the groups touched since the one
//!   before (see `host.rs`). Switching a running node either way moves its
//!   open windows over.
//!
//! The watermark is the one weir hands over with every batch (sources
//! declare `watermark = { column, delay_ms }`). Without one, windows are
//! emitted at end of input. Output rows come in (window start, key) order.
//! Open windows, the watermark and the late count are the plugin's state:
//! they survive hot reload and checkpoints.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// The output port of rows later than `allowed_lateness_ms`.
const LATE: &str = "late";
use std::sync::Arc;

use weir_plugin_sdk::arrow_array::types::{
    Decimal128Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt8Type,
};
use weir_plugin_sdk::arrow_array::{
    ArrayRef, Decimal128Array, Float64Array, Int64Array, TimestampMicrosecondArray,
};
use weir_plugin_sdk::prelude::*;
use weir_plugin_sdk::serde::{Deserialize as De, Serialize};
use weir_plugin_sdk::serde_json;

mod host;
mod keys;

use host::{Group, HostWindows};
use keys::{keys_of, Key, KeyKind};
use weir_plugin_sdk::state::Store;

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Rows (or non-null values of `column`).
    Count,
    /// Sum of non-null values.
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Mean of non-null values (float64).
    Avg,
}

/// One entry of `aggregates`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggConfig {
    /// `op`: `count`, `sum`, `min`, `max` or `avg`.
    op: Op,
    /// `column`: the input column (optional for `count`).
    column: Option<String>,
    /// `as`: the output column's name.
    #[serde(rename = "as")]
    name: Option<String>,
}

/// The `config` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `time`: the event-time column.
    time: String,
    /// `window_ms`: window length.
    window_ms: u64,
    /// `slide_ms`: distance between window starts (sliding windows).
    slide_ms: Option<u64>,
    /// `group_by`: key columns.
    #[serde(default)]
    group_by: Vec<String>,
    /// `aggregates`: what to compute per window and key.
    aggregates: Vec<AggConfig>,
    /// `allowed_lateness_ms`: how long past its end a window waits.
    #[serde(default)]
    allowed_lateness_ms: u64,
    /// `store`: where the open windows are kept.
    #[serde(default)]
    store: Store,
}

/// An f64 kept bit-exact through a snapshot.
#[derive(Debug, Clone, Copy, Serialize, De)]
#[serde(crate = "weir_plugin_sdk::serde", from = "u64", into = "u64")]
struct Exact(f64);

impl From<u64> for Exact {
    fn from(bits: u64) -> Self {
        Exact(f64::from_bits(bits))
    }
}
impl From<Exact> for u64 {
    fn from(v: Exact) -> u64 {
        v.0.to_bits()
    }
}

/// A running aggregate.
#[derive(Debug, Clone, Serialize, De)]
#[serde(crate = "weir_plugin_sdk::serde")]
enum Acc {
    Count(i64),
    SumInt(Option<i64>),
    SumFloat(Option<Exact>),
    MinInt(Option<i64>),
    MinFloat(Option<Exact>),
    MaxInt(Option<i64>),
    MaxFloat(Option<Exact>),
    Avg(Exact, i64),
    /// Decimals, exactly: unscaled values at the column's scale.
    SumDecimal(Option<i128>),
    MinDecimal(Option<i128>),
    MaxDecimal(Option<i128>),
    AvgDecimal(i128, i64),
}

/// How one aggregate reads its input.
#[derive(Debug, Clone, Serialize, De)]
#[serde(crate = "weir_plugin_sdk::serde")]
struct Agg {
    op: Op,
    column: Option<String>,
    name: String,
    /// The input is an integer column (else float).
    int: bool,
    /// The input is a decimal128 column of this (precision, scale):
    /// summed, compared and averaged exactly. Absent in states written
    /// before decimals were aggregated.
    #[serde(default)]
    decimal: Option<(u8, i8)>,
}

/// Extra fractional digits of an average over its input (Spark's rule:
/// avg(decimal(p, s)) is decimal(p + 4, s + 4)).
const AVG_EXTRA_SCALE: u8 = 4;

impl Agg {
    fn empty(&self) -> Acc {
        if self.decimal.is_some() {
            return match self.op {
                Op::Count => Acc::Count(0),
                Op::Sum => Acc::SumDecimal(None),
                Op::Min => Acc::MinDecimal(None),
                Op::Max => Acc::MaxDecimal(None),
                Op::Avg => Acc::AvgDecimal(0, 0),
            };
        }
        match (self.op, self.int) {
            (Op::Count, _) => Acc::Count(0),
            (Op::Sum, true) => Acc::SumInt(None),
            (Op::Sum, false) => Acc::SumFloat(None),
            (Op::Min, true) => Acc::MinInt(None),
            (Op::Min, false) => Acc::MinFloat(None),
            (Op::Max, true) => Acc::MaxInt(None),
            (Op::Max, false) => Acc::MaxFloat(None),
            (Op::Avg, _) => Acc::Avg(Exact(0.0), 0),
        }
    }

    fn data_type(&self) -> DataType {
        if let (Some((p, s)), false) = (self.decimal, self.op == Op::Count) {
            return match self.op {
                // A sum may need every digit a decimal128 has.
                Op::Sum => DataType::Decimal128(38, s),
                Op::Avg => DataType::Decimal128(
                    (p + AVG_EXTRA_SCALE).min(38),
                    (s + AVG_EXTRA_SCALE as i8).min(38),
                ),
                _ => DataType::Decimal128(p, s),
            };
        }
        match (self.op, self.int) {
            (Op::Count, _) => DataType::Int64,
            (Op::Avg, _) => DataType::Float64,
            (_, true) => DataType::Int64,
            (_, false) => DataType::Float64,
        }
    }
}

/// A batch's columns, as the windows read them.
struct Rows<'a> {
    times: &'a [Option<i64>],
    keys: &'a [Vec<Key>],
    values: &'a [Values],
    aggs: &'a [Agg],
}

/// A value column read for one batch.
enum Values {
    Rows,
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Decimal(Vec<Option<i128>>),
}

/// The open windows' state, as snapshotted.
#[derive(Serialize, De, Default)]
#[serde(crate = "weir_plugin_sdk::serde")]
struct State {
    watermark: Option<i64>,
    late_rows: u64,
    windows: Vec<(i64, Vec<Key>, Vec<Acc>)>,
    /// How the input was read (a restored instance may see no batch
    /// before it must emit its windows).
    aggs: Option<Vec<Agg>>,
    keys: Option<Vec<KeyKind>>,
    /// `store = "host"`: starts of the windows whose groups are in the
    /// host store (`windows` is then empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    in_store: Vec<i64>,
}

struct Aggregate {
    config: Config,
    window_us: i64,
    slide_us: i64,
    lateness_us: i64,
    /// Resolved on the first batch (or from `describe`'s input).
    aggs: Option<Vec<Agg>>,
    keys: Option<Vec<KeyKind>>,
    schema: Option<SchemaRef>,
    /// The open windows (`store = "memory"`).
    open: BTreeMap<(i64, Vec<Key>), Vec<Acc>>,
    /// `store = "host"`: the open windows are in the host store.
    host: Option<HostWindows>,
    watermark: Option<i64>,
    late_rows: u64,
    untimed_rows: u64,
}

fn is_int(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

fn field<'s>(input: &'s Schema, name: &str, role: &str) -> Result<&'s Field> {
    input.field_with_name(name).map_err(|_| {
        Error::msg(format!(
            "aggregate: {role} column {name:?} is not in the input"
        ))
    })
}

/// Checks `config` against `input`; the aggregates and key kinds it means.
fn resolve(input: &Schema, config: &Config) -> Result<(Vec<Agg>, Vec<KeyKind>)> {
    let time = field(input, &config.time, "`time`")?;
    if !matches!(time.data_type(), DataType::Timestamp(_, _)) {
        return Err(Error::msg(format!(
            "aggregate: `time` column {:?} is {}, not a timestamp (parse it first, e.g. with parse-time)",
            config.time,
            time.data_type()
        )));
    }
    let mut keys = Vec::new();
    for k in &config.group_by {
        let kind = KeyKind::of(k, field(input, k, "`group_by`")?.data_type())?;
        keys.push(kind);
    }
    let mut aggs = Vec::new();
    for a in &config.aggregates {
        let decimal = match a
            .column
            .as_ref()
            .map(|c| field(input, c, "aggregate"))
            .transpose()?
        {
            Some(f) => match f.data_type() {
                DataType::Decimal128(p, s) if *s >= 0 => Some((*p, *s)),
                _ => None,
            },
            None => None,
        };
        let int = match (&a.column, a.op) {
            (None, Op::Count) => true,
            (None, op) => {
                return Err(Error::msg(
                    format!("aggregate: {op:?} needs a `column`").to_lowercase(),
                ))
            }
            (Some(c), _) => {
                let t = field(input, c, "aggregate")?.data_type();
                match t {
                    t if is_int(t) => true,
                    DataType::Float32 | DataType::Float64 => false,
                    DataType::Decimal128(_, s) if *s >= 0 => false,
                    _ if a.op == Op::Count => true,
                    t => {
                        return Err(Error::msg(format!(
                            "aggregate: column {c:?} is {t}; sum, min, max and avg need a number \
                             (an integer, a float or a decimal128)"
                        )))
                    }
                }
            }
        };
        let name = a.name.clone().unwrap_or_else(|| match &a.column {
            Some(c) => format!("{}_{c}", format!("{:?}", a.op).to_lowercase()),
            None => "count".into(),
        });
        aggs.push(Agg {
            op: a.op,
            column: a.column.clone(),
            name,
            int,
            decimal,
        });
    }
    Ok((aggs, keys))
}

fn output_schema(config: &Config, aggs: &[Agg], keys: &[KeyKind]) -> Schema {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new("window_start", ts.clone(), false),
        Field::new("window_end", ts, false),
    ];
    for (name, kind) in config.group_by.iter().zip(keys) {
        let t = kind.data_type();
        fields.push(Field::new(name, t, true));
    }
    for a in aggs {
        fields.push(Field::new(&a.name, a.data_type(), true));
    }
    Schema::new(fields)
}

fn ints(array: &ArrayRef) -> Option<Vec<Option<i64>>> {
    macro_rules! read {
        ($t:ty) => {
            array
                .as_primitive::<$t>()
                .iter()
                .map(|v| v.map(i64::from))
                .collect()
        };
    }
    Some(match array.data_type() {
        DataType::Int8 => read!(Int8Type),
        DataType::Int16 => read!(Int16Type),
        DataType::Int32 => read!(Int32Type),
        DataType::Int64 => array.as_primitive::<Int64Type>().iter().collect(),
        DataType::UInt8 => read!(UInt8Type),
        DataType::UInt16 => read!(UInt16Type),
        DataType::UInt32 => read!(UInt32Type),
        _ => return None,
    })
}

fn floats(array: &ArrayRef) -> Option<Vec<Option<f64>>> {
    match array.data_type() {
        DataType::Float64 => Some(
            array
                .as_primitive::<weir_plugin_sdk::arrow_array::types::Float64Type>()
                .iter()
                .collect(),
        ),
        DataType::Float32 => Some(
            array
                .as_primitive::<weir_plugin_sdk::arrow_array::types::Float32Type>()
                .iter()
                .map(|v| v.map(f64::from))
                .collect(),
        ),
        _ => None,
    }
}

fn decimals(array: &ArrayRef) -> Option<Vec<Option<i128>>> {
    match array.data_type() {
        DataType::Decimal128(..) => Some(array.as_primitive::<Decimal128Type>().iter().collect()),
        _ => None,
    }
}

/// `sum / n` at `extra` more digits of scale, rounded half away from zero
/// (as PostgreSQL's and Spark's decimal division do).
fn exact_average(sum: i128, n: i64, extra: u8) -> Option<i128> {
    let scaled = sum.checked_mul(10i128.checked_pow(u32::from(extra))?)?;
    let n = i128::from(n);
    let (q, r) = (scaled / n, scaled % n);
    Some(if 2 * r.abs() >= n {
        q + scaled.signum()
    } else {
        q
    })
}

/// `a + b`, or an error past decimal128's 38 digits.
fn add_decimal(a: i128, b: i128) -> Result<i128> {
    const MAX: i128 = 10i128.pow(38) - 1;
    a.checked_add(b)
        .filter(|s| s.abs() <= MAX)
        .ok_or_else(|| Error::msg("aggregate: a decimal sum passed 38 digits"))
}

impl Acc {
    fn add(&mut self, values: &Values, row: usize) -> Result<()> {
        let int = |v: &Values| match v {
            Values::Int(v) => v[row],
            _ => None,
        };
        let float = |v: &Values| match v {
            Values::Float(v) => v[row],
            Values::Int(v) => v[row].map(|i| i as f64),
            Values::Rows | Values::Decimal(_) => None,
        };
        let decimal = |v: &Values| match v {
            Values::Decimal(v) => v[row],
            _ => None,
        };
        match self {
            Acc::Count(n) => {
                let present = match values {
                    Values::Rows => true,
                    Values::Int(v) => v[row].is_some(),
                    Values::Float(v) => v[row].is_some(),
                    Values::Decimal(v) => v[row].is_some(),
                };
                *n += i64::from(present);
            }
            Acc::SumInt(s) => {
                if let Some(v) = int(values) {
                    let sum = s.unwrap_or(0).checked_add(v).ok_or_else(|| {
                        Error::msg(
                            "aggregate: an int64 sum overflowed; sum a float64 column instead",
                        )
                    })?;
                    *s = Some(sum);
                }
            }
            Acc::SumFloat(s) => {
                if let Some(v) = float(values) {
                    *s = Some(Exact(s.map_or(0.0, |e| e.0) + v));
                }
            }
            Acc::MinInt(m) => {
                if let Some(v) = int(values) {
                    *m = Some(m.map_or(v, |m| m.min(v)));
                }
            }
            Acc::MaxInt(m) => {
                if let Some(v) = int(values) {
                    *m = Some(m.map_or(v, |m| m.max(v)));
                }
            }
            Acc::MinFloat(m) => {
                if let Some(v) = float(values) {
                    *m = Some(Exact(m.map_or(v, |m| m.0.min(v))));
                }
            }
            Acc::MaxFloat(m) => {
                if let Some(v) = float(values) {
                    *m = Some(Exact(m.map_or(v, |m| m.0.max(v))));
                }
            }
            Acc::Avg(sum, n) => {
                if let Some(v) = float(values) {
                    sum.0 += v;
                    *n += 1;
                }
            }
            Acc::SumDecimal(s) => {
                if let Some(v) = decimal(values) {
                    *s = Some(add_decimal(s.unwrap_or(0), v)?);
                }
            }
            Acc::AvgDecimal(sum, n) => {
                if let Some(v) = decimal(values) {
                    *sum = add_decimal(*sum, v)?;
                    *n += 1;
                }
            }
            Acc::MinDecimal(m) => {
                if let Some(v) = decimal(values) {
                    *m = Some(m.map_or(v, |m| m.min(v)));
                }
            }
            Acc::MaxDecimal(m) => {
                if let Some(v) = decimal(values) {
                    *m = Some(m.map_or(v, |m| m.max(v)));
                }
            }
        }
        Ok(())
    }

    /// The exact decimal result (unscaled, at the output's scale).
    fn decimal_value(&self) -> Option<i128> {
        match self {
            Acc::SumDecimal(v) | Acc::MinDecimal(v) | Acc::MaxDecimal(v) => *v,
            Acc::AvgDecimal(sum, n) => (*n > 0)
                .then(|| exact_average(*sum, *n, AVG_EXTRA_SCALE))
                .flatten(),
            _ => None,
        }
    }

    fn int_value(&self) -> Option<i64> {
        match self {
            Acc::Count(n) => Some(*n),
            Acc::SumInt(v) | Acc::MinInt(v) | Acc::MaxInt(v) => *v,
            _ => None,
        }
    }

    fn float_value(&self) -> Option<f64> {
        match self {
            Acc::SumFloat(v) | Acc::MinFloat(v) | Acc::MaxFloat(v) => v.map(|e| e.0),
            Acc::Avg(sum, n) => (*n > 0).then(|| sum.0 / *n as f64),
            _ => None,
        }
    }
}

impl Aggregate {
    fn ensure(&mut self, input: &Schema) -> Result<()> {
        if self.aggs.is_none() {
            let (aggs, keys) = resolve(input, &self.config)?;
            self.schema = Some(Arc::new(output_schema(&self.config, &aggs, &keys)));
            self.aggs = Some(aggs);
            self.keys = Some(keys);
        }
        Ok(())
    }

    /// Window starts containing `ts`, oldest first.
    fn windows(&self, ts: i64) -> impl Iterator<Item = i64> {
        let (size, slide) = (self.window_us, self.slide_us);
        let last = ts.div_euclid(slide) * slide;
        let first = last - ((size - 1) / slide) * slide;
        (0..)
            .map(move |k| first + k * slide)
            .take_while(move |s| *s <= last)
            .filter(move |s| ts < s + size)
    }

    /// Adds a batch's rows to the groups of their windows in `open`
    /// (loading a group the host store has, the first time). The rows
    /// late for a window already emitted, and how many had no time.
    fn fold(
        &self,
        rows: &Rows<'_>,
        before: Option<i64>,
        open: &mut BTreeMap<(i64, Vec<Key>), Vec<Acc>>,
    ) -> Result<(Vec<u32>, u64)> {
        let (mut late, mut untimed) = (Vec::new(), 0);
        for (row, ts) in rows.times.iter().enumerate() {
            let Some(ts) = *ts else {
                untimed += 1;
                continue;
            };
            let key: Vec<Key> = rows.keys.iter().map(|k| k[row].clone()).collect();
            let mut missed = false;
            for start in self.windows(ts) {
                if before.is_some_and(|w| start + self.window_us + self.lateness_us <= w) {
                    missed = true;
                    continue;
                }
                let accs = match open.entry((start, key.clone())) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let stored = match &self.host {
                            Some(host) => host.load(start, &key)?,
                            None => None,
                        };
                        e.insert(stored.unwrap_or_else(|| rows.aggs.iter().map(Agg::empty).collect()))
                    }
                };
                for (acc, v) in accs.iter_mut().zip(rows.values) {
                    acc.add(v, row)?;
                }
            }
            if missed {
                late.push(row as u32);
            }
        }
        Ok((late, untimed))
    }

    /// Emits, in (start, key) order, every window the watermark has
    /// closed (all of them at end of input).
    fn fire(&mut self, until: Option<i64>) -> Result<Vec<RecordBatch>> {
        let span = self.window_us + self.lateness_us;
        let done = |start: i64| until.is_none_or(|w| start + span <= w);
        if let Some(mut host) = self.host.take() {
            let mut batches = Vec::new();
            let taken = host.take(done, |groups| {
                batches.push(self.emit(groups)?);
                Ok(())
            });
            self.host = Some(host);
            taken?;
            return Ok(batches);
        }
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if !done(entry.key().0) {
                break;
            }
            let ((start, key), accs) = entry.remove_entry();
            closed.push((start, key, accs));
        }
        if closed.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![self.emit(closed)?])
    }

    /// One output batch of closed groups.
    fn emit(&self, closed: Vec<Group>) -> Result<RecordBatch> {
        let (Some(schema), Some(aggs), Some(kinds)) = (&self.schema, &self.aggs, &self.keys) else {
            return Err(Error::msg(
                "aggregate: windows to emit but no input seen (internal error)",
            ));
        };
        let starts: Vec<i64> = closed.iter().map(|c| c.0).collect();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(starts.clone()).with_timezone("UTC")),
            Arc::new(
                TimestampMicrosecondArray::from(
                    starts
                        .iter()
                        .map(|s| s + self.window_us)
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ];
        for (i, kind) in kinds.iter().enumerate() {
            let column = kind.column(closed.iter().map(|c| &c.1[i]))?;
            columns.push(column);
        }
        for (j, agg) in aggs.iter().enumerate() {
            let column: ArrayRef = match agg.data_type() {
                DataType::Int64 => Arc::new(Int64Array::from(
                    closed
                        .iter()
                        .map(|c| c.2[j].int_value())
                        .collect::<Vec<_>>(),
                )),
                DataType::Decimal128(p, s) => Arc::new(
                    Decimal128Array::from(
                        closed
                            .iter()
                            .map(|c| c.2[j].decimal_value())
                            .collect::<Vec<_>>(),
                    )
                    .with_precision_and_scale(p, s)?,
                ),
                _ => Arc::new(Float64Array::from(
                    closed
                        .iter()
                        .map(|c| c.2[j].float_value())
                        .collect::<Vec<_>>(),
                )),
            };
            columns.push(column);
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

impl Transform for Aggregate {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        if config.window_ms == 0 {
            return Err(Error::msg("aggregate: `window_ms` must be at least 1"));
        }
        let slide = config.slide_ms.unwrap_or(config.window_ms);
        if slide == 0 || slide > config.window_ms {
            return Err(Error::msg(
                "aggregate: `slide_ms` must be between 1 and `window_ms` (leave it out for tumbling windows)",
            ));
        }
        if config.aggregates.is_empty() {
            return Err(Error::msg(
                "aggregate: `aggregates` must name at least one, e.g. [{ op = \"count\" }]",
            ));
        }
        let ms = |v: u64| (v as i64).saturating_mul(1000);
        let host = (config.store == Store::Host).then(HostWindows::default);
        Ok(Aggregate {
            window_us: ms(config.window_ms),
            slide_us: ms(slide),
            lateness_us: ms(config.allowed_lateness_ms),
            config,
            aggs: None,
            keys: None,
            schema: None,
            open: BTreeMap::new(),
            host,
            watermark: None,
            late_rows: 0,
            untimed_rows: 0,
        })
    }

    fn ports(_config: &Config) -> Ports {
        Ports::new(&["in"], &["out", LATE])
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        let (aggs, keys) = resolve(input, config)?;
        Ok(Some(output_schema(config, &aggs, &keys)))
    }

    fn describe_ports(inputs: &[Option<Schema>], config: &Config) -> Result<Vec<Option<Schema>>> {
        match inputs.first() {
            Some(Some(input)) => Ok(vec![Self::describe(input, config)?, Some(input.clone())]),
            _ => Ok(vec![None, None]),
        }
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        self.ensure(&input.schema())?;
        let before = self.watermark;
        let mut outputs = Vec::new();
        let n = input.num_rows();
        if n > 0 {
            let times = weir_plugin_sdk::time::micros(&input.array(&self.config.time)?)?;
            let keys: Vec<Vec<Key>> = self
                .config
                .group_by
                .iter()
                .map(|k| keys_of(&input.array(k)?))
                .collect::<Result<_>>()?;
            let aggs = self.aggs.clone().unwrap_or_default();
            let values: Vec<Values> = aggs
                .iter()
                .map(|a| -> Result<Values> {
                    let Some(c) = &a.column else {
                        return Ok(Values::Rows);
                    };
                    let array = input.array(c)?;
                    if let Some(v) = decimals(&array) {
                        return Ok(Values::Decimal(v));
                    }
                    Ok(match (ints(&array), floats(&array)) {
                        (Some(v), _) => Values::Int(v),
                        (None, Some(v)) => Values::Float(v),
                        // count of a non-numeric column: its validity.
                        (None, None) => Values::Int(
                            (0..array.len())
                                .map(|i| array.is_valid(i).then_some(0))
                                .collect(),
                        ),
                    })
                })
                .collect::<Result<_>>()?;
            let rows = Rows {
                times: &times,
                keys: &keys,
                values: &values,
                aggs: &aggs,
            };
            // Memory: into the open windows. Host: into the groups this
            // batch touches, read from the store once, written back once.
            let mut open = match self.host {
                Some(_) => BTreeMap::new(),
                None => std::mem::take(&mut self.open),
            };
            let folded = self.fold(&rows, before, &mut open);
            match &mut self.host {
                // A failed batch writes nothing (and the host undoes a
                // failed call's writes anyway).
                Some(host) if folded.is_ok() => host.save(open)?,
                Some(_) => {}
                None => self.open = open,
            }
            let (late, untimed) = folded?;
            self.untimed_rows += untimed;
            if !late.is_empty() {
                self.late_rows += late.len() as u64;
                warn!(rows = late.len(), total = self.late_rows; "late rows sent to the `late` port");
                outputs.push(Output::keep_indices(late).to(1));
            }
        }
        if let Some(w) = input.watermark() {
            self.watermark = Some(self.watermark.map_or(w, |old| old.max(w)));
        }
        if self.watermark.is_some() {
            outputs.extend(self.fire(self.watermark)?.into_iter().map(Output::batch));
        }
        Ok(outputs)
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        info!(late_rows = self.late_rows, rows_without_time = self.untimed_rows;
            "windows flushed at end of input");
        self.fire(None)
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        let state = State {
            watermark: self.watermark,
            late_rows: self.late_rows,
            windows: self
                .open
                .iter()
                .map(|((s, k), a)| (*s, k.clone(), a.clone()))
                .collect(),
            aggs: self.aggs.clone(),
            keys: self.keys.clone(),
            in_store: self.host.as_ref().map_or_else(Vec::new, HostWindows::starts),
        };
        Ok(Some(serde_json::to_vec(&state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let state: State = serde_json::from_slice(state)?;
        self.watermark = state.watermark;
        self.late_rows = state.late_rows;
        let mut stored = HostWindows::new(state.in_store);
        match &mut self.host {
            Some(host) => {
                *host = stored;
                if !state.windows.is_empty() {
                    let moved = host.take_in(state.windows)?;
                    info!(groups = moved; "moved the open windows into the host state store");
                }
            }
            None => {
                // A `store = "host"` version ran before: its windows come
                // back into memory.
                let mut windows = state.windows;
                stored.take(
                    |_| true,
                    |groups| {
                        windows.extend(groups);
                        Ok(())
                    },
                )?;
                self.open = windows.into_iter().map(|(s, k, a)| ((s, k), a)).collect();
            }
        }
        if let (Some(aggs), Some(keys)) = (state.aggs, state.keys) {
            self.schema = Some(Arc::new(output_schema(&self.config, &aggs, &keys)));
            self.aggs = Some(aggs);
            self.keys = Some(keys);
        }
        Ok(())
    }
}

weir_plugin_sdk::export!(Aggregate);

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(window_ms: u64, slide_ms: Option<u64>) -> Aggregate {
        Aggregate::new(Config {
            time: "ts".into(),
            window_ms,
            slide_ms,
            group_by: vec![],
            aggregates: vec![AggConfig {
                op: Op::Count,
                column: None,
                name: None,
            }],
            allowed_lateness_ms: 0,
            store: Store::Memory,
        })
        .unwrap()
    }

    #[test]
    fn a_row_falls_in_every_sliding_window_that_contains_it() {
        let a = agg(10, Some(5));
        // 12 ms: windows [5, 15) and [10, 20).
        assert_eq!(a.windows(12_000).collect::<Vec<_>>(), vec![5_000, 10_000]);
        let t = agg(10, None);
        assert_eq!(t.windows(12_000).collect::<Vec<_>>(), vec![10_000]);
        assert_eq!(t.windows(-1).collect::<Vec<_>>(), vec![-10_000]);
    }

    #[test]
    fn a_decimal_average_rounds_half_away_from_zero_at_four_more_digits() {
        // (0.01 + 0.02) / 2 = 0.015 → 0.015000 at scale 2 + 4.
        assert_eq!(exact_average(3, 2, 4), Some(15_000));
        // 1 / 3 at scale 4 more: 0.3333.
        assert_eq!(exact_average(1, 3, 4), Some(3_333));
        // 2 / 3: 0.66666… rounds up to 0.6667; negative rounds away too.
        assert_eq!(exact_average(2, 3, 4), Some(6_667));
        assert_eq!(exact_average(-2, 3, 4), Some(-6_667));
        assert!(
            add_decimal(10i128.pow(38) - 1, 1).is_err(),
            "past 38 digits"
        );
    }

    #[test]
    fn state_keeps_floats_bit_exact() {
        let state = State {
            watermark: Some(7),
            late_rows: 2,
            windows: vec![(
                0,
                vec![Key::Str("a".into())],
                vec![Acc::SumFloat(Some(Exact(0.1 + 0.2)))],
            )],
            aggs: None,
            keys: None,
            in_store: vec![],
        };
        let back: State = serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        let Acc::SumFloat(Some(v)) = &back.windows[0].2[0] else {
            panic!()
        };
        assert_eq!(v.0.to_bits(), (0.1f64 + 0.2).to_bits());
    }
}
