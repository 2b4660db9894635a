//! `type = "parquet"`.

use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;

use super::bad::{BadRecords, OnBadRecord};
use super::files::{self, BatchIter, FileSource, MultiFile};
use super::robust::RobustParquet;
use super::{Source, SourceContext};
use crate::{Error, Result};

/// A `type = "parquet"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParquetConfig {
    /// `path`: a file or glob, relative to the manifest. All files must share
    /// the first file's schema.
    pub path: PathBuf,
    /// `batch_size`: rows per batch, overriding `[pipeline]`.
    pub batch_size: Option<usize>,
    /// `on_bad_record`: `"fail"` (default), `"skip"` or `"dead_letter"`;
    /// the unit is a row group (or a whole unreadable file).
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
}

impl ParquetConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let files = files::expand(ctx.name, ctx.base_dir, &self.path)?;
        let node = ctx.name.to_string();
        let batch_size = self.batch_size.unwrap_or(ctx.batch_size);
        let builder = |node: &str, path: &Path| {
            let file = files::open(node, path)?;
            crate::contain::contained(|| ParquetRecordBatchReaderBuilder::try_new(file))
                .map_err(|e| Error::source(node, format!("{}: {e}", path.display())))?
                .map_err(|e| Error::source(node, format!("{}: {e}", path.display())))
        };
        let schema = builder(ctx.name, &files[0])?.schema().clone();
        let expected = schema.clone();
        let policy = self.on_bad_record;
        let bad = BadRecords::default();
        let collector = bad.clone();
        let open = move |path: &Path| -> Result<BatchIter> {
            let b = builder(&node, path)?;
            if b.schema().fields() != expected.fields() {
                return Err(Error::source(
                    &node,
                    format!(
                        "{}: schema differs from the first file's ({} vs {})",
                        path.display(),
                        b.schema(),
                        expected
                    ),
                ));
            }
            if policy != OnBadRecord::Fail {
                let groups = b.metadata().num_row_groups();
                return Ok(Box::new(RobustParquet::new(
                    path,
                    groups,
                    batch_size,
                    collector.clone(),
                )));
            }
            let expected_rows = b.metadata().file_metadata().num_rows();
            let reader = b
                .with_batch_size(batch_size)
                .build()
                .map_err(|e| Error::source(&node, format!("{}: {e}", path.display())))?;
            Ok(Box::new(Counted {
                reader,
                read: 0,
                expected: expected_rows,
                done: false,
            }))
        };
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open).with_policy(policy, bad),
        }))
    }
}

/// A file's batches, checked at the end against the row count its footer
/// states: a reader that stops early without an error (an encoding it
/// doesn't understand) must not pass for a short file.
struct Counted<R> {
    reader: R,
    read: i64,
    expected: i64,
    done: bool,
}

impl<R> Iterator for Counted<R>
where
    R: Iterator<
        Item = std::result::Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError>,
    >,
{
    type Item = R::Item;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.next() {
            Some(Ok(batch)) => {
                self.read += batch.num_rows() as i64;
                Some(Ok(batch))
            }
            Some(Err(e)) => Some(Err(e)),
            None => {
                self.done = true;
                (self.read != self.expected).then(|| {
                    Err(arrow::error::ArrowError::ParquetError(format!(
                        "read {} rows but the file's footer says {}; weir can't read this \
                         file's encoding correctly, so it stops rather than lose rows",
                        self.read, self.expected
                    )))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::record_batch::RecordBatch;

    fn batch(rows: i64) -> RecordBatch {
        RecordBatch::try_from_iter([(
            "x",
            std::sync::Arc::new(Int64Array::from_iter_values(0..rows)) as _,
        )])
        .unwrap()
    }

    #[test]
    fn a_file_that_reads_fewer_rows_than_its_footer_states_is_an_error_not_a_short_file() {
        let short = Counted {
            reader: vec![Ok(batch(2))].into_iter(),
            read: 0,
            expected: 5,
            done: false,
        };
        let results: Vec<_> = short.collect();
        assert_eq!(results.len(), 2);
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("read 2 rows but the file's footer says 5"),
            "{err}"
        );

        let whole = Counted {
            reader: vec![Ok(batch(2)), Ok(batch(3))].into_iter(),
            read: 0,
            expected: 5,
            done: false,
        };
        assert!(whole.map(|r| r.unwrap().num_rows()).eq([2, 3]));
    }
}
