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
            ParquetRecordBatchReaderBuilder::try_new(files::open(node, path)?)
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
            let reader = b
                .with_batch_size(batch_size)
                .build()
                .map_err(|e| Error::source(&node, format!("{}: {e}", path.display())))?;
            Ok(Box::new(reader))
        };
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open).with_policy(policy, bad),
        }))
    }
}
