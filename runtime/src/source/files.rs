//! File sets behind `path = "…"` (a glob), read one file after another.

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::bad::{self, BadRecord, BadRecords, OnBadRecord};
use super::Source;
use crate::manifest::resolve;
use crate::{Error, Result};

/// Batches of one open file.
pub(crate) type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// Expands `pattern` (relative to `base`) to the matching files, sorted, so
/// a run reads them in a stable order. No match is an error.
pub(crate) fn expand(node: &str, base: &Path, pattern: &Path) -> Result<Vec<PathBuf>> {
    let full = resolve(base, pattern);
    let text = full.to_string_lossy();
    let paths = glob::glob(&text)
        .map_err(|e| Error::source(node, format!("bad path pattern {text:?}: {e}")))?;
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

/// Opens a file for reading, naming it on failure.
pub(crate) fn open(node: &str, path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path)
        .map_err(|e| Error::source(node, format!("can't open {}: {e}", path.display())))
}

/// Reads a list of files in order with one opener, naming the file in
/// every error.
pub(crate) struct MultiFile<F> {
    node: String,
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(PathBuf, BatchIter)>,
    open: F,
    policy: OnBadRecord,
    pub(crate) bad: BadRecords,
}

impl<F: FnMut(&Path) -> Result<BatchIter> + Send> MultiFile<F> {
    pub(crate) fn new(node: &str, files: Vec<PathBuf>, open: F) -> Self {
        MultiFile {
            node: node.to_string(),
            files: files.into_iter(),
            current: None,
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
        e: impl std::fmt::Display,
    ) -> Result<()> {
        if self.policy == OnBadRecord::Fail {
            return Err(Error::source(
                &self.node,
                format!("{}: {e}", path.display()),
            ));
        }
        bad::push(&self.bad, BadRecord::new(path, location, "", e));
        Ok(())
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some((path, batches)) = &mut self.current {
                match batches.next() {
                    Some(Ok(batch)) if batch.num_rows() == 0 => continue,
                    Some(Ok(batch)) => return Ok(Some(batch)),
                    Some(Err(e)) => {
                        // The rest of this file is unreadable; under skip
                        // and dead_letter the next file is read.
                        let path = path.clone();
                        self.current = None;
                        self.tolerate(&path, "while reading", e)?;
                    }
                    None => self.current = None,
                }
            }
            match self.files.next() {
                Some(path) => {
                    tracing::debug!(node = %self.node, file = %path.display(), "reading");
                    match (self.open)(&path) {
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
}
