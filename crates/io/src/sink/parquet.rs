//! `type = "parquet"`.

use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
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

/// The writer, made at the first batch: its dictionary choices are read
/// off that batch (see [`dictionary_choices`]).
pub(crate) enum ParquetFormat {
    Waiting(Option<(Out, SchemaRef, WriterPropertiesBuilder)>),
    Writing(ArrowWriter<Out>),
}

impl ParquetFormat {
    fn writer(&mut self, first: Option<&RecordBatch>) -> Result<&mut ArrowWriter<Out>, String> {
        if let ParquetFormat::Waiting(waiting) = self {
            let (out, schema, mut props) = waiting
                .take()
                .ok_or("the Parquet writer failed to start before")?;
            if let Some(batch) = first {
                for column in dictionary_choices(batch) {
                    props = props.set_column_dictionary_enabled(column, false);
                }
            }
            let writer = ArrowWriter::try_new(out, schema.clone(), Some(props.build()))
                .map_err(|e| e.to_string())?;
            *self = ParquetFormat::Writing(writer);
        }
        match self {
            ParquetFormat::Writing(w) => Ok(w),
            ParquetFormat::Waiting { .. } => Err("the Parquet writer didn't start".into()),
        }
    }
}

/// Rows of the first batch a column's dictionary choice is read from.
const SAMPLE_ROWS: usize = 8192;

/// The top-level columns whose values mostly differ in the first batch
/// (ids, amounts, timestamps): a dictionary for them would be built row
/// by row and thrown away once it outgrows its page (arrow-rs falls back
/// to plain encoding at 1 MB), a tenth of the seed job's writing time.
/// Columns that repeat (names, statuses) keep their dictionary. Only the
/// encoding differs: the values written are the same.
fn dictionary_choices(batch: &RecordBatch) -> Vec<ColumnPath> {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, RandomState};
    let hasher = RandomState::new();
    let rows = batch.num_rows().min(SAMPLE_ROWS);
    let mut plain = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let column = column.slice(0, rows);
        let hashes: Option<Vec<u64>> = match column.data_type() {
            t if t.is_primitive() => {
                let width = t.primitive_width().unwrap_or(0);
                let data = column.to_data();
                let values = &data.buffers()[0].as_slice()[data.offset() * width..];
                Some(
                    (0..rows)
                        .filter(|&i| column.is_valid(i))
                        .map(|i| hasher.hash_one(&values[i * width..(i + 1) * width]))
                        .collect(),
                )
            }
            DataType::Utf8 => Some(hash_all(&hasher, column.as_string::<i32>().iter())),
            DataType::LargeUtf8 => Some(hash_all(&hasher, column.as_string::<i64>().iter())),
            DataType::Utf8View => Some(hash_all(&hasher, column.as_string_view().iter())),
            DataType::Binary => Some(hash_all(&hasher, column.as_binary::<i32>().iter())),
            DataType::LargeBinary => Some(hash_all(&hasher, column.as_binary::<i64>().iter())),
            _ => None,
        };
        let Some(hashes) = hashes.filter(|h| h.len() >= 1024) else {
            continue;
        };
        let distinct = hashes.iter().collect::<HashSet<_>>().len();
        if distinct * 2 > hashes.len() {
            plain.push(ColumnPath::new(vec![field.name().clone()]));
        }
    }
    plain
}

/// The hash of each non-null value.
fn hash_all<'a, T: std::hash::Hash + ?Sized + 'a>(
    hasher: &impl std::hash::BuildHasher,
    values: impl Iterator<Item = Option<&'a T>>,
) -> Vec<u64> {
    values.flatten().map(|v| hasher.hash_one(v)).collect()
}

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
        Ok(ParquetFormat::Waiting(Some((out, schema.clone(), props))))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.writer(Some(batch))?
            .write(batch)
            .map_err(|e| e.to_string())
    }

    fn close(mut self) -> Result<Out, String> {
        self.writer(None)?;
        match self {
            ParquetFormat::Writing(w) => w.into_inner().map_err(|e| e.to_string()),
            ParquetFormat::Waiting(_) => Err("the Parquet writer didn't start".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};

    use super::*;

    #[test]
    fn columns_whose_values_mostly_differ_are_written_without_a_dictionary() {
        let n = 5000;
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from_iter_values(0..n)) as _),
            (
                "status",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| ["paid", "pending", "refunded"][i as usize % 3]),
                )) as _,
            ),
            (
                "amount",
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|i| i as f64 / 7.0),
                )) as _,
            ),
            (
                "name",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("n{}", i % 50)),
                )) as _,
            ),
        ])
        .unwrap();
        let plain: Vec<String> = dictionary_choices(&batch)
            .iter()
            .map(|c| c.string())
            .collect();
        assert_eq!(plain, ["id", "amount"]);
        // Too few rows to judge: the default stands.
        assert!(dictionary_choices(&batch.slice(0, 100)).is_empty());
    }
}
