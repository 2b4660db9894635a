//! Sources: where batches come from. One module per kind, registered in
//! [`SourceConfig`] — adding a kind is one file plus one line there.

pub mod bad;
mod csv;
mod directory;
mod files;
mod generate;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
mod http_poll;
mod ipc;
#[cfg(feature = "kafka")]
mod kafka;
mod lines;
mod ndjson;
mod parquet;
mod parquet_footer;
#[cfg(feature = "postgres")]
mod postgres;
mod refresh;
mod robust;
mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;
mod stdin;
mod tail;
mod type_syntax;

use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use crate::Result;
pub use schema::{ColumnDecl, TypeName};

pub use self::csv::CsvConfig;
pub use self::directory::{DirectoryConfig, FileFormat};
pub use self::generate::GenerateConfig;
#[cfg(feature = "http")]
pub use self::http::HttpConfig;
#[cfg(feature = "http")]
pub use self::http_poll::{BodyFormat, HttpPollConfig, Incremental, Pagination};
pub use self::ipc::IpcConfig;
#[cfg(feature = "kafka")]
pub use self::kafka::{KafkaSourceConfig, Metadata as KafkaMetadata, ScaleOut};
pub use self::lines::LineFormat;
pub use self::ndjson::NdjsonConfig;
pub use self::parquet::ParquetConfig;
#[cfg(feature = "postgres")]
pub use self::postgres::{PgIncremental, PostgresSourceConfig};
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteSourceConfig;
pub use self::stdin::StdinConfig;
pub use self::tail::{StartAt, TailConfig};

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
    #[cfg(feature = "http")]
    HttpPoll(Box<HttpPollConfig>),
    /// `type = "postgres"`: a table or query, streamed through a cursor.
    #[cfg(feature = "postgres")]
    Postgres(PostgresSourceConfig),
    /// `type = "sqlite"`: a table or query of an SQLite database file.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteSourceConfig),
    /// `type = "directory"`: new files in a directory as they appear (unbounded).
    Directory(DirectoryConfig),
    /// `type = "tail"`: lines appended to a file, following rotation (unbounded).
    Tail(TailConfig),
    /// `type = "http"`: an ingest endpoint clients POST rows to (unbounded).
    #[cfg(feature = "http")]
    Http(HttpConfig),
    /// `type = "kafka"`: records from Kafka topics (unbounded unless
    /// `until = "end"`).
    #[cfg(feature = "kafka")]
    Kafka(Box<KafkaSourceConfig>),
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

    /// A graceful stop (Ctrl-C): the rows this source has already taken
    /// responsibility for (answered a client for, read past) and must not
    /// drop. It takes nothing new after this.
    fn drain(&mut self) -> Result<Vec<RecordBatch>> {
        Ok(Vec::new())
    }

    /// Where the source stands after the last batch it returned, for a
    /// checkpoint; `None` when it can't resume mid-way.
    fn position(&self) -> Option<serde_json::Value> {
        None
    }

    /// Resumes after `position` (taken by [`Source::position`] of the
    /// same kind and config): the next batch starts with the first row not
    /// covered by it.
    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let _ = position;
        Err(crate::Error::checkpoint(
            "this source can't resume from a position",
        ))
    }

    /// Whether the batches returned so far complete a version of the
    /// source's data, and the next ones (if any) start a new version that
    /// replaces it (a `refresh_ms` table). Asked after every `next_batch`
    /// and `drain`; true once per version.
    fn take_complete(&mut self) -> bool {
        false
    }

    /// Whether a checkpoint may be taken now: a refreshed table only
    /// between two versions, so a checkpoint never holds half a table.
    fn at_boundary(&self) -> bool {
        true
    }

    /// The event time every split of this source has passed, when it reads
    /// several that advance independently (Kafka partitions): the least of
    /// each split's newest `column` value, in microseconds since the
    /// epoch, splits idle past their timeout aside (`Some(None)`: a live
    /// split has shown no time yet, so the watermark holds). `batch` is
    /// the one just returned. `None`: one split; the batch's newest time
    /// counts.
    fn split_event_time(
        &mut self,
        column: &str,
        batch: &RecordBatch,
    ) -> Result<Option<Option<i64>>> {
        let _ = (column, batch);
        Ok(None)
    }

    /// Work to do once the checkpoint holding the current
    /// [`Source::position`] is durable (Kafka: commit the offsets to the
    /// consumer group). Asked at every barrier and at the end.
    fn publish(&mut self) -> Option<weir_core::checkpoint::Publish> {
        None
    }

    /// What a restart from a checkpoint does with this source's rows.
    fn delivery(&self) -> Delivery {
        if self.position().is_some() {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        }
    }
}

/// What a crash and a restart from the last checkpoint mean for a
/// source's rows (shown in the run summary and `docs/streaming.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The source resumes at its checkpointed position: every row once.
    ExactlyOnce,
    /// The source starts over: rows read before the crash come again.
    AtLeastOnce,
    /// What the source had accepted but not yet checkpointed is gone
    /// (stdin, an ingest endpoint that answered 2xx): rows at most once.
    AtMostOnce,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Delivery::ExactlyOnce => "exactly-once",
            Delivery::AtLeastOnce => "at-least-once",
            Delivery::AtMostOnce => "at-most-once",
        })
    }
}

impl SourceConfig {
    /// The file (or glob) this source reads, if it reads files (as written
    /// in the manifest, unresolved).
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            SourceConfig::Csv(c) => Some(&c.path),
            SourceConfig::Ndjson(c) => Some(&c.path),
            SourceConfig::Parquet(c) => Some(&c.path),
            SourceConfig::Ipc(c) => Some(&c.path),
            SourceConfig::Directory(c) => Some(&c.path),
            SourceConfig::Tail(c) => Some(&c.path),
            #[cfg(feature = "sqlite")]
            SourceConfig::Sqlite(c) => Some(&c.path),
            _ => None,
        }
    }

    /// The `type` this source was declared with.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Csv(_) => "csv",
            SourceConfig::Ndjson(_) => "ndjson",
            SourceConfig::Parquet(_) => "parquet",
            SourceConfig::Ipc(_) => "ipc",
            SourceConfig::Stdin(_) => "stdin",
            SourceConfig::Generate(_) => "generate",
            #[cfg(feature = "http")]
            SourceConfig::HttpPoll(_) => "http_poll",
            #[cfg(feature = "postgres")]
            SourceConfig::Postgres(_) => "postgres",
            #[cfg(feature = "sqlite")]
            SourceConfig::Sqlite(_) => "sqlite",
            SourceConfig::Directory(_) => "directory",
            SourceConfig::Tail(_) => "tail",
            #[cfg(feature = "http")]
            SourceConfig::Http(_) => "http",
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(_) => "kafka",
        }
    }

    /// The source's `on_bad_record` policy.
    pub fn on_bad_record(&self) -> bad::OnBadRecord {
        match self {
            SourceConfig::Csv(c) => c.on_bad_record,
            SourceConfig::Ndjson(c) => c.on_bad_record,
            SourceConfig::Parquet(c) => c.on_bad_record,
            SourceConfig::Ipc(c) => c.on_bad_record,
            SourceConfig::Stdin(c) => c.on_bad_record,
            SourceConfig::Directory(c) => c.on_bad_record,
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(c) => c.on_bad_record,
            _ => bad::OnBadRecord::Fail,
        }
    }

    /// `refresh_ms`: read the whole source again whenever it changed, each
    /// read a new version of a table (files, SQLite and PostgreSQL).
    pub fn refresh_ms(&self) -> Option<u64> {
        match self {
            SourceConfig::Csv(c) => c.refresh_ms,
            SourceConfig::Ndjson(c) => c.refresh_ms,
            SourceConfig::Parquet(c) => c.refresh_ms,
            SourceConfig::Ipc(c) => c.refresh_ms,
            #[cfg(feature = "postgres")]
            SourceConfig::Postgres(c) => c.refresh_ms,
            #[cfg(feature = "sqlite")]
            SourceConfig::Sqlite(c) => c.refresh_ms,
            _ => None,
        }
    }

    /// Opens the source: resolves files, reads or infers the schema.
    pub fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        match self.refresh_ms() {
            #[cfg(feature = "postgres")]
            Some(_) if matches!(self, SourceConfig::Postgres(c) if c.incremental.is_some()) => {
                Err(crate::Error::source(
                    ctx.name,
                    "`refresh_ms` reads the whole table again; `incremental` reads only new \
                     rows — choose one",
                ))
            }
            Some(ms) => refresh::Refreshing::build(self, ctx, ms),
            None => self.build_once(ctx),
        }
    }

    /// Opens the source for one read (`refresh_ms` aside).
    fn build_once(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        match self {
            SourceConfig::Csv(c) => c.build(ctx),
            SourceConfig::Ndjson(c) => c.build(ctx),
            SourceConfig::Parquet(c) => c.build(ctx),
            SourceConfig::Ipc(c) => c.build(ctx),
            SourceConfig::Stdin(c) => c.build(ctx),
            SourceConfig::Generate(c) => c.build(ctx),
            #[cfg(feature = "http")]
            SourceConfig::HttpPoll(c) => c.build(ctx),
            #[cfg(feature = "postgres")]
            SourceConfig::Postgres(c) => c.build(ctx),
            #[cfg(feature = "sqlite")]
            SourceConfig::Sqlite(c) => c.build(ctx),
            SourceConfig::Directory(c) => c.build(ctx),
            SourceConfig::Tail(c) => c.build(ctx),
            #[cfg(feature = "http")]
            SourceConfig::Http(c) => c.build(ctx),
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(c) => c.build(ctx),
        }
    }
}

/// Each row's `column` (a timestamp column) in microseconds since the
/// epoch.
#[cfg(feature = "kafka")]
pub(crate) fn event_micros(
    column: &str,
    batch: &RecordBatch,
) -> std::result::Result<Vec<Option<i64>>, String> {
    use arrow::array::{Array, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, TimeUnit};
    let values = batch
        .column_by_name(column)
        .ok_or_else(|| format!("watermark.column {column:?} is not a column of this source"))?;
    let micros = arrow::compute::cast(values, &DataType::Timestamp(TimeUnit::Microsecond, None))
        .map_err(|e| format!("watermark.column {column:?}: {e}"))?;
    let micros = micros
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| format!("watermark.column {column:?} is not a timestamp"))?;
    Ok(micros.iter().collect())
}
