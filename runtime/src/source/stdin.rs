//! `type = "stdin"`: CSV or NDJSON piped into `weir run`.

use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::Arc;

use arrow::csv::ReaderBuilder as CsvReaderBuilder;
use arrow::datatypes::SchemaRef;
use arrow::json::reader::infer_json_schema;
use arrow::json::ReaderBuilder as JsonReaderBuilder;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::bad::{self, BadRecord, BadRecords, OnBadRecord};
use super::files::BatchIter;
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
                    .map_err(|e| Error::source(node, format!("stdin: {e}")))?
                    == 0
                {
                    break;
                }
            }
        }
        let fail = |e: arrow::error::ArrowError| Error::source(node, format!("stdin: {e}"));
        let delimiter = u8::try_from(self.delimiter)
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| Error::source(node, "`delimiter` must be one ASCII character"))?;
        let schema = match (&self.schema, self.format) {
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
                    schema.clone(),
                    delimiter,
                    self.header,
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
        let reader = BufReader::new(Cursor::new(sample).chain(input));
        let batches: BatchIter = match self.format {
            StdinFormat::Csv => Box::new(
                CsvReaderBuilder::new(schema.clone())
                    .with_header(self.header)
                    .with_delimiter(delimiter)
                    .with_batch_size(ctx.batch_size)
                    .build(reader)
                    .map_err(fail)?,
            ),
            StdinFormat::Ndjson => Box::new(
                JsonReaderBuilder::new(schema.clone())
                    .with_batch_size(ctx.batch_size)
                    .build(reader)
                    .map_err(fail)?,
            ),
        };
        Ok(Box::new(StdinSource {
            schema,
            batches,
            node: node.to_string(),
            bad,
        }))
    }
}

impl Source for StdinSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match self.batches.next() {
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(e)) => Err(Error::source(&self.node, format!("stdin: {e}"))),
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
