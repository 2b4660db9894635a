//! `refresh_ms`: a bounded source (a file or glob, an SQLite or PostgreSQL
//! table or query) read again whenever it changed, each read a complete
//! version of a table that replaces the one before — the table side of an
//! enrichment join, kept fresh while the stream flows.
//!
//! - **Change**: files are compared by name, size and modification time
//!   every `refresh_ms`; a database has no such mark and is read again
//!   every `refresh_ms`, its read sent only when its content changed.
//! - **Whole versions**: a version is read completely into memory before
//!   any of it is sent, then sent with a `complete` mark after its last
//!   batch (a join swaps tables there, at a batch boundary). A read that
//!   fails (a file caught half-written, a database down) sends nothing:
//!   the version before stays, with a warning, and the next check tries
//!   again. A version with no rows is not sent either: an emptied table
//!   is far more often a writer's accident than the truth.
//! - **Checkpoints** are taken only between versions, so one never holds
//!   half a table. The position is the last version's mark: a restart
//!   from a checkpoint reads the source again only if it changed since.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use serde_json::json;

use super::bad::BadRecord;
use super::schema::decls;
use super::{files, Source, SourceConfig, SourceContext};
use crate::{Error, Result};

/// The shortest `refresh_ms` accepted.
const MIN_REFRESH: Duration = Duration::from_millis(10);
/// How long an idle `next_batch` waits at most, so stops and checkpoints
/// are seen promptly.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// A source read again whenever it changed.
pub(crate) struct Refreshing {
    name: String,
    base_dir: PathBuf,
    batch_size: usize,
    config: SourceConfig,
    every: Duration,
    schema: SchemaRef,
    /// The first read's source, opened at build time (its schema is the
    /// node's) and the change mark taken just before it opened; taken
    /// by the first `next_batch`.
    first: Option<(Box<dyn Source>, Option<String>)>,
    /// The version being sent.
    queued: VecDeque<RecordBatch>,
    bad: Vec<BadRecord>,
    /// The mark of the last version sent (`None`: none yet): files' names,
    /// sizes and times, or a database read's content digest.
    version: Option<String>,
    /// The mark of the last read not sent (failed, or no rows), so it is
    /// not read and warned of again until it changes.
    passed: Option<String>,
    /// Whether a version was read (in this run or before the checkpoint
    /// it resumed from): a failed read then keeps that version.
    read_once: bool,
    checked: Option<Instant>,
    complete: bool,
}

impl Refreshing {
    /// Opens `config`'s source once (its schema is the node's) and wraps it.
    pub(crate) fn build(
        config: &SourceConfig,
        ctx: SourceContext<'_>,
        refresh_ms: u64,
    ) -> Result<Box<dyn Source>> {
        let every = Duration::from_millis(refresh_ms);
        if every < MIN_REFRESH {
            return Err(Error::source(
                ctx.name,
                format!("`refresh_ms = {refresh_ms}` is too short; use at least 10"),
            ));
        }
        // The mark is taken before the first source opens: a file replaced
        // in between is then read again, never kept under the new mark.
        let first_mark = mark_of(config, ctx.name, ctx.base_dir)?;
        let first = config.build_once(ctx)?;
        Ok(Box::new(Refreshing {
            name: ctx.name.to_string(),
            base_dir: ctx.base_dir.to_path_buf(),
            batch_size: ctx.batch_size,
            config: pinned(config, &first.schema()),
            every,
            schema: first.schema(),
            first: Some((first, first_mark)),
            queued: VecDeque::new(),
            bad: Vec::new(),
            version: None,
            passed: None,
            read_once: false,
            checked: None,
            complete: false,
        }))
    }

    /// The source's change mark: every matched file's name, size and
    /// modification time; `None` for a database.
    fn mark(&self) -> Result<Option<String>> {
        mark_of(&self.config, &self.name, &self.base_dir)
    }

    /// A new version's columns must be the table's: not a passing
    /// accident to wait out, but a change the pipeline must be restarted
    /// for (the nodes downstream were checked against the old columns).
    fn same_columns(&self, source: &dyn Source) -> Result<()> {
        if source.schema().fields() == self.schema.fields() {
            return Ok(());
        }
        Err(Error::source(
            &self.name,
            format!(
                "the refreshed table's columns changed ({} vs {}); a refreshed table keeps \
                 its columns — restart the pipeline to take the new ones (declare `schema` \
                 to pin inferred types)",
                source.schema(),
                self.schema
            ),
        ))
    }

    /// Reads a whole version from `source`.
    fn read(&mut self, mut source: Box<dyn Source>) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        while let Some(batch) = source.next_batch()? {
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
        }
        self.bad.extend(source.bad_records());
        Ok(batches)
    }

    /// Whether `refresh_ms` passed since the last check; waits a little
    /// when not.
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if let Some(checked) = self.checked {
            let due = checked + self.every;
            if now < due {
                std::thread::sleep((due - now).min(IDLE_WAIT));
                return false;
            }
        }
        self.checked = Some(now);
        true
    }

    /// Reads a whole version (from the source opened at build time, or a
    /// new one). The outer error fails the run (other columns); the inner
    /// one is a read that may succeed next time.
    fn read_version(&mut self, first: Option<Box<dyn Source>>) -> Result<Result<Vec<RecordBatch>>> {
        let opened = match first {
            Some(source) => Ok(source),
            None => self.config.build_once(SourceContext {
                name: &self.name,
                base_dir: &self.base_dir,
                batch_size: self.batch_size,
            }),
        };
        if let Ok(source) = &opened {
            self.same_columns(source.as_ref())?;
        }
        Ok(opened.and_then(|source| self.read(source)))
    }

    /// Checks for a change and, when there is one, reads the new version
    /// into the queue.
    fn refresh(&mut self) -> Result<()> {
        if !self.due() {
            return Ok(());
        }
        let (first, mark) = match self.first.take() {
            Some((source, mark)) => (Some(source), mark),
            None => (None, self.mark()?),
        };
        if mark.is_some() && (mark == self.version || mark == self.passed) {
            // Unchanged (or, after a restart, as the checkpoint left it:
            // the join restored that version already).
            return Ok(());
        }
        let batches = match self.read_version(first)? {
            Ok(batches) => batches,
            // The first version has nothing to fall back on.
            Err(e) if !self.read_once => return Err(e),
            Err(e) => {
                tracing::warn!(source = %self.name, error = %e,
                    "reading the table again failed; the previous version stays until it changes");
                self.passed = mark;
                return Ok(());
            }
        };
        // A database has no change mark: its content is one.
        let version = Some(mark.unwrap_or_else(|| digest(&batches)));
        if version == self.version || version == self.passed {
            return Ok(());
        }
        if batches.is_empty() && self.read_once {
            tracing::warn!(source = %self.name,
                "the table read has no rows: the previous version stays (see refresh_ms in docs/joins.md)");
            self.passed = version;
            return Ok(());
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if self.read_once {
            tracing::info!(source = %self.name, rows, "the table changed; sending its new version");
        } else {
            // A newcomer's bounded pipeline would otherwise seem to hang.
            tracing::info!(source = %self.name, rows, refresh_ms = self.every.as_millis() as u64,
                "table read; it is read again whenever it changes, so the pipeline runs until stopped (Ctrl-C)");
        }
        self.queued.extend(batches);
        // The very first version may be empty: a join then has an empty table.
        self.complete = self.queued.is_empty();
        self.read_once = true;
        self.version = version;
        Ok(())
    }

    fn empty(&self) -> RecordBatch {
        RecordBatch::new_empty(self.schema.clone())
    }
}

/// `config`'s change mark: every matched file's name, size and
/// modification time; `None` for a database.
fn mark_of(config: &SourceConfig, name: &str, base_dir: &Path) -> Result<Option<String>> {
    let Some(path) = config.path() else {
        return Ok(None);
    };
    let mut mark = String::new();
    for file in files::expand(name, base_dir, path)? {
        let meta =
            std::fs::metadata(&file).map_err(|e| Error::source_from(name, file.display(), e))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        mark.push_str(&format!(
            "{}:{}:{}\n",
            file.display(),
            meta.len(),
            modified.as_nanos()
        ));
    }
    Ok(Some(mark))
}

/// `config` with the types its first read inferred declared: a later
/// version is read with them (a price column of whole numbers stays
/// float64; a value that doesn't parse is a failed read that keeps the old
/// table), rather than re-inferred into other columns that would stop the
/// pipeline.
fn pinned(config: &SourceConfig, schema: &SchemaRef) -> SourceConfig {
    let mut config = config.clone();
    match &mut config {
        SourceConfig::Csv(c) if c.schema.is_none() => c.schema = Some(decls(schema)),
        SourceConfig::Ndjson(c) if c.schema.is_none() => c.schema = Some(decls(schema)),
        _ => {}
    }
    config
}

/// A digest of a read's content (its Arrow IPC stream): a database's
/// version mark, so an unchanged table is not sent again.
fn digest(batches: &[RecordBatch]) -> String {
    struct Hashing(DefaultHasher);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(DefaultHasher::new());
    if let Some(first) = batches.first() {
        if let Ok(mut writer) = StreamWriter::try_new(&mut hashing, &first.schema()) {
            for batch in batches {
                let _ = writer.write(batch);
            }
            let _ = writer.finish();
        }
    }
    format!("content:{:016x}", hashing.0.finish())
}

impl Source for Refreshing {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.queued.is_empty() {
            self.refresh()?;
        }
        match self.queued.pop_front() {
            Some(batch) => {
                self.complete = self.queued.is_empty();
                Ok(Some(batch))
            }
            // Never the end: an empty batch lets stops and checkpoints in.
            None => Ok(Some(self.empty())),
        }
    }

    fn bad_records(&mut self) -> Vec<BadRecord> {
        std::mem::take(&mut self.bad)
    }

    fn drain(&mut self) -> Result<Vec<RecordBatch>> {
        // A stop mid-version sends the rest of it: the version read is
        // whole, and a checkpoint must not hold half a table.
        self.complete = !self.queued.is_empty();
        Ok(self.queued.drain(..).collect())
    }

    fn position(&self) -> Option<serde_json::Value> {
        Some(json!({ "version": self.version, "read": self.read_once }))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let version = position.get("version").ok_or_else(|| {
            Error::checkpoint("a refreshed table's checkpoint position has no version")
        })?;
        // A file marked in the checkpoint is not read again unless it
        // changed; a database always is (it has no mark).
        self.version = version.as_str().map(str::to_string);
        self.read_once = position.get("read").and_then(|r| r.as_bool()) == Some(true);
        Ok(())
    }

    fn take_complete(&mut self) -> bool {
        std::mem::take(&mut self.complete)
    }

    fn at_boundary(&self) -> bool {
        self.queued.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A fresh directory holding `t.csv`, and a `refresh_ms = 10` csv
    /// source config over it.
    fn setup(test: &str, csv: &str) -> (PathBuf, SourceConfig) {
        let dir = std::env::temp_dir().join(format!("weir-refresh-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t.csv"), csv).unwrap();
        let config = SourceConfig::Csv(
            serde_json::from_value(json!({
                "path": "t.csv",
                "refresh_ms": 10,
                "schema": [{ "name": "id", "type": "int64" }],
            }))
            .unwrap(),
        );
        (dir, config)
    }

    fn open(dir: &Path, config: &SourceConfig) -> Box<dyn Source> {
        let ctx = SourceContext {
            name: "t",
            base_dir: dir,
            batch_size: 2,
        };
        config.build(ctx).unwrap()
    }

    /// Rewrites `t.csv` so its mark changes (another size, or a later time).
    fn rewrite(dir: &Path, csv: &str) {
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.join("t.csv"), csv).unwrap();
    }

    /// Calls `next_batch` until a version is complete (or `calls` run
    /// out): the rows sent, in order.
    fn next_version(source: &mut dyn Source, calls: usize) -> Option<Vec<i64>> {
        let mut rows = Vec::new();
        for _ in 0..calls {
            let batch = source.next_batch().unwrap().expect("never ends");
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>();
            rows.extend(ids.unwrap().values().iter().copied());
            if source.take_complete() {
                return Some(rows);
            }
            assert!(rows.is_empty() || !source.at_boundary(), "mid-version");
        }
        assert!(rows.is_empty(), "half a version: {rows:?}");
        None
    }

    #[test]
    fn a_changed_file_is_sent_again_whole_and_marked_complete_after_its_last_batch() {
        let (dir, config) = setup("changed", "id\n1\n2\n3\n");
        let mut source = open(&dir, &config);
        assert_eq!(next_version(source.as_mut(), 10), Some(vec![1, 2, 3]));
        assert_eq!(next_version(source.as_mut(), 5), None, "unchanged: nothing");
        rewrite(&dir, "id\n4\n5\n6\n7\n");
        assert_eq!(next_version(source.as_mut(), 10), Some(vec![4, 5, 6, 7]));
    }

    #[test]
    fn a_failed_or_empty_read_sends_nothing_and_keeps_the_version() {
        let (dir, config) = setup("failed", "id\n1\n");
        let mut source = open(&dir, &config);
        assert_eq!(next_version(source.as_mut(), 10), Some(vec![1]));
        rewrite(&dir, "id\n2\nnot a number\n");
        assert_eq!(next_version(source.as_mut(), 5), None, "a bad read");
        rewrite(&dir, "id\n");
        assert_eq!(next_version(source.as_mut(), 5), None, "no rows");
        rewrite(&dir, "id\n3\n");
        assert_eq!(next_version(source.as_mut(), 10), Some(vec![3]));
    }

    #[test]
    fn a_restart_at_an_unchanged_file_reads_nothing_and_at_a_changed_one_reads_it() {
        let (dir, config) = setup("restart", "id\n1\n");
        let mut source = open(&dir, &config);
        assert_eq!(next_version(source.as_mut(), 10), Some(vec![1]));
        let position = source.position().unwrap();
        let mut resumed = open(&dir, &config);
        resumed.seek(&position).unwrap();
        assert_eq!(next_version(resumed.as_mut(), 5), None);
        rewrite(&dir, "id\n2\n");
        let mut resumed = open(&dir, &config);
        resumed.seek(&position).unwrap();
        assert_eq!(next_version(resumed.as_mut(), 10), Some(vec![2]));
    }

    #[test]
    fn a_later_version_is_read_with_the_types_the_first_read_inferred() {
        let (dir, _) = setup("pinned", "id\n1\n");
        let config = SourceConfig::Csv(
            serde_json::from_value(json!({ "path": "t.csv", "refresh_ms": 10 })).unwrap(),
        );
        std::fs::write(dir.join("t.csv"), "id,price\n1,2.5\n").unwrap();
        let mut source = open(&dir, &config);
        let price = |source: &mut dyn Source| loop {
            let batch = source.next_batch().unwrap().expect("never ends");
            if batch.num_rows() > 0 {
                return batch.column(1).data_type().clone();
            }
        };
        assert_eq!(price(source.as_mut()), arrow::datatypes::DataType::Float64);
        // Whole numbers alone would infer int64.
        rewrite(&dir, "id,price\n2,3\n");
        assert_eq!(price(source.as_mut()), arrow::datatypes::DataType::Float64);
    }

    #[test]
    fn a_version_with_other_columns_is_an_error_that_asks_for_a_restart() {
        let (dir, _) = setup("columns", "id\n1\n");
        let config = SourceConfig::Csv(
            serde_json::from_value(json!({ "path": "t.csv", "refresh_ms": 10 })).unwrap(),
        );
        let mut source = open(&dir, &config);
        assert_eq!(next_version(source.as_mut(), 10), Some(vec![1]));
        rewrite(&dir, "id,name\n2,b\n");
        let error = (0..5)
            .find_map(|_| source.next_batch().err())
            .expect("an error");
        assert!(
            error.to_string().contains("restart the pipeline"),
            "{error}"
        );
    }
}
