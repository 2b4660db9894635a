//! `type = "sqlite"`: rows into a table of an SQLite database file —
//! embedded (SQLite is compiled into weir), nothing to set up.
//!
//! ```toml
//! [sinks.db]
//! type = "sqlite"
//! inputs = ["valid"]
//! path = "out/shop.db"
//! table = "orders"
//! mode = "upsert"        # or "append" (default)
//! key = ["order_id"]
//! ```
//!
//! Same modes (`append`, `upsert`, `replace`) and transaction scopes as the `postgres` sink: the table is
//! created from the input schema when missing (`create = true`), `upsert`
//! is `INSERT … ON CONFLICT (key) DO UPDATE` (the last row of a key wins),
//! and `transaction = "run"` (default) commits only when the run succeeds.
//! Types: integers and booleans as `INTEGER`, floats as `REAL`, strings as
//! `TEXT`, binary as `BLOB`, dates as `TEXT` `YYYY-MM-DD`, timestamps as
//! `TEXT` ISO 8601 (`…+00:00` when zoned), decimals as `TEXT` (exact),
//! lists, structs and maps as `TEXT` holding their JSON (SQLite's JSON
//! functions read it: `json_extract(customer, '$.country')`), a dictionary
//! column as its values' type.

use std::path::PathBuf;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use rusqlite::types::Value;
use rusqlite::Connection;
use serde::Deserialize;

use super::table::{Mode, OnReject, TransactionScope};
use super::{Sink, SinkContext};
use crate::{Error, Result};

/// A `type = "sqlite"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// `path`: the database file, relative to the manifest (created if
    /// missing).
    pub path: PathBuf,
    /// `table`: the target table.
    pub table: String,
    /// `create`: create the table from the input schema when it doesn't
    /// exist (default true).
    #[serde(default = "yes")]
    pub create: bool,
    /// `mode`: `"append"` (default) or `"upsert"`.
    #[serde(default)]
    pub mode: Mode,
    /// `key`: the columns identifying a row, for `upsert`.
    #[serde(default)]
    pub key: Vec<String>,
    /// `transaction`: `"run"` (default) or `"batch"`.
    #[serde(default)]
    pub transaction: TransactionScope,
    /// `on_error`: `"fail"` (default) or `"skip"` for a batch the database
    /// rejects (rolled back alone, logged, counted).
    #[serde(default)]
    pub on_error: OnReject,
}

fn yes() -> bool {
    true
}

pub(crate) use weir_core::paths::quote_ident as quote;

/// The SQLite column type for an Arrow type.
pub(crate) fn sqlite_type(t: &DataType) -> Option<&'static str> {
    if super::has_union(t) {
        return None;
    }
    Some(match t {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "INTEGER",
        DataType::Float32 | DataType::Float64 => "REAL",
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Date32
        | DataType::Timestamp(_, _)
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => "TEXT",
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BLOB",
        DataType::Dictionary(_, values) => return sqlite_type(values),
        t if t.is_nested() => "TEXT",
        _ => return None,
    })
}

struct SqliteSink {
    node: String,
    config: SqliteSinkConfig,
    path: PathBuf,
    connection: Connection,
    insert: Option<String>,
    in_run_transaction: bool,
    rows: u64,
    /// Batches (and their rows) rolled back under `on_error = "skip"`.
    skipped: (u64, u64),
    /// The input schema, when known before the first batch (a `replace`
    /// run without rows still replaces the table, with an empty one).
    input: Option<SchemaRef>,
}

impl SqliteSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        self.mode
            .check(&self.key, self.transaction, ctx.checkpointing)
            .map_err(|m| Error::sink(ctx.name, m))?;
        let path = ctx.base_dir.join(&self.path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let connection =
            Connection::open(&path).map_err(|e| Error::sink_from(ctx.name, path.display(), e))?;
        Ok(Box::new(SqliteSink {
            node: ctx.name.to_string(),
            config: self.clone(),
            path,
            connection,
            insert: None,
            in_run_transaction: false,
            rows: 0,
            skipped: (0, 0),
            input: ctx.schema.cloned(),
        }))
    }
}

/// Value `row` of `array` as SQLite stores it.
fn value(array: &ArrayRef, text: &ArrayFormatter<'_>, row: usize) -> Result<Value, String> {
    use arrow::datatypes::*;
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    macro_rules! int {
        ($t:ty) => {
            Value::Integer(array.as_primitive::<$t>().value(row) as i64)
        };
    }
    Ok(match array.data_type() {
        DataType::Boolean => Value::Integer(array.as_boolean().value(row) as i64),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            Value::Integer(i64::try_from(v).map_err(|_| format!("{v} is beyond SQLite's INTEGER"))?)
        }
        DataType::Float32 => Value::Real(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => Value::Real(array.as_primitive::<Float64Type>().value(row)),
        DataType::Binary => Value::Blob(array.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => Value::Blob(array.as_binary::<i64>().value(row).to_vec()),
        DataType::BinaryView => Value::Blob(array.as_binary_view().value(row).to_vec()),
        DataType::FixedSizeBinary(_) => {
            Value::Blob(array.as_fixed_size_binary().value(row).to_vec())
        }
        // Strings, dates, timestamps (ISO 8601) and decimals, as text.
        _ => Value::Text(text.value(row).to_string()),
    })
}

impl SqliteSink {
    fn fail(&self, what: &str, e: impl Into<weir_core::Cause>) -> Error {
        Error::sink_from(
            &self.node,
            format!(
                "{} table {}: {what}",
                self.path.display(),
                self.config.table
            ),
            e,
        )
    }

    /// Creates the table if asked; the INSERT for `schema`.
    fn plan_insert(&mut self, schema: &SchemaRef) -> Result<String> {
        let table = quote(&self.config.mode.loading_table(&self.config.table));
        let mut definitions = Vec::new();
        for field in schema.fields() {
            let t = sqlite_type(field.data_type()).ok_or_else(|| {
                self.fail(
                    "creating the table",
                    format!(
                        "column {:?} is {}, which SQLite can't hold",
                        field.name(),
                        field.data_type()
                    ),
                )
            })?;
            definitions.push(format!("{} {t}", quote(field.name())));
        }
        for key in &self.config.key {
            if schema.field_with_name(key).is_err() {
                return Err(self.fail("`key`", format!("column {key:?} is not in the input")));
            }
        }
        let keys: Vec<String> = self.config.key.iter().map(|k| quote(k)).collect();
        if !keys.is_empty() && self.config.mode != Mode::Append {
            definitions.push(format!("PRIMARY KEY ({})", keys.join(", ")));
        }
        if self.config.mode == Mode::Replace {
            // The new table lives in the run's transaction: it appears
            // only with the swap at commit.
            self.begin_run()?;
            self.connection
                .execute_batch(&format!(
                    "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({})",
                    definitions.join(", ")
                ))
                .map_err(|e| self.fail("creating the table", e))?;
        } else if self.config.create {
            self.connection
                .execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} ({})",
                    definitions.join(", ")
                ))
                .map_err(|e| self.fail("creating the table", e))?;
        }
        let columns: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
        let marks = vec!["?"; columns.len()].join(", ");
        let mut insert = format!(
            "INSERT INTO {table} ({}) VALUES ({marks})",
            columns.join(", ")
        );
        if self.config.mode == Mode::Upsert {
            let updates: Vec<String> = columns
                .iter()
                .filter(|c| !keys.contains(c))
                .map(|c| format!("{c} = excluded.{c}"))
                .collect();
            let action = if updates.is_empty() {
                "NOTHING".to_string()
            } else {
                format!("UPDATE SET {}", updates.join(", "))
            };
            insert.push_str(&format!(" ON CONFLICT ({}) DO {action}", keys.join(", ")));
        }
        Ok(insert)
    }

    fn insert(&mut self, batch: &RecordBatch) -> Result<()> {
        let insert = self.insert.clone().unwrap_or_default();
        let batch =
            &super::json_text::flat_values(batch).map_err(|e| self.fail("writing JSON", e))?;
        let options = FormatOptions::default();
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.fail("formatting", e))?;
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut statement = self
            .connection
            .prepare_cached(&insert)
            .map_err(|e| Error::sink_from(&self.node, &self.config.table, e))?;
        let mut values = Vec::with_capacity(batch.num_columns());
        for row in 0..batch.num_rows() {
            values.clear();
            for (i, column) in batch.columns().iter().enumerate() {
                values.push(value(column, &formatters[i], row).map_err(|e| {
                    Error::sink_from(
                        &self.node,
                        format!("column {:?}, row {row} of the batch", names[i]),
                        e,
                    )
                })?);
            }
            statement
                .execute(rusqlite::params_from_iter(values.iter()))
                .map_err(|e| {
                    Error::sink_from(
                        &self.node,
                        format!(
                            "{} table {}: row {row} of the batch",
                            self.path.display(),
                            self.config.table
                        ),
                        e,
                    )
                })?;
        }
        Ok(())
    }
}

impl SqliteSink {
    /// Opens the run's transaction if it isn't yet.
    fn begin_run(&mut self) -> Result<()> {
        if !self.in_run_transaction {
            self.connection
                .execute_batch("BEGIN")
                .map_err(|e| self.fail("starting the transaction", e))?;
            self.in_run_transaction = true;
        }
        Ok(())
    }

    /// `replace`: the new table takes the old one's place, in the run's
    /// transaction (committed next).
    fn swap_in(&mut self) -> Result<()> {
        if self.insert.is_none() {
            let Some(schema) = self.input.clone() else {
                return Ok(());
            };
            self.insert = Some(self.plan_insert(&schema)?);
        }
        let table = quote(&self.config.table);
        let new = quote(&self.config.mode.loading_table(&self.config.table));
        self.connection
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS {table}; ALTER TABLE {new} RENAME TO {table}"
            ))
            .map_err(|e| self.fail("replacing the table", e))
    }

    /// Inserts `batch` between `begin` and `end`, undoing it with `undo`
    /// when it fails.
    fn in_transaction(
        &mut self,
        begin: &str,
        end: &str,
        undo: &str,
        batch: &RecordBatch,
    ) -> Result<()> {
        self.connection
            .execute_batch(begin)
            .map_err(|e| self.fail("starting a transaction", e))?;
        let result = self.insert(batch).and_then(|()| {
            self.connection
                .execute_batch(end)
                .map_err(|e| self.fail("committing", e))
        });
        if result.is_err() {
            let _ = self.connection.execute_batch(undo);
        }
        result
    }
}

impl Sink for SqliteSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.insert.is_none() {
            let insert = self.plan_insert(batch.schema_ref())?;
            self.insert = Some(insert);
        }
        let result = match self.config.transaction {
            TransactionScope::Batch => self.in_transaction("BEGIN", "COMMIT", "ROLLBACK", batch),
            TransactionScope::Run => {
                self.begin_run()?;
                // A savepoint per batch: a rejected batch rolls back alone.
                self.in_transaction(
                    "SAVEPOINT weir_batch",
                    "RELEASE weir_batch",
                    "ROLLBACK TO weir_batch; RELEASE weir_batch",
                    batch,
                )
            }
        };
        match result {
            Ok(()) => self.rows += batch.num_rows() as u64,
            Err(e) if self.config.on_error == OnReject::Skip => {
                tracing::warn!(node = %self.node, rows = batch.num_rows(), error = %e,
                    "skipped a batch the database rejected (on_error = \"skip\")");
                self.skipped.0 += 1;
                self.skipped.1 += batch.num_rows() as u64;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.config.mode == Mode::Replace {
            self.swap_in()?;
        }
        if self.in_run_transaction {
            self.connection
                .execute_batch("COMMIT")
                .map_err(|e| self.fail("committing", e))?;
        }
        tracing::info!(node = %self.node, path = %self.path.display(), table = %self.config.table,
            rows = self.rows, skipped_batches = self.skipped.0, skipped_rows = self.skipped.1,
            "committed");
        Ok(())
    }

    fn abort(self: Box<Self>) {
        if self.in_run_transaction {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }

    fn prepare(&mut self) -> Result<weir_core::checkpoint::SinkState> {
        // Rows past the checkpoint's source positions must not stay
        // uncommitted: a crash would lose them. Committed here, they may
        // be loaded again after a crash (at-least-once; upsert absorbs it).
        if self.in_run_transaction {
            self.connection
                .execute_batch("COMMIT")
                .map_err(|e| self.fail("committing at a checkpoint", e))?;
            self.in_run_transaction = false;
        }
        Ok(weir_core::checkpoint::SinkState::default())
    }
}
