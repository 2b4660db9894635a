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

mod decode;

use std::sync::Arc;

use ::postgres::types::{FromSql, Type};
use ::postgres::{Client, NoTls};
use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::{Source, SourceContext};
use crate::{Error, Result};
use decode::{arrow_type, decode};

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
    /// `refresh_ms`: read the whole source again whenever it changed
    /// (checked this often), each read a new version of a table — see
    /// `docs/joins.md`. Absent: read once.
    #[serde(default)]
    pub refresh_ms: Option<u64>,
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
            let t = arrow_type(column.type_(), column.type_modifier()).ok_or_else(|| {
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

impl PostgresSource {
    fn column(&self, rows: &[::postgres::Row], i: usize) -> std::result::Result<ArrayRef, String> {
        let values = rows
            .iter()
            .map(|row| raw(row, i))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        decode(&values, &self.types[i], self.schema.field(i).data_type())
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
