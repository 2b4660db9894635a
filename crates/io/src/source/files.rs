//! File sets behind `path = "…"` (a glob), read one file after another.

use std::path::{Path, PathBuf};

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::bad::{self, BadRecord, BadRecords, OnBadRecord};
use super::Source;
use crate::{Error, Result};
use weir_core::paths::resolve;

/// Batches of one open file.
pub(crate) type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// Expands `pattern` (relative to `base`) to the matching files, sorted, so
/// a run reads them in a stable order. No match is an error.
pub(crate) fn expand(node: &str, base: &Path, pattern: &Path) -> Result<Vec<PathBuf>> {
    let full = resolve(base, pattern);
    let text = full.to_string_lossy();
    let paths = glob::glob(&text)
        .map_err(|e| Error::source_from(node, format!("bad path pattern {text:?}"), e))?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| Error::source(node, e))?;
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::source(
            node,
            format!("no file matches {text:?}; check `path` (relative paths start at the manifest's directory)"),
        ));
    }
    Ok(files)
}

/// Whether a later file of a set can be read as the first file's schema:
/// the same names and types in order. Nullability may narrow: a column the
/// first file allows nulls in may be required in a later one (Spark
/// writes nullable columns, other writers required ones); the reverse could
/// bring nulls into a column announced as having none.
pub(crate) fn fits(first: &Schema, later: &Schema) -> std::result::Result<(), String> {
    let same_shape = first.fields().len() == later.fields().len()
        && first.fields().iter().zip(later.fields()).all(|(a, b)| {
            a.name() == b.name()
                && a.data_type() == b.data_type()
                && (a.is_nullable() || !b.is_nullable())
        });
    if same_shape {
        Ok(())
    } else {
        Err(format!(
            "schema differs from the first file's ({later} vs {first}); a later file may make \
             a nullable column required, not the reverse"
        ))
    }
}

/// A later file's batches under the first file's schema (see [`fits`]).
pub(crate) fn restamped(batches: BatchIter, schema: SchemaRef) -> BatchIter {
    Box::new(batches.map(move |batch| {
        batch.and_then(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
    }))
}

/// Opens a file for reading, naming it on failure.
pub(crate) fn open(node: &str, path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path)
        .map_err(|e| Error::source_from(node, format!("can't open {}", path.display()), e))
}

/// Reads a list of files in order with one opener, naming the file in
/// every error.
pub(crate) struct MultiFile<F> {
    node: String,
    files: Vec<PathBuf>,
    /// Index of the next file to open.
    next_file: usize,
    current: Option<(PathBuf, BatchIter)>,
    /// Rows returned from the current file (a checkpoint's position).
    rows: u64,
    /// Rows of the current file still to pass over (resuming mid-file).
    skip: u64,
    open: F,
    policy: OnBadRecord,
    pub(crate) bad: BadRecords,
}

/// Drops the first `skip` rows of a file's batches (resuming mid-file);
/// `None` when the whole batch is passed over.
pub(crate) fn skip_rows(batch: RecordBatch, skip: &mut u64) -> Option<RecordBatch> {
    let n = batch.num_rows() as u64;
    if *skip >= n {
        *skip -= n;
        return None;
    }
    let from = std::mem::take(skip) as usize;
    Some(batch.slice(from, batch.num_rows() - from))
}

impl<F: FnMut(&Path) -> Result<BatchIter> + Send> MultiFile<F> {
    pub(crate) fn new(node: &str, files: Vec<PathBuf>, open: F) -> Self {
        MultiFile {
            node: node.to_string(),
            files,
            next_file: 0,
            current: None,
            rows: 0,
            skip: 0,
            open,
            policy: OnBadRecord::Fail,
            bad: BadRecords::default(),
        }
    }

    /// Under `skip` / `dead_letter`, a file that can't be opened or read
    /// any further is reported as a bad record and the next file is read.
    pub(crate) fn with_policy(mut self, policy: OnBadRecord, bad: BadRecords) -> Self {
        self.policy = policy;
        self.bad = bad;
        self
    }

    fn tolerate(
        &self,
        path: &std::path::Path,
        location: &str,
        e: impl Into<weir_core::Cause>,
    ) -> Result<()> {
        let e = e.into();
        if self.policy == OnBadRecord::Fail {
            return Err(Error::source_from(&self.node, path.display(), e));
        }
        bad::push(&self.bad, BadRecord::new(path, location, "", e));
        Ok(())
    }

    /// The file being read (its index) and the rows returned from it.
    pub(crate) fn position(&self) -> serde_json::Value {
        match &self.current {
            Some((path, _)) => serde_json::json!({
                "file": self.next_file - 1,
                "path": path.display().to_string(),
                "rows": self.rows,
            }),
            // Right after a seek: the resumed file is not open yet.
            None => serde_json::json!({ "file": self.next_file, "rows": self.skip }),
        }
    }

    /// Resumes at a [`position`](Self::position): files before it are
    /// passed over, and rows of it already returned.
    pub(crate) fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let file = position.get("file").and_then(serde_json::Value::as_u64);
        let rows = position.get("rows").and_then(serde_json::Value::as_u64);
        let (Some(file), Some(rows)) = (file, rows) else {
            return Err(Error::source(
                &self.node,
                format!("not a file position: {position}"),
            ));
        };
        let file = file as usize;
        if file > self.files.len() {
            return Err(Error::source(
                &self.node,
                format!(
                    "the checkpoint is at file {file} of {}; did the files change?",
                    self.files.len()
                ),
            ));
        }
        if let (Some(path), Some(expected)) = (
            self.files.get(file),
            position.get("path").and_then(serde_json::Value::as_str),
        ) {
            if path.display().to_string() != expected {
                return Err(Error::source(
                    &self.node,
                    format!(
                        "the checkpoint was reading {expected}, but file {file} is now {}",
                        path.display()
                    ),
                ));
            }
        }
        self.current = None;
        self.next_file = file;
        self.rows = rows;
        self.skip = rows;
        Ok(())
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some((path, batches)) = &mut self.current {
                let rows = self.rows;
                let next = weir_core::contain::contained(|| batches.next()).unwrap_or_else(|e| {
                    Some(Err(ArrowError::ExternalError(
                        format!("after row {rows}: {e}").into(),
                    )))
                });
                match next {
                    Some(Ok(batch)) if batch.num_rows() == 0 => continue,
                    Some(Ok(batch)) => {
                        let Some(batch) = skip_rows(batch, &mut self.skip) else {
                            continue;
                        };
                        self.rows += batch.num_rows() as u64;
                        return Ok(Some(batch));
                    }
                    Some(Err(e)) => {
                        // The rest of this file is unreadable; under skip
                        // and dead_letter the next file is read.
                        let path = path.clone();
                        self.current = None;
                        self.tolerate(&path, "while reading", bad::plain_message(&e))?;
                    }
                    None => {
                        self.current = None;
                        self.skip = 0;
                    }
                }
            }
            match self.files.get(self.next_file).cloned() {
                Some(path) => {
                    self.next_file += 1;
                    if self.skip == 0 {
                        self.rows = 0;
                    }
                    tracing::debug!(node = %self.node, file = %path.display(), "reading");
                    let open = &mut self.open;
                    let opened = weir_core::contain::contained(|| open(&path))
                        .unwrap_or_else(|e| Err(Error::source_from(&self.node, path.display(), e)));
                    match opened {
                        Ok(batches) => self.current = Some((path, batches)),
                        Err(Error::Source { message, .. }) if self.policy != OnBadRecord::Fail => {
                            bad::push(&self.bad, BadRecord::new(&path, "file", "", message));
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => return Ok(None),
            }
        }
    }
}

/// A source reading a set of files with one opener.
pub(crate) struct FileSource<F> {
    pub(crate) schema: SchemaRef,
    pub(crate) files: MultiFile<F>,
}

impl<F: FnMut(&Path) -> Result<BatchIter> + Send> Source for FileSource<F> {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.files.next_batch()
    }

    fn bad_records(&mut self) -> Vec<BadRecord> {
        bad::drain(&self.files.bad)
    }

    fn position(&self) -> Option<serde_json::Value> {
        Some(self.files.position())
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        self.files.seek(position)
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn schema(nullable: bool) -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, nullable),
            Field::new("name", DataType::Utf8, true),
        ])
    }

    #[test]
    fn a_later_file_may_make_a_nullable_column_required_not_the_reverse() {
        assert!(fits(&schema(true), &schema(true)).is_ok());
        assert!(fits(&schema(true), &schema(false)).is_ok());
        let err = fits(&schema(false), &schema(true)).unwrap_err();
        assert!(
            err.contains("schema differs from the first file's"),
            "{err}"
        );
        let renamed = Schema::new(vec![
            Field::new("ID", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]);
        assert!(fits(&schema(true), &renamed).is_err());
    }
}
