//! `type = "sqlite"`: a table's or query's rows from an SQLite database
//! file, in batches.
//!
//! ```toml
//! [sources.orders]
//! type = "sqlite"
//! path = "shop.db"
//! table = "orders"                 # or: query = "SELECT … FROM …"
//! ```
//!
//! Column types follow SQLite's affinity rules on the declared type:
//! `…INT…` → int64, `…CHAR…`/`…CLOB…`/`…TEXT…` → utf8, `…BLOB…` → binary,
//! `…REAL…`/`…FLOA…`/`…DOUB…` → float64, `BOOL…` → boolean; anything else
//! (`NUMERIC`, `DATE`, expressions) takes the type of its first non-null
//! value. A value that doesn't fit its column (text in an INTEGER column) is
//! an error naming the column and row.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use serde::Deserialize;

use super::{Source, SourceContext};
use crate::{Error, Result};

/// A `type = "sqlite"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqliteSourceConfig {
    /// `path`: the database file, relative to the manifest (opened read-only).
    pub path: PathBuf,
    /// `table`: read the whole table.
    #[serde(default)]
    pub table: Option<String>,
    /// `query`: read the rows of a query.
    #[serde(default)]
    pub query: Option<String>,
    /// `batch_size`: rows per batch, overriding `[pipeline]`.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// `refresh_ms`: read the whole source again whenever it changed
    /// (checked this often), each read a new version of a table — see
    /// `docs/joins.md`. Absent: read once.
    #[serde(default)]
    pub refresh_ms: Option<u64>,
}

/// The Arrow type of a declared SQLite type, by affinity; `None`: decided
/// by the data.
fn affinity(declared: &str) -> Option<DataType> {
    let t = declared.to_ascii_uppercase();
    if t.starts_with("BOOL") {
        Some(DataType::Boolean)
    } else if t.contains("INT") {
        Some(DataType::Int64)
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Some(DataType::Utf8)
    } else if t.contains("BLOB") {
        Some(DataType::Binary)
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Some(DataType::Float64)
    } else {
        None
    }
}

/// Rows in chunks of a batch, or the error that ended them.
type Chunk = std::result::Result<Vec<Vec<Value>>, String>;

struct SqliteSource {
    node: String,
    schema: SchemaRef,
    /// A reader thread owns the connection (SQLite's statements borrow it)
    /// and sends chunks of rows; two in flight at most.
    chunks: std::sync::mpsc::Receiver<Chunk>,
    /// The first chunk, read when opening to type undeclared columns.
    pending: Option<Vec<Vec<Value>>>,
    /// Rows handed out so far (for messages).
    row: usize,
}

impl SqliteSourceConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let path = ctx.base_dir.join(&self.path);
        let fail = |m: String| Error::source_from(ctx.name, path.display(), m);
        let query = match (&self.table, &self.query) {
            (Some(table), None) => {
                format!("SELECT * FROM {}", weir_core::paths::quote_ident(table))
            }
            (None, Some(query)) => query.clone(),
            _ => return Err(fail("give exactly one of `table` and `query`".into())),
        };
        let connection = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| fail(e.to_string()))?;
        let columns: Vec<(String, Option<DataType>)> = connection
            .prepare(&query)
            .map_err(|e| fail(e.to_string()))?
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.decl_type().and_then(affinity)))
            .collect();
        let n = columns.len();
        let batch_size = self.batch_size.unwrap_or(ctx.batch_size).max(1);
        let (send, chunks) = std::sync::mpsc::sync_channel::<Chunk>(2);
        std::thread::Builder::new()
            .name(format!("sqlite-{}", ctx.name))
            .spawn(move || {
                let read = || -> rusqlite::Result<()> {
                    let mut statement = connection.prepare(&query)?;
                    let mut rows = statement.query([])?;
                    let mut chunk = Vec::with_capacity(batch_size);
                    while let Some(row) = rows.next()? {
                        chunk.push(
                            (0..n)
                                .map(|i| row.get::<_, Value>(i))
                                .collect::<rusqlite::Result<_>>()?,
                        );
                        if chunk.len() == batch_size {
                            let full =
                                std::mem::replace(&mut chunk, Vec::with_capacity(batch_size));
                            if send.send(Ok(full)).is_err() {
                                return Ok(()); // the pipeline stopped reading
                            }
                        }
                    }
                    if !chunk.is_empty() {
                        let _ = send.send(Ok(chunk));
                    }
                    Ok(())
                };
                if let Err(e) = read() {
                    let _ = send.send(Err(e.to_string()));
                }
            })
            .map_err(|e| fail(format!("can't start the reader: {e}")))?;
        let first = match chunks.recv() {
            Ok(Ok(rows)) => Some(rows),
            Ok(Err(e)) => return Err(fail(e)),
            Err(_) => None,
        };
        let fields: Vec<Field> = columns
            .into_iter()
            .enumerate()
            .map(|(i, (name, declared))| {
                let t = declared.unwrap_or_else(|| {
                    let values = first.iter().flatten().map(|r| &r[i]);
                    match values.into_iter().find(|v| !matches!(v, Value::Null)) {
                        Some(Value::Integer(_)) => DataType::Int64,
                        Some(Value::Real(_)) => DataType::Float64,
                        Some(Value::Blob(_)) => DataType::Binary,
                        _ => DataType::Utf8,
                    }
                });
                Field::new(name, t, true)
            })
            .collect();
        Ok(Box::new(SqliteSource {
            node: ctx.name.to_string(),
            schema: Arc::new(Schema::new(fields)),
            chunks,
            pending: first,
            row: 0,
        }))
    }
}

impl SqliteSource {
    fn column(&self, rows: &[Vec<Value>], i: usize, first_row: usize) -> Result<ArrayRef> {
        let field = self.schema.field(i);
        let bad = |row: usize, v: &Value| {
            Error::source(
                &self.node,
                format!(
                    "column {:?}, row {}: {v:?} is not {}",
                    field.name(),
                    first_row + row,
                    field.data_type()
                ),
            )
        };
        macro_rules! build {
            ($builder:expr, $($pat:pat => $val:expr),+) => {{
                let mut b = $builder;
                for (r, row) in rows.iter().enumerate() {
                    match &row[i] {
                        Value::Null => b.append_null(),
                        $($pat => b.append_value($val),)+
                        other => return Err(bad(r, other)),
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            }};
        }
        Ok(match field.data_type() {
            DataType::Boolean => build!(BooleanBuilder::new(), Value::Integer(v) => *v != 0),
            DataType::Int64 => build!(Int64Builder::new(), Value::Integer(v) => *v),
            DataType::Float64 => build!(Float64Builder::new(),
                Value::Real(v) => *v, Value::Integer(v) => *v as f64),
            DataType::Binary => build!(BinaryBuilder::new(), Value::Blob(v) => v),
            _ => build!(StringBuilder::new(),
                Value::Text(v) => v.as_str(),
                Value::Integer(v) => v.to_string(),
                Value::Real(v) => v.to_string()),
        })
    }
}

impl Source for SqliteSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let rows = match self.pending.take() {
            Some(rows) => rows,
            None => match self.chunks.recv() {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => return Err(Error::source(&self.node, e)),
                Err(_) => return Ok(None),
            },
        };
        let columns = (0..self.schema.fields().len())
            .map(|i| self.column(&rows, i, self.row))
            .collect::<Result<Vec<_>>>()?;
        self.row += rows.len();
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Some)
            .map_err(|e| Error::source(&self.node, e.to_string()))
    }
}
