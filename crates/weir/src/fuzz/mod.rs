//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay
//! test: each takes arbitrary bytes, drives one of weir's decoders the way
//! a run does, and must return without panicking. An error is a fine
//! answer; a panic (or, under `WEIR_FUZZ_STRICT`, a reader panic that
//! weir contained) is a finding. See `docs/fuzzing.md`.
//!
//! Behind the `fuzzing` feature: not part of weir's API.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::bindings::types as wit;
use crate::plugin::Rows;

mod wit_arrow;
use crate::source::{SourceConfig, SourceContext};
pub use wit_arrow::wit_arrow;

/// Batches read per input at most: a lying file can claim billions of
/// rows; a fuzz iteration must stay fast.
const MAX_BATCHES: usize = 64;

/// A scratch directory per process (and per thread: the replay test runs
/// targets in parallel), reused across iterations.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "weir-fuzz-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Under `WEIR_FUZZ_STRICT=1` a reader panic that weir turned into an
/// error is still reported, to find (and report upstream) the panics weir
/// only survives.
fn check_contained(message: &str) {
    if std::env::var_os("WEIR_FUZZ_STRICT").is_some()
        && message.contains("failed on malformed data")
    {
        panic!("contained reader panic: {message}");
    }
}

/// The three `on_bad_record` policies, picked by one input byte.
fn policy(byte: u8) -> &'static str {
    ["fail", "skip", "dead_letter"][byte as usize % 3]
}

/// Parses `[sources.src]` from `table` (with `path` appended), builds the
/// source, and reads every batch and bad record, as a run would.
fn read_source(table: &str, file: &Path) {
    let toml = format!("{table}\npath = {:?}\n", file.display().to_string());
    let config: SourceConfig = match toml::from_str(&toml) {
        Ok(config) => config,
        Err(e) => panic!("the fuzz harness wrote a bad source table: {e}\n{toml}"),
    };
    let ctx = SourceContext {
        name: "src",
        base_dir: file.parent().unwrap_or(Path::new(".")),
        batch_size: 64,
    };
    let mut source = match config.build(ctx) {
        Ok(source) => source,
        Err(e) => return check_contained(&e.to_string()),
    };
    let schema = source.schema();
    for _ in 0..MAX_BATCHES {
        match source.next_batch() {
            Ok(Some(batch)) => assert_eq!(
                batch.schema().fields(),
                schema.fields(),
                "a source's batch differs from the schema it announced"
            ),
            Ok(None) => break,
            Err(e) => return check_contained(&e.to_string()),
        }
        for bad in source.bad_records() {
            check_contained(&bad.error);
        }
    }
}

/// Writes `bytes` to the scratch file `name` and reads it as `table` says.
fn read_file(name: &str, table: &str, bytes: &[u8]) {
    let file = scratch().join(name);
    if std::fs::write(&file, bytes).is_ok() {
        read_source(table, &file);
    }
}

/// Splits off the first byte (options) from the rest (the file).
fn options(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}

/// A manifest: parsed, then validated as a graph (no plugin is loaded).
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = scratch().join("pipeline.toml");
    if let Ok(manifest) = crate::manifest::Manifest::parse(text, &path) {
        let _ = crate::graph::Graph::new(manifest);
    }
}

/// A CSV file, under a dialect and policy picked by the first byte.
pub fn csv(data: &[u8]) {
    let (o, file) = options(data);
    let mut table = format!(
        "type = \"csv\"\non_bad_record = \"{}\"\nheader = {}\ndelimiter = {:?}\n",
        policy(o),
        o & 0x04 == 0,
        [',', ';'][(o >> 3) as usize & 1].to_string(),
    );
    if o & 0x10 != 0 {
        table.push_str(
            "schema = [{ name = \"id\", type = \"int64\" }, { name = \"name\", type = \"utf8\" }, \
             { name = \"amount\", type = \"float64\", nullable = false }, \
             { name = \"ts\", type = \"timestamp\" }, { name = \"ok\", type = \"boolean\" }]\n",
        );
    }
    if o & 0x20 != 0 {
        table.push_str("null_values = [\"\", \"NA\"]\ncomment = \"#\"\nescape = \"\\\\\"\n");
    }
    if o & 0x40 != 0 {
        table.push_str("encoding = \"latin-1\"\ndecimal = \",\"\nskip_rows = 1\n");
    }
    read_file("data.csv", &table, file);
}

/// An NDJSON file, inferred or declared, under a policy from the first byte.
pub fn ndjson(data: &[u8]) {
    let (o, file) = options(data);
    let mut table = format!("type = \"ndjson\"\non_bad_record = \"{}\"\n", policy(o));
    if o & 0x04 != 0 {
        table.push_str(
            "schema = [{ name = \"id\", type = \"int64\" }, { name = \"name\", type = \"utf8\" }, \
             { name = \"ts\", type = \"timestamp\" }]\n",
        );
    }
    read_file("data.ndjson", &table, file);
}

/// A Parquet file, under a policy from the first byte.
pub fn parquet(data: &[u8]) {
    let (o, file) = options(data);
    let table = format!("type = \"parquet\"\non_bad_record = \"{}\"\n", policy(o));
    read_file("data.parquet", &table, file);
}

/// An Arrow IPC file or stream, under a policy from the first byte.
pub fn ipc(data: &[u8]) {
    let (o, file) = options(data);
    let table = format!("type = \"ipc\"\non_bad_record = \"{}\"\n", policy(o));
    read_file("data.arrow", &table, file);
}

/// The input batch a fake guest's output is relative to.
fn input(rows: usize) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let names: ArrayRef = Arc::new(StringArray::from_iter(
        (0..rows).map(|i| (i % 3 != 0).then(|| format!("n{i}"))),
    ));
    let ts: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from_iter_values((0..rows as i64).map(|i| i * 1_000_000))
            .with_timezone("UTC"),
    );
    RecordBatch::try_from_iter([("id", ids), ("name", names), ("ts", ts)])
        .expect("a fixed, valid batch")
}

/// What a fake guest returns: arbitrary `output` values (typed columns,
/// derived outputs, IPC bytes), checked at the plugin boundary as
/// [`crate::plugin`] checks a real guest's, against the schema its first
/// output fixed.
pub fn plugin_output(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let rows = u.int_in_range(0..=40u8).unwrap_or(0) as usize;
    let input = input(rows);
    let Ok(outputs) = u.arbitrary_iter::<FakeOutput>().and_then(|i| {
        i.take(8)
            .collect::<arbitrary::Result<Vec<_>>>()
            .map_err(|_| arbitrary::Error::NotEnoughData)
    }) else {
        return;
    };
    let mut fixed: Option<SchemaRef> = None;
    let from_process = u.arbitrary::<bool>().unwrap_or(true);
    // Half the time the input carries an upstream plugin's pending
    // selection, as it does behind a filter.
    let input = match u.arbitrary::<u64>() {
        Ok(bits) if bits % 2 == 1 => Rows::selected(
            input,
            BooleanBuffer::from_iter((0..rows).map(|i| bits >> (1 + i % 63) & 1 == 1)),
        ),
        _ => Rows::from(input),
    };
    for output in outputs {
        let given = from_process.then_some(&input);
        let Ok(batches) = crate::plugin::output::assemble(given, output.0) else {
            continue;
        };
        for batch in batches {
            if crate::plugin::output::sound(&batch).is_err() {
                continue;
            }
            match &fixed {
                None => fixed = Some(batch.schema()),
                Some(schema) => {
                    if crate::plugin::output::conforms(&batch, schema).is_ok() {
                        let stamped = crate::plugin::output::with_schema(batch.clone(), schema)
                            .expect("conforming rows take their schema");
                        stamped.to_batch().expect("stamped rows materialize");
                    }
                }
            }
            let whole = batch.to_batch().expect("sound rows materialize");
            assert_eq!(whole.num_rows(), batch.num_rows());
        }
    }
}

/// An expression a guest hands the `compute` import (untrusted text, up to
/// its length limit): parsed and evaluated over a batch of ints, floats
/// with NaN and nulls, strings and timestamps, filtered half the time, as
/// both a predicate and a column. Errors are fine; a panic is not, and an
/// answer must have a bit or a value per row.
pub fn compute(data: &[u8]) {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let rows = (flags % 41) as usize;
    let mut batch = input(rows);
    let floats: ArrayRef =
        Arc::new(arrow::array::Float64Array::from_iter((0..rows).map(|i| {
            [Some(1.5), None, Some(f64::NAN), Some(-0.0), Some(1e300)][i % 5]
        })));
    let mut columns = batch.columns().to_vec();
    columns.push(floats);
    let mut fields: Vec<arrow::datatypes::FieldRef> = batch.schema().fields().to_vec();
    fields.push(Arc::new(arrow::datatypes::Field::new(
        "x",
        arrow::datatypes::DataType::Float64,
        true,
    )));
    batch = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .expect("a fixed, valid batch");
    let rows_in = match flags & 0x80 {
        0 => Rows::from(batch),
        _ => Rows::selected(
            batch,
            BooleanBuffer::from_iter((0..rows).map(|i| i % 3 != 1)),
        ),
    };
    if let Ok(mask) = crate::plugin::compute::matches(&rows_in, &text) {
        assert_eq!(mask.len(), rows_in.num_rows().div_ceil(8));
    }
    if let Ok(column) = crate::plugin::compute::evaluate(&rows_in, &text) {
        assert_eq!(column.len(), rows_in.num_rows());
    }
}

/// A checkpoint directory's `meta.json` (and a state file): read back as a
/// resume does, then each source position is handed to a file source's
/// `seek` and each sink state to a file sink's `resume`.
pub fn checkpoint(data: &[u8]) {
    let root = scratch().join("checkpoints");
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("chk-0000000007");
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("meta.json"), data).is_err()
        || std::fs::write(dir.join("0.state"), b"state").is_err()
    {
        return;
    }
    let Ok(Some(loaded)) = crate::checkpoint::latest(&root) else {
        return;
    };
    let csv = scratch().join("resume.csv");
    if std::fs::write(&csv, "id,name\n1,a\n2,b\n3,c\n").is_err() {
        return;
    }
    for state in loaded.nodes.values() {
        match state {
            crate::checkpoint::NodeState::Source {
                position: Some(position),
                ..
            } => seek_csv(&csv, position),
            crate::checkpoint::NodeState::Sink(sink) => resume_file_sink(sink),
            _ => {}
        }
    }
}

fn seek_csv(file: &Path, position: &serde_json::Value) {
    let Ok(config) = toml::from_str::<SourceConfig>(&format!(
        "type = \"csv\"\npath = {:?}\n",
        file.display().to_string()
    )) else {
        return;
    };
    let ctx = SourceContext {
        name: "src",
        base_dir: Path::new("."),
        batch_size: 2,
    };
    if let Ok(mut source) = config.build(ctx) {
        if source.seek(position).is_ok() {
            while let Ok(Some(_)) = source.next_batch() {}
        }
    }
}

fn resume_file_sink(state: &crate::checkpoint::SinkState) {
    let out = scratch().join("out");
    let _ = std::fs::create_dir_all(&out);
    let Ok(config) = toml::from_str::<crate::sink::SinkConfig>(&format!(
        "type = \"ndjson\"\npath = {:?}\n",
        out.join("rows.ndjson").display().to_string()
    )) else {
        return;
    };
    let ctx = crate::sink::SinkContext {
        name: "out",
        base_dir: &out,
        schema: None,
        checkpointing: true,
    };
    if let Ok(mut sink) = config.build(ctx) {
        let _ = sink.resume(state);
        sink.abort();
    }
}

/// An arbitrary WIT `output`, built from fuzz bytes: the shapes a guest
/// can send, including the lying ones (lengths, offsets, bitmaps, types
/// that don't match their values).
struct FakeOutput(wit::Output);

impl<'a> Arbitrary<'a> for FakeOutput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(FakeOutput(match u.int_in_range(0..=2u8)? {
            0 => wit::Output::Derived(wit::Derived {
                selection: match u.int_in_range(0..=2u8)? {
                    0 => None,
                    1 => Some(wit::Selection::Indices(u.arbitrary()?)),
                    _ => Some(wit::Selection::Mask(u.arbitrary()?)),
                },
                columns: columns(u)?,
                drop: names(u)?,
                rename: names(u)?.into_iter().zip(names(u)?).collect(),
                project: u.arbitrary::<bool>()?.then(|| names(u)).transpose()?,
            }),
            1 => wit::Output::Batch(wit::NewBatch {
                num_rows: u.int_in_range(0..=64)?,
                columns: columns(u)?,
            }),
            _ => wit::Output::Ipc(u.arbitrary()?),
        }))
    }
}

/// Names drawn from a small set (so drops, renames and projections hit
/// real columns) plus arbitrary strings.
fn names(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<String>> {
    let n = u.int_in_range(0..=3u8)?;
    (0..n).map(|_| name(u)).collect()
}

fn name(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => "id".into(),
        1 => "name".into(),
        2 => "ts".into(),
        3 => "new".into(),
        4 => String::new(),
        _ => u.arbitrary()?,
    })
}

fn columns(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<wit::NamedColumn>> {
    let n = u.int_in_range(0..=3u8)?;
    (0..n)
        .map(|_| {
            Ok(wit::NamedColumn {
                name: name(u)?,
                column: column(u)?,
            })
        })
        .collect()
}

fn column(u: &mut Unstructured<'_>) -> arbitrary::Result<wit::Column> {
    Ok(wit::Column {
        data_type: data_type(u)?,
        values: values(u)?,
        validity: u.arbitrary()?,
    })
}

fn data_type(u: &mut Unstructured<'_>) -> arbitrary::Result<wit::DataType> {
    use wit::DataType as T;
    Ok(match u.int_in_range(0..=14u8)? {
        0 => T::Boolean,
        1 => T::Int8,
        2 => T::Int16,
        3 => T::Int32,
        4 => T::Int64,
        5 => T::Uint8,
        6 => T::Uint16,
        7 => T::Uint32,
        8 => T::Uint64,
        9 => T::Float32,
        10 => T::Float64,
        11 => T::Utf8,
        12 => T::Binary,
        13 => T::Date32,
        _ => T::Timestamp(wit::TimestampType {
            unit: match u.int_in_range(0..=3u8)? {
                0 => wit::TimeUnit::Second,
                1 => wit::TimeUnit::Millisecond,
                2 => wit::TimeUnit::Microsecond,
                _ => wit::TimeUnit::Nanosecond,
            },
            timezone: match u.int_in_range(0..=3u8)? {
                0 => None,
                1 => Some("UTC".into()),
                2 => Some("+05:30".into()),
                _ => Some(u.arbitrary()?),
            },
        }),
    })
}

fn values(u: &mut Unstructured<'_>) -> arbitrary::Result<wit::Values> {
    use wit::Values as V;
    Ok(match u.int_in_range(0..=11u8)? {
        0 => V::Bool(u.arbitrary()?),
        1 => V::S8(u.arbitrary()?),
        2 => V::S16(u.arbitrary()?),
        3 => V::S32(u.arbitrary()?),
        4 => V::S64(u.arbitrary()?),
        5 => V::U8(u.arbitrary()?),
        6 => V::U16(u.arbitrary()?),
        7 => V::U32(u.arbitrary()?),
        8 => V::U64(u.arbitrary()?),
        9 => V::F32(u.arbitrary()?),
        10 => V::F64(u.arbitrary()?),
        _ => V::Var(wit::VarData {
            offsets: u.arbitrary()?,
            data: u.arbitrary()?,
        }),
    })
}

/// A fuzz target: arbitrary bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and `scripts/fuzz`.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("csv", csv),
    ("ndjson", ndjson),
    ("parquet", parquet),
    ("ipc", ipc),
    ("plugin_output", plugin_output),
    ("compute", compute),
    ("checkpoint", checkpoint),
    ("wit_arrow", wit_arrow),
];
