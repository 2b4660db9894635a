//! Sources: where batches come from. One module per kind, registered in
//! [`SourceConfig`] — adding a kind is one file plus one line there.

pub mod bad;
mod csv;
mod files;
mod generate;
mod http_poll;
mod ipc;
mod ndjson;
mod parquet;
mod postgres;
mod robust;
mod schema;
mod sqlite;
mod stdin;

use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use crate::Result;
pub use schema::{ColumnDecl, TypeName};

pub use self::csv::CsvConfig;
pub use self::generate::GenerateConfig;
pub use self::http_poll::{BodyFormat, HttpPollConfig, Incremental, Pagination};
pub use self::ipc::IpcConfig;
pub use self::ndjson::NdjsonConfig;
pub use self::parquet::ParquetConfig;
pub use self::postgres::{PgIncremental, PostgresSourceConfig};
pub use self::sqlite::SqliteSourceConfig;
pub use self::stdin::StdinConfig;

/// A `[sources.NAME]` table; `type` picks the kind.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// `type = "csv"`.
    Csv(CsvConfig),
    /// `type = "ndjson"`: one JSON object per line.
    Ndjson(NdjsonConfig),
    /// `type = "parquet"`.
    Parquet(ParquetConfig),
    /// `type = "ipc"`: Arrow IPC file or stream.
    Ipc(IpcConfig),
    /// `type = "stdin"`: CSV or NDJSON on standard input.
    Stdin(StdinConfig),
    /// `type = "generate"`: synthetic rows, for demos, tests and benchmarks.
    Generate(GenerateConfig),
    /// `type = "http_poll"`: records from a JSON API, paginated, optionally polled.
    HttpPoll(Box<HttpPollConfig>),
    /// `type = "postgres"`: a table or query, streamed through a cursor.
    Postgres(PostgresSourceConfig),
    /// `type = "sqlite"`: a table or query of an SQLite database file.
    Sqlite(SqliteSourceConfig),
}

/// What a source is built with.
#[derive(Debug, Clone, Copy)]
pub struct SourceContext<'a> {
    /// The node's name.
    pub name: &'a str,
    /// Relative paths resolve against this (the manifest's directory).
    pub base_dir: &'a Path,
    /// Rows per batch, from `[pipeline]` unless the source overrides it.
    pub batch_size: usize,
}

/// A source of record batches. Built once per run; `next_batch` is called
/// on a blocking thread until it returns `None` (bounded) or the pipeline
/// stops (unbounded).
pub trait Source: Send {
    /// The schema of every batch this source emits, known before any data
    /// moves (declared, inferred from a sample, or read from file metadata).
    fn schema(&self) -> SchemaRef;

    /// The next batch, or `None` at end of input.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>>;

    /// Records rejected since the last call (only under
    /// `on_bad_record = "skip" | "dead_letter"`).
    fn bad_records(&mut self) -> Vec<bad::BadRecord> {
        Vec::new()
    }
}

impl SourceConfig {
    /// The source's `on_bad_record` policy.
    pub fn on_bad_record(&self) -> bad::OnBadRecord {
        match self {
            SourceConfig::Csv(c) => c.on_bad_record,
            SourceConfig::Ndjson(c) => c.on_bad_record,
            SourceConfig::Parquet(c) => c.on_bad_record,
            SourceConfig::Ipc(c) => c.on_bad_record,
            SourceConfig::Stdin(c) => c.on_bad_record,
            SourceConfig::Generate(_)
            | SourceConfig::HttpPoll(_)
            | SourceConfig::Postgres(_)
            | SourceConfig::Sqlite(_) => bad::OnBadRecord::Fail,
        }
    }

    /// Opens the source: resolves files, reads or infers the schema.
    pub fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        match self {
            SourceConfig::Csv(c) => c.build(ctx),
            SourceConfig::Ndjson(c) => c.build(ctx),
            SourceConfig::Parquet(c) => c.build(ctx),
            SourceConfig::Ipc(c) => c.build(ctx),
            SourceConfig::Stdin(c) => c.build(ctx),
            SourceConfig::Generate(c) => c.build(ctx),
            SourceConfig::HttpPoll(c) => c.build(ctx),
            SourceConfig::Postgres(c) => c.build(ctx),
            SourceConfig::Sqlite(c) => c.build(ctx),
        }
    }
}
