//! `type = "parquet"`.

use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Deserialize;

use super::file::{FileSink, Format, Out};
use super::{Sink, SinkContext};
use crate::Result;

/// Parquet page compression.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// Snappy: fast, the common default of Spark and pandas.
    #[default]
    Snappy,
    /// Zstandard (level 3): smaller files, a little slower.
    Zstd,
}

/// A `type = "parquet"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// `path`: the output file, relative to the manifest.
    pub path: PathBuf,
    /// `compression`: `"none"`, `"snappy"` (default) or `"zstd"`.
    #[serde(default)]
    pub compression: Compression,
    /// `row_group_rows`: rows per row group (default 1,048,576).
    pub row_group_rows: Option<usize>,
}

impl ParquetSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        FileSink::<ParquetFormat>::open(ctx, &self.path, self.clone())
    }
}

pub(crate) struct ParquetFormat(ArrowWriter<Out>);

impl Format for ParquetFormat {
    type Options = ParquetSinkConfig;

    fn create(out: Out, schema: &SchemaRef, options: &ParquetSinkConfig) -> Result<Self, String> {
        let codec = match options.compression {
            Compression::None => Codec::UNCOMPRESSED,
            Compression::Snappy => Codec::SNAPPY,
            Compression::Zstd => Codec::ZSTD(ZstdLevel::try_new(3).map_err(|e| e.to_string())?),
        };
        let mut props = WriterProperties::builder().set_compression(codec);
        if let Some(rows) = options.row_group_rows {
            props = props.set_max_row_group_row_count(Some(rows.max(1)));
        }
        ArrowWriter::try_new(out, schema.clone(), Some(props.build()))
            .map(ParquetFormat)
            .map_err(|e| e.to_string())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.0.write(batch).map_err(|e| e.to_string())
    }

    fn close(self) -> Result<Out, String> {
        self.0.into_inner().map_err(|e| e.to_string())
    }
}
