//! `type = "ndjson"`: one JSON object per row.

use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::json::LineDelimitedWriter;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::file::{flushed, FileSink, Format, Out};
use super::{Sink, SinkContext};
use crate::Result;

/// A `type = "ndjson"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NdjsonSinkConfig {
    /// `path`: the output file, relative to the manifest.
    pub path: PathBuf,
}

impl NdjsonSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        FileSink::<NdjsonFormat>::open(ctx, &self.path, ())
    }
}

pub(crate) struct NdjsonFormat(LineDelimitedWriter<Out>);

impl Format for NdjsonFormat {
    type Options = ();

    fn create(out: Out, _schema: &SchemaRef, _: &()) -> Result<Self, String> {
        Ok(NdjsonFormat(LineDelimitedWriter::new(out)))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.0.write(batch).map_err(|e| e.to_string())
    }

    fn close(mut self) -> Result<Out, String> {
        self.0.finish().map_err(|e| e.to_string())?;
        flushed(self.0.into_inner())
    }
}
