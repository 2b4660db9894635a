//! `join`: enriches a stream with a table — `INNER` or `LEFT` join on one
//! or more key columns.
//!
//! ```toml
//! [transforms.enriched]
//! plugin = "plugins/join.wasm"
//! inputs = { stream = "orders", table = "customers" }
//! config = { on = ["customer_id"], how = "left" }
//! ```
//!
//! - Ports: input `stream` (rows to enrich, any number of batches, endless
//!   or not) and input `table` (a bounded input: a file, a SQLite or
//!   PostgreSQL query); output `out`.
//! - `on`: the key columns, named alike on both sides, or
//!   `[{ stream = "customer_id", table = "id" }]` where they differ. Key
//!   types must be equal on both sides. A null key matches nothing (SQL).
//! - `how`: `"inner"` (default: stream rows without a match are dropped)
//!   or `"left"` (kept, the table's columns null).
//! - `columns`: the table columns to add (default: all but its keys);
//!   `prefix` is put before their names (a name both sides have is an
//!   error that says to set it).
//!
//! The table is read to its end before any stream row is joined: stream
//! batches that arrive earlier wait in the plugin (and in its checkpoint).
//! Output rows keep the stream's order; a stream row matching several
//! table rows comes out once per match, in the table's order — DuckDB's
//! and PostgreSQL's result for the same query, as a multiset. The table
//! lives in the plugin's memory, under the node's `limits.memory_mb`.

mod index;
mod interval;
mod state;

use std::sync::Arc;

use arrow_select::concat::concat_batches;
use arrow_select::take::take;
use weir_plugin_sdk::arrow_array::UInt32Array;
use weir_plugin_sdk::arrow_schema::FieldRef;
use weir_plugin_sdk::prelude::*;

use index::Index;

/// Input port indexes, as [`Join::ports`] declares them.
const STREAM: usize = 0;
const TABLE: usize = 1;

/// One key: the stream's column and the table's.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Key {
    Same(String),
    Pair { stream: String, table: String },
}

impl Key {
    fn stream(&self) -> &str {
        match self {
            Key::Same(c) => c,
            Key::Pair { stream, .. } => stream,
        }
    }
    fn table(&self) -> &str {
        match self {
            Key::Same(c) => c,
            Key::Pair { table, .. } => table,
        }
    }
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum How {
    #[default]
    Inner,
    Left,
}

/// The `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    on: Vec<Key>,
    #[serde(default)]
    how: How,
    columns: Option<Vec<String>>,
    #[serde(default)]
    prefix: String,
    /// An interval join of two streams (ports `left` and `right`).
    within: Option<interval::Within>,
}

/// What the join adds from the table: each column's index in the table
/// and its field in the output.
struct Plan {
    /// The stream schema it was made for.
    stream: SchemaRef,
    added: Vec<(usize, FieldRef)>,
    output: SchemaRef,
}

/// The output schema and the table columns it adds, checked.
fn plan(stream: &Schema, table: &Schema, config: &Config) -> Result<Plan> {
    plan_sides(stream, table, config, "stream", "table")
}

/// [`plan`] for any two sides, named `a` and `b` in errors (the keys'
/// `stream` is side `a`, `table` side `b`).
fn plan_sides(stream: &Schema, table: &Schema, config: &Config, a: &str, b: &str) -> Result<Plan> {
    ensure!(!config.on.is_empty(), "join: `on` names no key column");
    for key in &config.on {
        let s = stream.field_with_name(key.stream()).map_err(|_| {
            Error::msg(format!(
                "join: key {:?} is not a column of the {a} input",
                key.stream()
            ))
        })?;
        let t = table.field_with_name(key.table()).map_err(|_| {
            Error::msg(format!(
                "join: key {:?} is not a column of the {b} input",
                key.table()
            ))
        })?;
        ensure!(
            s.data_type() == t.data_type(),
            "join: key {:?} is {} in the {a} input but {:?} is {} in the {b} input; cast one \
             side (a `sql` node before the join) so they match",
            key.stream(),
            s.data_type(),
            key.table(),
            t.data_type()
        );
    }
    let keys: Vec<&str> = config.on.iter().map(Key::table).collect();
    let names: Vec<String> = match &config.columns {
        Some(columns) => columns.clone(),
        None => table
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !keys.contains(&n.as_str()))
            .collect(),
    };
    let mut fields: Vec<FieldRef> = stream.fields().iter().cloned().collect();
    let mut added = Vec::new();
    for name in names {
        let index = table
            .index_of(&name)
            .map_err(|_| Error::msg(format!("join: `columns` names {name:?}, not a {b} column")))?;
        let out = format!("{}{name}", config.prefix);
        ensure!(
            stream.field_with_name(&out).is_err(),
            "join: the {a} input already has a column {out:?}; set `prefix` (e.g. prefix = \
             \"customer_\") or list the {b} `columns` to add"
        );
        let field = table.field(index).clone().with_name(out);
        // A left join's unmatched rows are null on the table's side.
        let nullable = field.is_nullable() || config.how == How::Left;
        let field = Arc::new(field.with_nullable(nullable));
        fields.push(field.clone());
        added.push((index, field));
    }
    Ok(Plan {
        stream: Arc::new(stream.clone()),
        added,
        output: Arc::new(Schema::new_with_metadata(fields, stream.metadata().clone())),
    })
}

struct Join {
    config: Config,
    /// Table rows so far (until the table port ends).
    loading: Vec<RecordBatch>,
    /// Stream batches that came before the table was complete.
    waiting: Vec<RecordBatch>,
    index: Option<Index>,
    plan: Option<Plan>,
    /// With `within`: the interval join of two streams instead.
    interval: Option<interval::IntervalJoin>,
}

impl Join {
    fn table_keys(&self, table: &Schema) -> Result<Vec<usize>> {
        self.config
            .on
            .iter()
            .map(|k| Ok(table.index_of(k.table())?))
            .collect()
    }

    /// The table port ended: index it, then join what waited. A table
    /// that ends again with no rows (a run resumed from a checkpoint after
    /// its source had finished) keeps the table it had.
    fn complete(&mut self, schema: SchemaRef) -> Result<Vec<Output>> {
        if self.index.is_some() && self.loading.is_empty() {
            return Ok(Vec::new());
        }
        let table = concat_batches(&schema, &self.loading)?;
        self.loading.clear();
        let keys = self.table_keys(&schema)?;
        let index = Index::build(table, &keys)?;
        info!(rows = index.table.num_rows(), keys = index.keys(),
            waiting_batches = self.waiting.len(); "table loaded");
        if let Some(first) = self.waiting.first() {
            self.plan = Some(plan(&first.schema(), &index.table.schema(), &self.config)?);
        }
        self.index = Some(index);
        let waiting = std::mem::take(&mut self.waiting);
        let mut out = Vec::new();
        for batch in waiting {
            let keys = self.stream_keys(&batch.schema(), |i| Ok(batch.column(i).clone()))?;
            out.extend(self.join(keys, batch.num_rows(), || Ok(batch.clone()), false)?);
        }
        Ok(out)
    }

    /// The stream's key columns, fetched by index.
    fn stream_keys(
        &self,
        schema: &Schema,
        column: impl Fn(usize) -> Result<ArrayRef>,
    ) -> Result<Vec<ArrayRef>> {
        self.config
            .on
            .iter()
            .map(|k| column(schema.index_of(k.stream())?))
            .collect()
    }

    /// Joins one stream batch of `n` rows whose key columns are `columns`;
    /// `stream` fetches the whole batch when the output needs it.
    /// `derive`: the output may be derived from the input batch (only the
    /// table's columns cross back).
    fn join(
        &mut self,
        columns: Vec<ArrayRef>,
        n: usize,
        stream: impl FnOnce() -> Result<RecordBatch>,
        derive: bool,
    ) -> Result<Vec<Output>> {
        let Some(index) = self.index.as_ref() else {
            bail!("join: a stream batch before the table");
        };
        let Some(plan) = self.plan.as_ref() else {
            bail!("join: a stream batch before its schema was planned");
        };
        let keys = index.probe(&columns)?;
        let left = self.config.how == How::Left;
        if !index.fans_out && derive {
            // At most one match per row: the table's columns, as long as
            // the input, and a selection for an inner join.
            let mut matched = Vec::with_capacity(n);
            let mut kept = Vec::with_capacity(n);
            for row in 0..n {
                let m = index.matches(&keys, row).first().copied();
                if m.is_some() || left {
                    kept.push(row as u32);
                }
                matched.push(m);
            }
            let rows = UInt32Array::from(matched);
            let mut out = match kept.len() < n {
                true => Output::keep_indices(kept),
                false => Output::pass(),
            };
            for (i, field) in &plan.added {
                let column = take(index.table.column(*i), &rows, None)?;
                out = out.with_column(field.name().clone(), column);
            }
            return Ok(vec![out]);
        }
        let mut from_stream = Vec::with_capacity(n);
        let mut from_table = Vec::with_capacity(n);
        for row in 0..n {
            let matches = index.matches(&keys, row);
            for &m in matches {
                from_stream.push(row as u32);
                from_table.push(Some(m));
            }
            if matches.is_empty() && left {
                from_stream.push(row as u32);
                from_table.push(None);
            }
        }
        let from_stream = UInt32Array::from(from_stream);
        let from_table = UInt32Array::from(from_table);
        let mut out: Vec<ArrayRef> = stream()?
            .columns()
            .iter()
            .map(|c| take(c, &from_stream, None))
            .collect::<std::result::Result<_, _>>()?;
        for (i, _) in &plan.added {
            out.push(take(index.table.column(*i), &from_table, None)?);
        }
        Ok(vec![Output::batch(RecordBatch::try_new(
            plan.output.clone(),
            out,
        )?)])
    }
}

impl Transform for Join {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        ensure!(!config.on.is_empty(), "join: `on` names no key column");
        let interval = match &config.within {
            Some(within) => {
                ensure!(
                    config.how == How::Inner,
                    "join: an interval join (`within`) is inner: remove `how`"
                );
                Some(interval::IntervalJoin::new(within.clone(), &config.on))
            }
            None => None,
        };
        Ok(Join {
            config,
            loading: Vec::new(),
            waiting: Vec::new(),
            index: None,
            plan: None,
            interval,
        })
    }

    fn ports(config: &Config) -> Ports {
        match config.within {
            Some(_) => Ports::new(&["left", "right"], &["out"]),
            None => Ports::new(&["stream", "table"], &["out"]),
        }
    }

    fn describe_ports(inputs: &[Option<Schema>], config: &Config) -> Result<Vec<Option<Schema>>> {
        if let (Some(within), [Some(left), Some(right)]) = (&config.within, inputs) {
            let out = interval::output(left, right, config, within)?;
            return Ok(vec![Some(out.as_ref().clone())]);
        }
        match inputs {
            [Some(stream), Some(table)] => Ok(vec![Some(
                plan(stream, table, config)?.output.as_ref().clone(),
            )]),
            _ => Ok(vec![None]),
        }
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        self.process_port(STREAM, input)
    }

    fn process_port(&mut self, port: usize, input: &Batch<'_>) -> Result<Vec<Output>> {
        if let Some(join) = self.interval.as_mut() {
            if input.port_ended() {
                return Ok(Vec::new());
            }
            ensure!(port <= interval::RIGHT, "join: no input port {port}");
            return join.process(port, input.record_batch()?, input.watermark(), &self.config);
        }
        match port {
            TABLE if input.port_ended() => self.complete(input.schema()),
            // Rows after the table's end (a resumed source re-reading)
            // make a new version, swapped in when the port ends again.
            TABLE => {
                if input.num_rows() > 0 {
                    self.loading.push(input.record_batch()?);
                }
                Ok(Vec::new())
            }
            STREAM if self.index.is_none() => {
                if input.num_rows() > 0 {
                    self.waiting.push(input.record_batch()?);
                }
                Ok(Vec::new())
            }
            STREAM if input.num_rows() == 0 => Ok(Vec::new()),
            STREAM => {
                let schema = input.schema();
                let planned = self.plan.as_ref().map(|p| &p.stream);
                if planned.is_none_or(|p| p.fields() != schema.fields()) {
                    let table = self.index.as_ref().map(|i| i.table.schema());
                    let table = table.ok_or_else(|| Error::msg("join: no table"))?;
                    self.plan = Some(plan(&schema, &table, &self.config)?);
                }
                let keys = self.stream_keys(&schema, |i| input.array_at(i))?;
                self.join(keys, input.num_rows(), || input.record_batch(), true)
            }
            _ => bail!("join: no input port {port}"),
        }
    }

    /// The end of every input. Stream rows still waiting for a table that
    /// never ended (a run stopped without checkpoints) can't be joined:
    /// an error, never a silent loss.
    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        let waiting: usize = self.waiting.iter().map(RecordBatch::num_rows).sum();
        ensure!(
            waiting == 0,
            "join: {waiting} stream rows were waiting for the table, whose input never ended; \
             they were not joined (run with checkpoints to resume instead)"
        );
        Ok(Vec::new())
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        state::save(self).map(Some)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        state::load(self, bytes)
    }
}

weir_plugin_sdk::export!(Join);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_plugin_sdk::arrow_array::{Int32Array, StringArray};

    use super::Int64Array;

    fn config(toml: &str) -> Config {
        weir_plugin_sdk::serde_json::from_str(toml).unwrap()
    }

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn a_left_join_adds_the_table_columns_but_its_keys_as_nullable() {
        let stream = schema(&[("id", DataType::Int64), ("customer_id", DataType::Int64)]);
        let mut table = schema(&[("cid", DataType::Int64), ("name", DataType::Utf8)]);
        table = Schema::new(
            table
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(false))
                .collect::<Vec<_>>(),
        );
        let c = config(r#"{"on": [{"stream": "customer_id", "table": "cid"}], "how": "left"}"#);
        let p = plan(&stream, &table, &c).unwrap();
        let names: Vec<&str> = p
            .output
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["id", "customer_id", "name"]);
        assert!(p.output.field(2).is_nullable());
    }

    #[test]
    fn mismatched_key_types_and_clashing_names_are_refused_with_the_fix() {
        let stream = schema(&[("id", DataType::Int64), ("name", DataType::Utf8)]);
        let table = schema(&[("id", DataType::Int32), ("name", DataType::Utf8)]);
        let e = plan(&stream, &table, &config(r#"{"on": ["id"]}"#))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("Int64 in the stream input but"),
            "{e}"
        );
        let table = schema(&[("id", DataType::Int64), ("name", DataType::Utf8)]);
        let e = plan(&stream, &table, &config(r#"{"on": ["id"]}"#))
            .err()
            .unwrap();
        assert!(e.to_string().contains("set `prefix`"), "{e}");
        assert!(plan(
            &stream,
            &table,
            &config(r#"{"on": ["id"], "prefix": "t_"}"#)
        )
        .is_ok());
    }

    #[test]
    fn the_index_skips_null_keys_and_keeps_every_row_of_a_repeated_key() {
        let table = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(2), Some(1)])) as ArrayRef,
            ),
            (
                "tier",
                Arc::new(Int32Array::from(vec![1, 2, 3, 4])) as ArrayRef,
            ),
        ])
        .unwrap();
        let index = Index::build(table, &[0]).unwrap();
        assert!(index.fans_out);
        let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]))];
        let rows = index.probe(&keys).unwrap();
        assert_eq!(index.matches(&rows, 0), [0, 3]);
        assert!(index.matches(&rows, 1).is_empty(), "null matches nothing");
        assert!(index.matches(&rows, 2).is_empty());
    }

    #[test]
    fn stream_rows_still_waiting_for_the_table_at_the_end_are_an_error() {
        let mut join = Join::new(config(r#"{"on": ["id"]}"#)).unwrap();
        assert!(join.finish().unwrap().is_empty(), "nothing waiting: fine");
        join.waiting.push(
            RecordBatch::try_from_iter([(
                "id",
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
            )])
            .unwrap(),
        );
        let e = join.finish().unwrap_err().to_string();
        assert!(e.contains("2 stream rows were waiting"), "{e}");
    }

    #[test]
    fn two_key_columns_match_on_both() {
        let table = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 1, 2])) as ArrayRef),
            (
                "region",
                Arc::new(StringArray::from(vec!["eu", "us", "eu"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let index = Index::build(table, &[0, 1]).unwrap();
        assert!(!index.fans_out);
        let keys: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2, 1])),
            Arc::new(StringArray::from(vec![Some("us"), Some("us"), None])),
        ];
        let probe = index.probe(&keys).unwrap();
        assert_eq!(index.matches(&probe, 0), [1]);
        assert!(index.matches(&probe, 1).is_empty());
        assert!(
            index.matches(&probe, 2).is_empty(),
            "a null in any key matches nothing"
        );
    }
}
