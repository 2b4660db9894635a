//! `type = "stdout"`: a pretty table for small outputs, or CSV/NDJSON for
//! piping into other tools.

use std::io::Write;

use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use serde::Deserialize;

use super::{Sink, SinkContext};
use crate::{Error, Result};

/// How a `stdout` sink prints.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StdoutFormat {
    /// A bordered table at the end of the run (up to `max_rows` rows).
    #[default]
    Table,
    /// CSV with a header, streamed as batches arrive.
    Csv,
    /// One JSON object per line, streamed as batches arrive.
    Ndjson,
}

/// A `type = "stdout"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// `format`: `"table"` (default), `"csv"` or `"ndjson"`.
    #[serde(default)]
    pub format: StdoutFormat,
    /// `max_rows`: rows shown by `table` (default 50); the rest are counted.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
}

fn default_max_rows() -> usize {
    50
}

struct StdoutSink {
    node: String,
    config: StdoutSinkConfig,
    held: Vec<RecordBatch>,
    held_rows: usize,
    total_rows: usize,
    wrote_header: bool,
}

impl StdoutSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        Ok(Box::new(StdoutSink {
            node: ctx.name.to_string(),
            config: self.clone(),
            held: Vec::new(),
            held_rows: 0,
            total_rows: 0,
            wrote_header: false,
        }))
    }
}

impl StdoutSink {
    fn fail(&self, e: impl Into<weir_core::Cause>) -> Error {
        Error::sink_from(&self.node, "stdout", e)
    }
}

impl Sink for StdoutSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.total_rows += batch.num_rows();
        let mut out = std::io::stdout().lock();
        match self.config.format {
            StdoutFormat::Table => {
                let take = (self.config.max_rows - self.held_rows).min(batch.num_rows());
                if take > 0 {
                    self.held.push(batch.slice(0, take));
                    self.held_rows += take;
                }
                Ok(())
            }
            StdoutFormat::Csv => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(!self.wrote_header)
                    .build(&mut out);
                self.wrote_header = true;
                let batch = super::json_text::nested_as_json(batch).map_err(|e| self.fail(e))?;
                w.write(&batch).map_err(|e| self.fail(e))
            }
            StdoutFormat::Ndjson => {
                let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
                w.write(batch).map_err(|e| self.fail(e))?;
                w.finish().map_err(|e| self.fail(e))
            }
        }
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let mut out = std::io::stdout().lock();
        if self.config.format == StdoutFormat::Table {
            let table = pretty_format_batches(&self.held).map_err(|e| self.fail(e))?;
            writeln!(out, "{table}").map_err(|e| self.fail(e))?;
            if self.total_rows > self.held_rows {
                writeln!(out, "… {} more rows", self.total_rows - self.held_rows)
                    .map_err(|e| self.fail(e))?;
            }
        }
        out.flush().map_err(|e| self.fail(e))
    }

    fn abort(self: Box<Self>) {}
}
