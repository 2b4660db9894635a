//! `type = "ipc"`: an Arrow IPC file (random-access format).

use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::file::{FileSink, Format, Out};
use super::{Sink, SinkContext};
use crate::Result;

/// A `type = "ipc"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpcSinkConfig {
    /// `path`: the output file, relative to the manifest.
    pub path: PathBuf,
}

impl IpcSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        FileSink::<IpcFormat>::open(ctx, &self.path, ())
    }
}

pub(crate) struct IpcFormat(FileWriter<Out>);

impl Format for IpcFormat {
    type Options = ();

    fn create(out: Out, schema: &SchemaRef, _: &()) -> Result<Self, String> {
        FileWriter::try_new(out, schema)
            .map(IpcFormat)
            .map_err(|e| e.to_string())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.0.write(batch).map_err(|e| e.to_string())
    }

    fn close(mut self) -> Result<Out, String> {
        self.0.finish().map_err(|e| e.to_string())?;
        self.0.into_inner().map_err(|e| e.to_string())
    }
}
