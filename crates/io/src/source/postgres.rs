//! `type = "postgres"`: a query's (or a table's) rows, streamed in batches
//! through a server-side cursor — the result never has to fit in memory.
//!
//! ```toml
//! [sources.orders]
//! type = "postgres"
//! url = "postgresql://etl@db.internal/shop"   # default: $DATABASE_URL
//! table = "orders"                            # or: query = "SELECT … FROM …"
//! incremental = { column = "updated_at", after = "2026-11-01" }
//! ```
//!
//! The schema comes from the prepared statement's column types (see
//! docs/postgres.md for the mapping); a type with no mapping is an error
//! that names the column and suggests a cast in the query.

use std::sync::Arc;

use ::postgres::types::{FromSql, Type};
use ::postgres::{Client, NoTls};
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::{Source, SourceContext};
use crate::{Error, Result};

/// Read only rows after a position, in its order.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PgIncremental {
    /// The ordering column (e.g. `updated_at`, `id`).
    pub column: String,
    /// Only rows with `column` greater than this (a literal PostgreSQL
    /// casts to the column's type); default: all rows.
    #[serde(default)]
    pub after: Option<String>,
}

/// A `type = "postgres"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSourceConfig {
    /// `url`: connection string; default `$DATABASE_URL`.
    #[serde(default)]
    pub url: Option<String>,
    /// `table`: read the whole table (optionally schema-qualified).
    #[serde(default)]
    pub table: Option<String>,
    /// `query`: read the rows of a query.
    #[serde(default)]
    pub query: Option<String>,
    /// `incremental`: see [`PgIncremental`].
    #[serde(default)]
    pub incremental: Option<PgIncremental>,
    /// `batch_size`: rows per batch, overriding `[pipeline]`.
    #[serde(default)]
    pub batch_size: Option<usize>,
}

/// Any value's binary form, decoded by the column's type below.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The Arrow type a PostgreSQL type is read as.
fn arrow_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
            DataType::Utf8
        }
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => return None,
    })
}

struct PostgresSource {
    node: String,
    client: Client,
    schema: SchemaRef,
    types: Vec<Type>,
    fetch: String,
    done: bool,
}

impl PostgresSourceConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let fail = |m: String| Error::source(ctx.name, m);
        let quote = |s: &str| {
            s.split('.')
                .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(".")
        };
        let base = match (&self.table, &self.query) {
            (Some(table), None) => format!("SELECT * FROM {}", quote(table)),
            (None, Some(query)) => query.trim().trim_end_matches(';').to_string(),
            _ => return Err(fail("give exactly one of `table` and `query`".into())),
        };
        let query = match &self.incremental {
            None => base,
            Some(inc) => {
                let column = quote(&inc.column);
                let filter = inc
                    .after
                    .as_ref()
                    .map(|a| format!(" WHERE q.{column} > '{}'", a.replace('\'', "''")))
                    .unwrap_or_default();
                format!("SELECT * FROM ({base}) q{filter} ORDER BY q.{column}")
            }
        };
        let url = match &self.url {
            Some(url) => url.clone(),
            None => std::env::var("DATABASE_URL").map_err(|_| {
                fail("no `url` in the manifest and no DATABASE_URL in the environment".into())
            })?,
        };
        let mut client =
            Client::connect(&url, NoTls).map_err(|e| fail(format!("can't connect: {e}")))?;
        let statement = client
            .prepare(&query)
            .map_err(|e| fail(format!("the query: {}", db_message(&e))))?;
        let mut fields = Vec::new();
        let mut types = Vec::new();
        for column in statement.columns() {
            let t = arrow_type(column.type_()).ok_or_else(|| {
                fail(format!(
                    "column {:?} is PostgreSQL {}, which weir doesn't read yet; cast it in the \
                     query (e.g. `{}::text` or `::float8`)",
                    column.name(),
                    column.type_(),
                    column.name()
                ))
            })?;
            fields.push(Field::new(column.name(), t, true));
            types.push(column.type_().clone());
        }
        // A cursor in a read-only transaction: rows stream batch by batch.
        client
            .batch_execute(&format!(
                "BEGIN READ ONLY; DECLARE weir_cursor NO SCROLL CURSOR FOR {query}"
            ))
            .map_err(|e| fail(format!("the query: {}", db_message(&e))))?;
        let batch_size = self.batch_size.unwrap_or(ctx.batch_size).max(1);
        Ok(Box::new(PostgresSource {
            node: ctx.name.to_string(),
            client,
            schema: Arc::new(Schema::new(fields)),
            types,
            fetch: format!("FETCH {batch_size} FROM weir_cursor"),
            done: false,
        }))
    }
}

fn db_message(e: &::postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// Column `i` of `row` in its binary form; `None` for null.
fn raw(row: &::postgres::Row, i: usize) -> std::result::Result<Option<&[u8]>, String> {
    row.try_get::<_, Option<Raw<'_>>>(i)
        .map(|v| v.map(|Raw(b)| b))
        .map_err(|e| e.to_string())
}

fn be<const N: usize>(raw: &[u8]) -> std::result::Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

impl PostgresSource {
    fn column(&self, rows: &[::postgres::Row], i: usize) -> std::result::Result<ArrayRef, String> {
        macro_rules! build {
            ($builder:expr, |$b:ident| $decode:expr) => {{
                let mut builder = $builder;
                for row in rows {
                    match raw(row, i)? {
                        Some($b) => builder.append_value($decode),
                        None => builder.append_null(),
                    }
                }
                Arc::new(builder.finish()) as ArrayRef
            }};
        }
        const PG_EPOCH_DAYS: i32 = 10_957;
        const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
        Ok(match self.types[i] {
            Type::BOOL => build!(BooleanBuilder::new(), |b| b.first() == Some(&1)),
            Type::INT2 => build!(Int16Builder::new(), |b| i16::from_be_bytes(be(b)?)),
            Type::INT4 => build!(Int32Builder::new(), |b| i32::from_be_bytes(be(b)?)),
            Type::INT8 => build!(Int64Builder::new(), |b| i64::from_be_bytes(be(b)?)),
            Type::FLOAT4 => build!(Float32Builder::new(), |b| f32::from_be_bytes(be(b)?)),
            Type::FLOAT8 => build!(Float64Builder::new(), |b| f64::from_be_bytes(be(b)?)),
            Type::BYTEA => build!(BinaryBuilder::new(), |b| b),
            Type::JSONB => build!(StringBuilder::new(), |b| {
                // jsonb's binary form: a version byte, then the text.
                std::str::from_utf8(b.get(1..).unwrap_or_default()).map_err(|e| e.to_string())?
            }),
            Type::DATE => build!(Date32Builder::new(), |b| i32::from_be_bytes(be(b)?)
                .saturating_add(PG_EPOCH_DAYS)),
            Type::TIMESTAMP => build!(TimestampMicrosecondBuilder::new(), |b| i64::from_be_bytes(
                be(b)?
            )
            .saturating_add(PG_EPOCH_MICROS)),
            Type::TIMESTAMPTZ => build!(
                TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                |b| i64::from_be_bytes(be(b)?).saturating_add(PG_EPOCH_MICROS)
            ),
            // text, varchar, char, name, json: UTF-8 text.
            _ => build!(StringBuilder::new(), |b| std::str::from_utf8(b)
                .map_err(|e| e.to_string())?),
        })
    }
}

impl Source for PostgresSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        let rows = self
            .client
            .query(&self.fetch, &[])
            .map_err(|e| Error::source(&self.node, format!("fetching rows: {}", db_message(&e))))?;
        if rows.is_empty() {
            self.done = true;
            let _ = self.client.batch_execute("COMMIT");
            return Ok(None);
        }
        let columns = (0..self.types.len())
            .map(|i| {
                self.column(&rows, i).map_err(|e| {
                    Error::source_from(
                        &self.node,
                        format!("column {:?}", self.schema.field(i).name()),
                        e,
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Some)
            .map_err(|e| Error::source(&self.node, e.to_string()))
    }
}
