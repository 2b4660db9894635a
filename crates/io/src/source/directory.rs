//! `type = "directory"`: an unbounded source that picks up files matching
//! a glob as they appear, each file exactly once, in name order.
//!
//! A file is taken once it has stopped changing: its size and mtime are
//! the same on two scans in a row (or it was last modified over a second
//! ago). Writers should still write under a hidden name (`.part`, a
//! leading dot: never matched) and rename into place. Each file is read
//! with the reader of its `format` (the file sources' own code), so CSV,
//! NDJSON, Parquet and Arrow IPC all work, bad-record policies included.
//!
//! The position — files done, the file being read and rows read from it
//! — goes into checkpoints, so a restart resumes mid-file.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::bad::{BadRecord, OnBadRecord};
use super::files::skip_rows;
use super::schema::{cast_to, declared, ColumnDecl};
use super::{
    CsvConfig, IpcConfig, NdjsonConfig, ParquetConfig, Source, SourceConfig, SourceContext,
};
use crate::{Error, Result};
use weir_core::paths::resolve;

/// The file format of a `directory` source.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// CSV (see the `csv` source).
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Parquet.
    Parquet,
    /// Arrow IPC file or stream.
    Ipc,
}

/// A `type = "directory"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `path`: a glob, relative to the manifest (`"incoming/*.csv"`).
    /// Names starting with a dot are never taken.
    pub path: PathBuf,
    /// `format`: `"csv"`, `"ndjson"`, `"parquet"` or `"ipc"`.
    pub format: FileFormat,
    /// `schema`: declared columns (CSV, NDJSON). Without it the schema is
    /// inferred from the first file, which must then exist at start;
    /// later files are cast to it.
    pub schema: Option<Vec<ColumnDecl>>,
    /// `delimiter`: CSV delimiter (default `,`).
    #[serde(default = "comma")]
    pub delimiter: char,
    /// `header`: CSV files start with a header line (default true).
    #[serde(default = "yes")]
    pub header: bool,
    /// `null_values`: CSV values read as null (default `[""]`).
    pub null_values: Option<Vec<String>>,
    /// `quote`: CSV quote character (default `"`).
    #[serde(default = "super::csv::double_quote")]
    pub quote: char,
    /// `escape`: CSV escape character inside quotes (default none).
    pub escape: Option<char>,
    /// `comment`: CSV lines starting with it are passed over.
    pub comment: Option<char>,
    /// `skip_rows`: lines passed over before the CSV header.
    #[serde(default)]
    pub skip_rows: usize,
    /// `encoding`: `"utf-8"` (default) or `"latin-1"`.
    #[serde(default)]
    pub encoding: super::csv::Encoding,
    /// `decimal`: the CSV decimal mark, `"."` (default) or `","`.
    #[serde(default = "super::csv::dot")]
    pub decimal: char,
    /// `batch_size`: rows per batch, overriding `[pipeline]`.
    pub batch_size: Option<usize>,
    /// `on_bad_record`: `"fail"` (default), `"skip"` or `"dead_letter"`.
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
    /// `poll_interval_ms`: how often the directory is scanned (default 250).
    #[serde(default = "poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// `end_after_idle_ms`: end the source (a bounded run) once no new file
    /// has appeared for this long; absent: run until stopped.
    pub end_after_idle_ms: Option<u64>,
}

fn comma() -> char {
    ','
}
fn yes() -> bool {
    true
}
fn poll_interval_ms() -> u64 {
    250
}

impl DirectoryConfig {
    /// The config of the file source that reads one file.
    fn file_source(&self, path: &Path) -> SourceConfig {
        let path = PathBuf::from(glob::Pattern::escape(&path.to_string_lossy()));
        match self.format {
            FileFormat::Csv => SourceConfig::Csv(CsvConfig {
                path,
                delimiter: self.delimiter,
                header: self.header,
                schema: self.schema.clone(),
                infer_rows: super::csv::infer_rows(),
                batch_size: self.batch_size,
                on_bad_record: self.on_bad_record,
                null_values: self.null_values.clone(),
                quote: self.quote,
                escape: self.escape,
                comment: self.comment,
                skip_rows: self.skip_rows,
                encoding: self.encoding,
                decimal: self.decimal,
                refresh_ms: None,
            }),
            FileFormat::Ndjson => SourceConfig::Ndjson(NdjsonConfig {
                path,
                schema: self.schema.clone(),
                infer_rows: super::csv::infer_rows(),
                batch_size: self.batch_size,
                on_bad_record: self.on_bad_record,
                refresh_ms: None,
            }),
            FileFormat::Parquet => SourceConfig::Parquet(ParquetConfig {
                path,
                batch_size: self.batch_size,
                on_bad_record: self.on_bad_record,
                refresh_ms: None,
            }),
            FileFormat::Ipc => SourceConfig::Ipc(IpcConfig {
                path,
                on_bad_record: self.on_bad_record,
                refresh_ms: None,
            }),
        }
    }

    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        if self.poll_interval_ms == 0 {
            return Err(Error::source(
                ctx.name,
                "`poll_interval_ms` must be at least 1",
            ));
        }
        let pattern = resolve(ctx.base_dir, &self.path);
        let mut source = Directory {
            node: ctx.name.to_string(),
            config: self.clone(),
            pattern: pattern.to_string_lossy().into_owned(),
            base_dir: ctx.base_dir.to_path_buf(),
            batch_size: ctx.batch_size,
            schema: None,
            done: BTreeSet::new(),
            seen: HashMap::new(),
            ready: Vec::new(),
            current: None,
            skip: 0,
            last_scan: None,
            last_file: Instant::now(),
        };
        glob::Pattern::new(&source.pattern).map_err(|e| {
            Error::source_from(
                ctx.name,
                format!("bad path pattern {:?}", source.pattern),
                e,
            )
        })?;
        let first = source.matching()?.into_iter().next();
        let schema = match (&self.schema, self.format, first) {
            // A header is matched by name: the first file, if there is one
            // yet, says which columns there are (the declaration types
            // them); every later file is then read as those columns.
            (Some(_), FileFormat::Csv, Some(first)) if self.header => {
                let schema = source.open(&first)?.schema();
                source.config.schema = Some(super::schema::decls(&schema));
                schema
            }
            (Some(columns), FileFormat::Csv | FileFormat::Ndjson, _) => declared(columns),
            (_, _, first) => {
                let first = first.ok_or_else(|| {
                    Error::source(
                        ctx.name,
                        format!(
                            "no file matches {:?} yet, so the schema can't be inferred; declare \
                             `schema = [...]` (csv, ndjson) or start with one file in place",
                            source.pattern
                        ),
                    )
                })?;
                source.open(&first)?.schema()
            }
        };
        source.schema = Some(schema);
        Ok(Box::new(source))
    }
}

struct Directory {
    node: String,
    config: DirectoryConfig,
    pattern: String,
    base_dir: PathBuf,
    batch_size: usize,
    schema: Option<SchemaRef>,
    /// Files read to the end.
    done: BTreeSet<PathBuf>,
    /// Size and mtime at the last scan, of files not taken yet.
    seen: HashMap<PathBuf, (u64, SystemTime)>,
    /// Settled files waiting, in name order.
    ready: Vec<PathBuf>,
    /// The file being read, its reader, and rows returned from it.
    current: Option<(PathBuf, Box<dyn Source>, u64)>,
    /// Rows of the resumed file to pass over.
    skip: u64,
    last_scan: Option<Instant>,
    /// When the last new file was taken (for `end_after_idle_ms`).
    last_file: Instant,
}

impl Directory {
    fn matching(&self) -> Result<Vec<PathBuf>> {
        let paths = glob::glob(&self.pattern).map_err(|e| {
            Error::source_from(
                &self.node,
                format!("bad path pattern {:?}", self.pattern),
                e,
            )
        })?;
        let mut files: Vec<PathBuf> = paths
            .flatten()
            .filter(|p| p.is_file())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    fn open(&self, path: &Path) -> Result<Box<dyn Source>> {
        self.config.file_source(path).build(SourceContext {
            name: &self.node,
            base_dir: &self.base_dir,
            batch_size: self.batch_size,
        })
    }

    /// Looks for new files; those that stopped changing become ready.
    fn scan(&mut self) -> Result<()> {
        self.last_scan = Some(Instant::now());
        let current = self.current.as_ref().map(|(p, _, _)| p.clone());
        for path in self.matching()? {
            if self.done.contains(&path)
                || current.as_ref() == Some(&path)
                || self.ready.contains(&path)
            {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let now = (
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            );
            let old_enough = now
                .1
                .elapsed()
                .is_ok_and(|age| age > Duration::from_secs(1));
            if old_enough || self.seen.get(&path) == Some(&now) {
                self.seen.remove(&path);
                self.ready.push(path);
            } else {
                self.seen.insert(path, now);
            }
        }
        self.ready.sort();
        Ok(())
    }

    /// Casts a batch of a later file to the schema of the first.
    fn conform(&self, batch: RecordBatch, path: &Path) -> Result<RecordBatch> {
        let Some(schema) = &self.schema else {
            return Ok(batch);
        };
        cast_to(batch, schema).map_err(|why| {
            Error::source_from(
                &self.node,
                format!(
                    "{}: doesn't fit the directory's schema ({schema})",
                    path.display()
                ),
                why,
            )
        })
    }
}

impl Source for Directory {
    fn schema(&self) -> SchemaRef {
        self.schema
            .clone()
            .unwrap_or_else(|| std::sync::Arc::new(arrow::datatypes::Schema::empty()))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        loop {
            if let Some((path, reader, rows)) = &mut self.current {
                match reader.next_batch()? {
                    Some(batch) => {
                        let Some(batch) = skip_rows(batch, &mut self.skip) else {
                            continue;
                        };
                        *rows += batch.num_rows() as u64;
                        let path = path.clone();
                        return self.conform(batch, &path).map(Some);
                    }
                    None => {
                        tracing::debug!(node = %self.node, file = %path.display(), rows = *rows, "file done");
                        self.done.insert(path.clone());
                        self.current = None;
                        self.skip = 0;
                    }
                }
            }
            if !self.ready.is_empty() {
                let path = self.ready.remove(0);
                let reader = self.open(&path)?;
                self.last_file = Instant::now();
                self.current = Some((path, reader, 0));
                continue;
            }
            if self.last_scan.is_none_or(|at| at.elapsed() >= poll) {
                self.scan()?;
                if !self.ready.is_empty() {
                    continue;
                }
            }
            if let Some(idle) = self.config.end_after_idle_ms {
                if self.seen.is_empty() && self.last_file.elapsed() >= Duration::from_millis(idle) {
                    return Ok(None);
                }
            }
            // Nothing to read yet: hand back an empty batch so the run sees
            // stop, pause and checkpoints while waiting.
            std::thread::sleep(poll.min(Duration::from_millis(50)));
            return Ok(Some(RecordBatch::new_empty(self.schema())));
        }
    }

    fn bad_records(&mut self) -> Vec<BadRecord> {
        match &mut self.current {
            Some((_, reader, _)) => reader.bad_records(),
            None => Vec::new(),
        }
    }

    fn position(&self) -> Option<serde_json::Value> {
        let (current, rows) = match &self.current {
            Some((path, _, rows)) => (Some(path.display().to_string()), *rows),
            None => (None, 0),
        };
        Some(serde_json::json!({
            "done": self.done.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "current": current,
            "rows": rows,
        }))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let bad = || Error::source(&self.node, format!("not a directory position: {position}"));
        let done = position
            .get("done")
            .and_then(|d| d.as_array())
            .ok_or_else(bad)?;
        self.done = done
            .iter()
            .filter_map(|p| p.as_str().map(PathBuf::from))
            .collect();
        self.current = None;
        self.ready.clear();
        self.seen.clear();
        if let Some(path) = position.get("current").and_then(|c| c.as_str()) {
            let path = PathBuf::from(path);
            let rows = position.get("rows").and_then(|r| r.as_u64()).unwrap_or(0);
            match self.open(&path) {
                Ok(reader) => {
                    self.skip = rows;
                    self.current = Some((path, reader, rows));
                }
                Err(e) => {
                    tracing::warn!(node = %self.node, file = %path.display(), error = %e,
                        "the file being read at the checkpoint is gone; its remaining rows are skipped");
                    self.done.insert(path);
                }
            }
        }
        Ok(())
    }
}
