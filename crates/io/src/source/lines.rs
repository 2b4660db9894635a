//! Micro-batches of text lines (NDJSON objects or CSV records) for the
//! unbounded line sources: lines collect until `max_rows` of them are
//! there or the oldest has waited `max_delay`, whichever comes first, then
//! decode into one Arrow batch with the source's declared schema.

use std::io::Cursor;
use std::time::{Duration, Instant};

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

/// How each line is encoded.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// One JSON object per line.
    Ndjson,
    /// One CSV record per line (no header; a record may not span lines).
    Csv,
}

/// Lines waiting to become a batch.
pub(crate) struct LineBatcher {
    schema: SchemaRef,
    format: LineFormat,
    delimiter: u8,
    max_rows: usize,
    max_delay: Duration,
    buffer: Vec<u8>,
    lines: usize,
    oldest: Option<Instant>,
}

impl LineBatcher {
    pub(crate) fn new(
        schema: SchemaRef,
        format: LineFormat,
        delimiter: u8,
        max_rows: usize,
        max_delay: Duration,
    ) -> LineBatcher {
        LineBatcher {
            schema,
            format,
            delimiter,
            max_rows: max_rows.max(1),
            max_delay,
            buffer: Vec::new(),
            lines: 0,
            oldest: None,
        }
    }

    /// Adds one line (without its newline); blank lines are ignored.
    pub(crate) fn push(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.buffer.extend_from_slice(line);
        self.buffer.push(b'\n');
        self.lines += 1;
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Lines waiting.
    pub(crate) fn len(&self) -> usize {
        self.lines
    }

    /// Whether `max_rows` lines are waiting.
    pub(crate) fn full(&self) -> bool {
        self.lines >= self.max_rows
    }

    /// Whether a batch is due: full, or the oldest line waited `max_delay`.
    pub(crate) fn due(&self) -> bool {
        self.full() || self.oldest.is_some_and(|t| t.elapsed() >= self.max_delay)
    }

    /// How long until a batch is due by time (`None`: nothing waits).
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.oldest
            .map(|t| self.max_delay.saturating_sub(t.elapsed()))
    }

    /// Decodes every waiting line into one batch and starts over.
    pub(crate) fn take(&mut self) -> Result<Option<RecordBatch>, String> {
        if self.lines == 0 {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.buffer);
        self.lines = 0;
        self.oldest = None;
        decode(&self.schema, self.format, self.delimiter, false, &bytes).map(Some)
    }
}

/// Decodes NDJSON or CSV text (with or without a header line) into one
/// batch of `schema`; the error names the format.
pub(crate) fn decode(
    schema: &SchemaRef,
    format: LineFormat,
    delimiter: u8,
    header: bool,
    bytes: &[u8],
) -> Result<RecordBatch, String> {
    let (name, batches) = match format {
        LineFormat::Ndjson => (
            "NDJSON",
            arrow::json::ReaderBuilder::new(schema.clone())
                .build(Cursor::new(bytes))
                .and_then(|r| r.collect::<Result<Vec<_>, _>>()),
        ),
        LineFormat::Csv => (
            "CSV",
            arrow::csv::ReaderBuilder::new(schema.clone())
                .with_header(header)
                .with_delimiter(delimiter)
                .build(Cursor::new(bytes))
                .and_then(|r| r.collect::<Result<Vec<_>, _>>()),
        ),
    };
    let batches = batches.map_err(|e| format!("{name}: {e}"))?;
    concat_batches(schema, &batches).map_err(|e| e.to_string())
}
