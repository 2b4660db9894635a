//! `type = "stdin"`: CSV or NDJSON piped into `weir run`.

use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use arrow::datatypes::SchemaRef;

use arrow::json::reader::infer_json_schema;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::bad::{self, BadRecord, BadRecords, OnBadRecord};
use super::files::BatchIter;
use super::lines::{LineBatcher, LineFormat};
use super::robust::{salvaging_csv, salvaging_ndjson};
use super::schema::{declared, ColumnDecl};
use super::{Source, SourceContext};
use crate::{Error, Result};

/// The format on standard input.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StdinFormat {
    /// Comma-separated (or `delimiter`) values.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// A `type = "stdin"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {
    /// `format`: `"csv"` or `"ndjson"`.
    pub format: StdinFormat,
    /// `delimiter`: CSV delimiter (default `,`).
    #[serde(default = "comma")]
    pub delimiter: char,
    /// `header`: CSV has a header line (default true).
    #[serde(default = "yes")]
    pub header: bool,
    /// `schema`: declared columns; inferred from the first `infer_rows`
    /// lines (buffered, then replayed) when absent.
    pub schema: Option<Vec<ColumnDecl>>,
    /// `infer_rows`: lines sampled to infer the schema (default 1000).
    #[serde(default = "super::csv::infer_rows")]
    pub infer_rows: usize,
    /// `on_bad_record`: `"fail"` (default), `"skip"` or `"dead_letter"`.
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
    /// `max_delay_ms`: the longest a line waits for its batch to fill
    /// (default 200), so a trickle on a pipe still flows. (Under `skip` /
    /// `dead_letter` batches are cut at `batch_size` rows only.)
    #[serde(default = "max_delay_ms")]
    pub max_delay_ms: u64,
}

fn max_delay_ms() -> u64 {
    200
}

fn comma() -> char {
    ','
}
fn yes() -> bool {
    true
}

struct StdinSource {
    schema: SchemaRef,
    batches: BatchIter,
    node: String,
    bad: BadRecords,
}

impl StdinConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        self.build_from(ctx, Box::new(std::io::stdin()))
    }

    /// Builds the source over any reader (standard input in a run).
    pub(crate) fn build_from(
        &self,
        ctx: SourceContext<'_>,
        input: Box<dyn Read + Send>,
    ) -> Result<Box<dyn Source>> {
        let node = ctx.name;
        let mut input = BufReader::new(input);
        // Buffer a sample to infer from, then replay it ahead of the rest.
        let mut sample = Vec::new();
        let sample_lines = self.infer_rows + usize::from(self.header);
        if self.schema.is_none() {
            for _ in 0..sample_lines {
                if input
                    .read_until(b'\n', &mut sample)
                    .map_err(|e| Error::source_from(node, "stdin", e))?
                    == 0
                {
                    break;
                }
            }
        }
        let fail = |e: arrow::error::ArrowError| Error::source_from(node, "stdin", e);
        let delimiter = u8::try_from(self.delimiter)
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| Error::source(node, "`delimiter` must be one ASCII character"))?;
        // A declared schema over CSV with a header is matched by name: the
        // header is read here and fixes the columns' order.
        let mut header = self.header;
        let schema = match (&self.schema, self.format) {
            (Some(columns), StdinFormat::Csv) if self.header => {
                let mut line = Vec::new();
                input
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::source_from(node, "stdin", e))?;
                header = false;
                by_header(node, columns, &line, delimiter)?
            }
            (Some(columns), _) => declared(columns),
            (None, StdinFormat::Csv) => {
                let format = arrow::csv::reader::Format::default()
                    .with_header(self.header)
                    .with_delimiter(delimiter);
                Arc::new(
                    format
                        .infer_schema(Cursor::new(&sample), None)
                        .map_err(fail)?
                        .0,
                )
            }
            (None, StdinFormat::Ndjson) => Arc::new(
                infer_json_schema(Cursor::new(&sample), None)
                    .map_err(fail)?
                    .0,
            ),
        };
        let bad = BadRecords::default();
        let label = std::path::Path::new("stdin");
        if self.on_bad_record != OnBadRecord::Fail {
            let input: Box<dyn Read + Send> = Box::new(Cursor::new(sample).chain(input));
            let batches: BatchIter = match self.format {
                StdinFormat::Csv => Box::new(salvaging_csv(
                    label,
                    input,
                    Arc::new(super::csv::Dialect {
                        // A header read above is a line passed over: bad
                        // records keep their physical line numbers.
                        skip_rows: usize::from(header != self.header),
                        ..super::csv::Dialect::plain(delimiter, header)
                    }),
                    Arc::new(super::csv::FileColumns::positional(&schema)),
                    ctx.batch_size,
                    bad.clone(),
                )),
                StdinFormat::Ndjson => Box::new(salvaging_ndjson(
                    label,
                    input,
                    schema.clone(),
                    ctx.batch_size,
                    bad.clone(),
                )),
            };
            return Ok(Box::new(StdinSource {
                schema,
                batches,
                node: node.to_string(),
                bad,
            }));
        }
        let reader = BufReader::with_capacity(1 << 16, Cursor::new(sample).chain(input));
        let format = match self.format {
            StdinFormat::Csv => LineFormat::Csv,
            StdinFormat::Ndjson => LineFormat::Ndjson,
        };
        let batcher = LineBatcher::new(
            schema.clone(),
            format,
            delimiter,
            ctx.batch_size,
            Duration::from_millis(self.max_delay_ms),
        );
        let (tx, lines) = mpsc::sync_channel(4);
        let skip_header = self.format == StdinFormat::Csv && header;
        std::thread::Builder::new()
            .name(format!("weir-{node}-stdin"))
            .spawn(move || read_lines(reader, skip_header, tx))
            .map_err(|e| Error::source_from(node, "can't start the stdin reader", e))?;
        Ok(Box::new(StdinLines {
            schema,
            node: node.to_string(),
            batcher,
            lines,
            ended: false,
        }))
    }
}

/// The columns of a CSV header `line`, typed by the declared `columns`
/// where they name them (text elsewhere); a declared column the header
/// lacks is an error naming it.
fn by_header(node: &str, columns: &[ColumnDecl], line: &[u8], delimiter: u8) -> Result<SchemaRef> {
    let names: Vec<String> = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .from_reader(line)
        .records()
        .next()
        .and_then(|r| r.ok())
        .map(|r| r.iter().map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(missing) = columns.iter().find(|c| !names.contains(&c.name)) {
        return Err(Error::source(
            node,
            format!(
                "`schema` declares column {:?}, but the header on stdin has no such column \
                 (its columns: {}); declared columns are matched by name",
                missing.name,
                names.join(", ")
            ),
        ));
    }
    Ok(Arc::new(arrow::datatypes::Schema::new(
        names
            .iter()
            .map(|n| match columns.iter().find(|c| &c.name == n) {
                Some(c) => arrow::datatypes::Field::new(n, c.data_type.0.clone(), c.nullable),
                None => arrow::datatypes::Field::new(n, arrow::datatypes::DataType::Utf8, true),
            })
            .collect::<Vec<_>>(),
    )))
}

/// Reads lines off a pipe in chunks: as many as are there without
/// waiting (up to 4,096), so a fast pipe moves in bulk and a slow one
/// line by line. An I/O error is sent as the last chunk.
fn read_lines<R: Read>(
    mut reader: BufReader<R>,
    mut skip_header: bool,
    tx: mpsc::SyncSender<std::io::Result<Vec<Vec<u8>>>>,
) {
    loop {
        let mut chunk = Vec::new();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => {
                    if !chunk.is_empty() {
                        let _ = tx.send(Ok(chunk));
                    }
                    return;
                }
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if !std::mem::take(&mut skip_header) {
                        chunk.push(line);
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
            if chunk.len() >= 4096 || reader.buffer().is_empty() {
                break;
            }
        }
        if tx.send(Ok(chunk)).is_err() {
            return;
        }
    }
}

/// Standard input as micro-batches: cut at `batch_size` lines or
/// `max_delay_ms` after the oldest waiting line.
struct StdinLines {
    schema: SchemaRef,
    node: String,
    batcher: LineBatcher,
    lines: mpsc::Receiver<std::io::Result<Vec<Vec<u8>>>>,
    ended: bool,
}

impl StdinLines {
    fn emit(&mut self) -> Result<Option<RecordBatch>> {
        self.batcher
            .take()
            .map_err(|e| Error::source_from(&self.node, "stdin", e))
    }
}

impl Source for StdinLines {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.batcher.due() || (self.ended && self.batcher.len() > 0) {
                return self.emit();
            }
            if self.ended {
                return Ok(None);
            }
            let wait = self
                .batcher
                .time_left()
                .unwrap_or(Duration::from_millis(100))
                .min(Duration::from_millis(100));
            match self.lines.recv_timeout(wait) {
                Ok(Ok(chunk)) => {
                    for line in chunk {
                        self.batcher.push(&line);
                    }
                }
                Ok(Err(e)) => return Err(Error::source_from(&self.node, "stdin", e)),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
                // Nothing came: let the run see stop, pause and checkpoints.
                Err(mpsc::RecvTimeoutError::Timeout) if self.batcher.len() == 0 => {
                    return Ok(Some(RecordBatch::new_empty(self.schema.clone())));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn drain(&mut self) -> Result<Vec<RecordBatch>> {
        Ok(self.emit()?.into_iter().collect())
    }

    fn delivery(&self) -> super::Delivery {
        super::Delivery::AtMostOnce
    }
}

impl Source for StdinSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match self.batches.next() {
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(e)) => Err(Error::source_from(&self.node, "stdin", e)),
            None => Ok(None),
        }
    }

    fn bad_records(&mut self) -> Vec<BadRecord> {
        bad::drain(&self.bad)
    }

    fn delivery(&self) -> super::Delivery {
        // A restarted run reads what is piped to it then; lines read
        // before a crash but not yet checkpointed are gone.
        super::Delivery::AtMostOnce
    }
}
