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
    /// `refresh_ms`: read the whole source again whenever it changed
    /// (checked this often), each read a new version of a table — see
    /// `docs/joins.md`. Absent: read once.
    #[serde(default)]
    pub refresh_ms: Option<u64>,
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
            let mut file = files::open(node, path)?;
            let footer = |e: weir_core::Cause| {
                Error::source_from(
                    node,
                    format!("{}: can't read the footer", path.display()),
                    e,
                )
            };
            check_footer(&mut file).map_err(|e| footer(e.into()))?;
            let file = StrictFile(file);
            weir_core::contain::contained(|| ParquetRecordBatchReaderBuilder::try_new(file))
                .map_err(|e| footer(e.into()))?
                .map_err(|e| footer(e.into()))
        };
        let schema = builder(ctx.name, &files[0])?.schema().clone();
        let expected = schema.clone();
        let policy = self.on_bad_record;
        let bad = BadRecords::default();
        let collector = bad.clone();
        let open = move |path: &Path| -> Result<BatchIter> {
            let b = builder(&node, path)?;
            files::fits(&expected, b.schema())
                .map_err(|e| Error::source_from(&node, path.display(), e))?;
            if policy != OnBadRecord::Fail {
                let groups = b.metadata().num_row_groups();
                let batches = Box::new(RobustParquet::new(
                    path,
                    groups,
                    batch_size,
                    collector.clone(),
                ));
                return Ok(files::restamped(batches, expected.clone()));
            }
            let expected_rows = b.metadata().file_metadata().num_rows();
            let groups = b
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            let reader = b
                .with_batch_size(batch_size)
                .build()
                .map_err(|e| Error::source_from(&node, path.display(), e))?;
            let counted = Box::new(Counted {
                reader,
                read: 0,
                expected: expected_rows,
                groups,
                batch_size,
                done: false,
            });
            Ok(files::restamped(counted, expected.clone()))
        };
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open).with_policy(policy, bad),
        }))
    }
}

/// Checks the footer's schema before arrow-rs decodes it (see
/// [`super::parquet_footer`]). An encrypted footer (`PARE`) or one too
/// short to hold a schema is left to arrow-rs, which reports it.
fn check_footer(file: &mut std::fs::File) -> std::result::Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e: std::io::Error| e.to_string();
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len < 12 {
        return Ok(());
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::Start(len - 8)).map_err(io)?;
    file.read_exact(&mut tail).map_err(io)?;
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if &tail[4..] != b"PAR1" || footer_len + 8 > len {
        return Ok(());
    }
    let mut footer = vec![0u8; footer_len as usize];
    file.seek(SeekFrom::Start(len - 8 - footer_len))
        .map_err(io)?;
    file.read_exact(&mut footer).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    super::parquet_footer::check_schema(&footer)
}

/// A Parquet file whose readers treat reading at its end as an error.
/// arrow-rs 60 skips an unknown page-header field through `io::copy`, which
/// stops quietly at end of file: a header lying about a list of 2^31
/// doubles past the end made 100 million empty reads, 77 s for a 3 KB
/// file (found by the `parquet` fuzz target). No valid read goes past
/// the footer, so nothing valid is lost.
pub(crate) struct StrictFile(pub(crate) std::fs::File);

/// A reader of [`StrictFile`]: a read that gets nothing is an error.
pub(crate) struct NoReadPastEnd<R>(R);

impl<R: std::io::Read> std::io::Read for NoReadPastEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 if !buf.is_empty() => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            )),
            n => Ok(n),
        }
    }
}

impl parquet::file::reader::Length for StrictFile {
    fn len(&self) -> u64 {
        parquet::file::reader::Length::len(&self.0)
    }
}

impl parquet::file::reader::ChunkReader for StrictFile {
    type T = NoReadPastEnd<<std::fs::File as parquet::file::reader::ChunkReader>::T>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.0.get_read(start).map(NoReadPastEnd)
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.0.get_bytes(start, length)
    }
}

/// A file's batches, checked at the end against the row count its footer
/// states: a reader that stops early without an error (an encoding it
/// doesn't understand) must not pass for a short file. An error names the
/// row group it came from.
struct Counted<R> {
    reader: R,
    read: i64,
    expected: i64,
    /// Rows per row group, from the footer.
    groups: Vec<i64>,
    /// Rows per batch asked of the reader.
    batch_size: usize,
    done: bool,
}

impl<R> Counted<R> {
    /// The row groups the batch being decoded spans (a batch can cross
    /// row-group boundaries): "row group 2 (rows 200–299)" or "row groups
    /// 0–2 (rows 0–299)".
    fn place(&self) -> String {
        let (from, to) = (self.read, self.read + self.batch_size as i64);
        let mut start = 0;
        let mut span: Option<(usize, usize, i64, i64)> = None;
        for (i, rows) in self.groups.iter().enumerate() {
            let end = start + rows;
            if end > from && start < to {
                span = Some(match span {
                    None => (i, i, start, end),
                    Some((first, _, s, _)) => (first, i, s, end),
                });
            }
            start = end;
        }
        match span {
            Some((a, b, s, e)) if a == b => format!("row group {a} (rows {s}–{})", e - 1),
            Some((a, b, s, e)) => format!("row groups {a}–{b} (rows {s}–{})", e - 1),
            None => format!("after row {}", self.read),
        }
    }
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
        let next = weir_core::contain::contained(|| self.reader.next())
            .unwrap_or_else(|e| Some(Err(arrow::error::ArrowError::ParquetError(e))));
        match next {
            Some(Ok(batch)) => {
                self.read += batch.num_rows() as i64;
                Some(Ok(batch))
            }
            Some(Err(e)) => {
                // The rest of the file is unreadable; no count to check.
                self.done = true;
                let message = super::bad::plain_message(&e);
                Some(Err(arrow::error::ArrowError::ParquetError(format!(
                    "{}: {message}",
                    self.place()
                ))))
            }
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
            groups: vec![5],
            batch_size: 2,
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
            groups: vec![2, 3],
            batch_size: 2,
            done: false,
        };
        assert!(whole.map(|r| r.unwrap().num_rows()).eq([2, 3]));
    }

    #[test]
    fn an_error_names_the_row_group_it_came_from() {
        let failing = Counted {
            reader: vec![
                Ok(batch(100)),
                Ok(batch(100)),
                Err(arrow::error::ArrowError::ExternalError(
                    "snappy: corrupt input".into(),
                )),
            ]
            .into_iter(),
            read: 0,
            expected: 300,
            groups: vec![100, 100, 100],
            batch_size: 100,
            done: false,
        };
        let err = failing.last().unwrap().unwrap_err().to_string();
        assert!(
            err.contains("row group 2 (rows 200–299): snappy: corrupt input"),
            "{err}"
        );

        let spanning = Counted {
            reader: vec![Err(arrow::error::ArrowError::ExternalError(
                "bad page".into(),
            ))]
            .into_iter(),
            read: 0,
            expected: 300,
            groups: vec![100, 100, 100],
            batch_size: 150,
            done: false,
        };
        let err = spanning.last().unwrap().unwrap_err().to_string();
        assert!(
            err.contains("row groups 0–1 (rows 0–199): bad page"),
            "{err}"
        );
    }
}
