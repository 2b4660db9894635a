//! `type = "csv"`.

use std::path::PathBuf;

use arrow::csv::{Writer, WriterBuilder};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::file::{flushed, FileSink, Format, Out};
use super::json_text::nested_as_json;
use super::{Sink, SinkContext};
use crate::{Error, Result};

/// A `type = "csv"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvSinkConfig {
    /// `path`: the output file, relative to the manifest.
    pub path: PathBuf,
    /// `delimiter`: one ASCII character (default `,`).
    #[serde(default = "comma")]
    pub delimiter: char,
    /// `header`: write a header line (default true).
    #[serde(default = "yes")]
    pub header: bool,
}

fn comma() -> char {
    ','
}
fn yes() -> bool {
    true
}

impl CsvSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        let delimiter = u8::try_from(self.delimiter)
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| Error::sink(ctx.name, "`delimiter` must be one ASCII character"))?;
        FileSink::<CsvFormat>::open(ctx, &self.path, (delimiter, self.header))
    }
}

pub(crate) struct CsvFormat(Writer<Out>);

impl Format for CsvFormat {
    type Options = (u8, bool);

    fn create(
        out: Out,
        _schema: &SchemaRef,
        &(delimiter, header): &(u8, bool),
    ) -> Result<Self, String> {
        Ok(CsvFormat(
            WriterBuilder::new()
                .with_delimiter(delimiter)
                .with_header(header)
                .build(out),
        ))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        // CSV has no nested type: lists, structs and maps are written as
        // their JSON text, one cell each, as pandas' `to_csv` would not
        // (it writes Python reprs) but a JSON reader can parse back.
        let batch = nested_as_json(batch).map_err(|e| e.to_string())?;
        self.0.write(&batch).map_err(|e| e.to_string())
    }

    fn close(self) -> Result<Out, String> {
        flushed(self.0.into_inner())
    }
}
