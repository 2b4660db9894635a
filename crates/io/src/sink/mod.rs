//! Sinks: where batches go. One module per kind, registered in
//! [`SinkConfig`] — adding a kind is one file plus one line there.
//!
//! File sinks write to a temporary file beside the target and rename it
//! into place only when the run succeeds, so a failed run never leaves a
//! file that looks complete.

mod blackhole;
mod csv;
mod file;
mod ipc;
mod json_text;
#[cfg(feature = "kafka")]
mod kafka;
mod ndjson;
mod parquet;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod stdout;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod table;

use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use crate::Result;
use weir_core::checkpoint::SinkState;

pub use self::blackhole::BlackholeSinkConfig;
pub use self::csv::CsvSinkConfig;
pub use self::ipc::IpcSinkConfig;
#[cfg(feature = "kafka")]
pub use self::kafka::KafkaSinkConfig;
pub use self::ndjson::NdjsonSinkConfig;
pub use self::parquet::{Compression, ParquetSinkConfig};
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresSinkConfig;
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteSinkConfig;
pub use self::stdout::StdoutSinkConfig;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use self::table::{Mode as PostgresMode, OnReject, TransactionScope};

/// A `[sinks.NAME]` table without `inputs`; `type` picks the kind.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// `type = "parquet"`.
    Parquet(ParquetSinkConfig),
    /// `type = "csv"`.
    Csv(CsvSinkConfig),
    /// `type = "ndjson"`.
    Ndjson(NdjsonSinkConfig),
    /// `type = "ipc"`: an Arrow IPC file.
    Ipc(IpcSinkConfig),
    /// `type = "stdout"`: a table (or CSV/NDJSON) on standard output.
    Stdout(StdoutSinkConfig),
    /// `type = "postgres"`: a PostgreSQL table, loaded with binary COPY.
    #[cfg(feature = "postgres")]
    Postgres(PostgresSinkConfig),
    /// `type = "sqlite"`: a table in an SQLite database file.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteSinkConfig),
    /// `type = "blackhole"`: drops rows, optionally at a limited rate.
    Blackhole(BlackholeSinkConfig),
    /// `type = "kafka"`: records to Kafka topics.
    #[cfg(feature = "kafka")]
    Kafka(Box<KafkaSinkConfig>),
}

/// What a sink is built with.
#[derive(Debug, Clone, Copy)]
pub struct SinkContext<'a> {
    /// The node's name.
    pub name: &'a str,
    /// Relative paths resolve against this (the manifest's directory).
    pub base_dir: &'a Path,
    /// The input schema when `weir check` could determine it; used to write
    /// a valid empty file when no batch arrives.
    pub schema: Option<&'a SchemaRef>,
    /// Whether the pipeline takes checkpoints: file sinks then write one
    /// part file per checkpoint, published when the checkpoint is durable.
    pub checkpointing: bool,
}

/// A destination for record batches. `write` is called in order for every
/// batch; then exactly one of `commit` (the run succeeded) or `abort`.
pub trait Sink: Send {
    /// Writes one batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Flushes and makes the output visible.
    fn commit(self: Box<Self>) -> Result<()>;
    /// Discards everything written.
    fn abort(self: Box<Self>);

    /// A checkpoint barrier: makes everything written so far durable and
    /// says how to publish it once the checkpoint is on disk (and what to
    /// resume with). The default keeps nothing back: output already
    /// written stays, so a restart may write rows again (at-least-once).
    fn prepare(&mut self) -> Result<SinkState> {
        Ok(SinkState::default())
    }

    /// Resumes from a checkpoint's state, before any write: the
    /// checkpoint's own pending files are already published.
    fn resume(&mut self, state: &SinkState) -> Result<()> {
        let _ = state;
        Ok(())
    }

    /// Whether a restart repeats no row this sink already published.
    fn exactly_once(&self) -> bool {
        false
    }
}

impl SinkConfig {
    /// The `type` this sink was declared with.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Parquet(_) => "parquet",
            SinkConfig::Csv(_) => "csv",
            SinkConfig::Ndjson(_) => "ndjson",
            SinkConfig::Ipc(_) => "ipc",
            SinkConfig::Stdout(_) => "stdout",
            #[cfg(feature = "postgres")]
            SinkConfig::Postgres(_) => "postgres",
            #[cfg(feature = "sqlite")]
            SinkConfig::Sqlite(_) => "sqlite",
            SinkConfig::Blackhole(_) => "blackhole",
            #[cfg(feature = "kafka")]
            SinkConfig::Kafka(_) => "kafka",
        }
    }

    /// The file this sink writes, if it writes one (as written in the
    /// manifest, unresolved).
    pub fn path(&self) -> Option<&Path> {
        match self {
            SinkConfig::Parquet(c) => Some(&c.path),
            SinkConfig::Csv(c) => Some(&c.path),
            SinkConfig::Ndjson(c) => Some(&c.path),
            SinkConfig::Ipc(c) => Some(&c.path),
            _ => None,
        }
    }

    /// The file this sink writes, to change it.
    pub fn path_mut(&mut self) -> Option<&mut std::path::PathBuf> {
        match self {
            SinkConfig::Parquet(c) => Some(&mut c.path),
            SinkConfig::Csv(c) => Some(&mut c.path),
            SinkConfig::Ndjson(c) => Some(&mut c.path),
            SinkConfig::Ipc(c) => Some(&mut c.path),
            _ => None,
        }
    }

    /// Whether this sink can hold every column of `schema`; the error
    /// names the first column it can't and says where such data can go.
    /// `weir check` asks before any data moves.
    pub fn accepts(&self, schema: &SchemaRef) -> std::result::Result<(), String> {
        let refuse = |field: &arrow::datatypes::Field, what: &str| {
            Err(format!(
                "column {:?} is {}, which {what}",
                field.name(),
                field.data_type()
            ))
        };
        for field in schema.fields() {
            let t = field.data_type();
            match self {
                // CSV writes lists, structs and maps as JSON text; a
                // union has no JSON form.
                SinkConfig::Csv(_)
                | SinkConfig::Stdout(stdout::StdoutSinkConfig {
                    format: stdout::StdoutFormat::Csv,
                    ..
                }) if has_union(t) => {
                    return refuse(
                        field,
                        "CSV can't hold (a union has no JSON form): write it to parquet or \
                         ipc, or select the columns you need",
                    )
                }
                #[cfg(feature = "sqlite")]
                SinkConfig::Sqlite(_) if sqlite::sqlite_type(t).is_none() => {
                    return refuse(
                        field,
                        "SQLite can't hold: select or convert it first (see the type list in \
                         docs/manifest.md)",
                    )
                }
                #[cfg(feature = "postgres")]
                SinkConfig::Postgres(c)
                    if postgres::pg_type(t, c.json.contains(field.name())).is_none() =>
                {
                    return refuse(
                        field,
                        "weir can't load into PostgreSQL (see docs/postgres.md for the type \
                         mapping)",
                    )
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens the sink.
    pub fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        match self {
            SinkConfig::Parquet(c) => c.build(ctx),
            SinkConfig::Csv(c) => c.build(ctx),
            SinkConfig::Ndjson(c) => c.build(ctx),
            SinkConfig::Ipc(c) => c.build(ctx),
            SinkConfig::Stdout(c) => c.build(ctx),
            #[cfg(feature = "postgres")]
            SinkConfig::Postgres(c) => c.build(ctx),
            #[cfg(feature = "sqlite")]
            SinkConfig::Sqlite(c) => c.build(ctx),
            SinkConfig::Blackhole(c) => c.build(ctx),
            #[cfg(feature = "kafka")]
            SinkConfig::Kafka(c) => c.build(ctx),
        }
    }
}

/// Whether `t` is or holds a union, which no JSON encoding carries.
pub(crate) fn has_union(t: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType::*;
    match t {
        Union(..) => true,
        List(f)
        | LargeList(f)
        | FixedSizeList(f, _)
        | ListView(f)
        | LargeListView(f)
        | Map(f, _) => has_union(f.data_type()),
        Struct(fields) => fields.iter().any(|f| has_union(f.data_type())),
        Dictionary(_, value) => has_union(value),
        RunEndEncoded(_, values) => has_union(values.data_type()),
        _ => false,
    }
}
