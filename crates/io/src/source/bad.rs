//! Bad input records: `on_bad_record = "fail" | "skip" | "dead_letter"`.
//!
//! Under `fail` (the default) a source reads at full speed and the first
//! bad record fails the run, naming file and line. Under `skip` and
//! `dead_letter` a batch that fails to decode is re-decoded record by
//! record: good records carry on in order, bad ones are counted (and, for
//! `dead_letter`, sent to `NODE.dead_letter` with file, line and text).

use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::{Error, Result};

/// What a source does with a record it can't read.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRecord {
    /// Fail the run, naming file, line and text.
    #[default]
    Fail,
    /// Drop the record, count it, carry on.
    Skip,
    /// Send it to the sinks reading `NODE.dead_letter`.
    DeadLetter,
}

/// One record a source could not read.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRecord {
    /// The file (or `stdin`).
    pub file: String,
    /// Where in it: `line 12`, `row group 3`, or `file`.
    pub location: String,
    /// The offending text, truncated to [`MAX_TEXT`] characters.
    pub text: String,
    /// Why it was rejected.
    pub error: String,
}

/// Longest offending text kept in a report.
pub const MAX_TEXT: usize = 200;

impl BadRecord {
    /// A bad record in `file` at `location`.
    pub fn new(
        file: &Path,
        location: impl Into<String>,
        text: &str,
        error: impl std::fmt::Display,
    ) -> Self {
        let mut text: String = text
            .trim_end_matches(['\r', '\n'])
            .chars()
            .take(MAX_TEXT)
            .collect();
        if text.len() < text.trim_end().len() {
            text.push('…');
        }
        BadRecord {
            file: file.display().to_string(),
            location: location.into(),
            text,
            error: error.to_string(),
        }
    }

    /// As a run-failing error of source `node`.
    pub fn into_error(self, node: &str) -> Error {
        Error::source(
            node,
            format!(
                "{} {}: {} (record: {:?})",
                self.file, self.location, self.error, self.text
            ),
        )
    }
}

/// An arrow error's message without arrow's category prefix (`Csv error:
/// `, `Parser error: `): weir's messages say where and what already.
pub(crate) fn plain_message(e: &arrow::error::ArrowError) -> String {
    use arrow::error::ArrowError::*;
    match e {
        CsvError(m)
        | ParseError(m)
        | JsonError(m)
        | ParquetError(m)
        | IpcError(m)
        | InvalidArgumentError(m) => m.clone(),
        ExternalError(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// Where a source's readers leave bad records for the executor.
pub type BadRecords = Arc<Mutex<Vec<BadRecord>>>;

/// Takes what has accumulated.
pub fn drain(bad: &BadRecords) -> Vec<BadRecord> {
    bad.lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

/// Adds one.
pub fn push(bad: &BadRecords, record: BadRecord) {
    if let Ok(mut v) = bad.lock() {
        v.push(record);
    }
}

/// The schema of a source's `NODE.dead_letter` output.
pub fn source_dead_letter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("_file", DataType::Utf8, false),
        Field::new("_location", DataType::Utf8, false),
        Field::new("_record", DataType::Utf8, false),
        Field::new("_error", DataType::Utf8, false),
        Field::new("_node", DataType::Utf8, false),
        Field::new(
            "_failed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// Bad records as one dead-letter batch.
pub fn source_dead_letter_batch(node: &str, records: &[BadRecord]) -> Result<RecordBatch> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    let strings = |f: fn(&BadRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(records.iter().map(f)))
    };
    RecordBatch::try_new(
        source_dead_letter_schema(),
        vec![
            strings(|r| &r.file),
            strings(|r| &r.location),
            strings(|r| &r.text),
            strings(|r| &r.error),
            Arc::new(StringArray::from(vec![node; records.len()])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![now; records.len()]).with_timezone("UTC"),
            ),
        ],
    )
    .map_err(|e| Error::source(node, e))
}
