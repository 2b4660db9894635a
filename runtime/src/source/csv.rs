//! `type = "csv"`.

use std::path::{Path, PathBuf};

use arrow::csv::reader::Format;
use arrow::csv::ReaderBuilder;
use arrow::datatypes::SchemaRef;
use serde::Deserialize;

use super::bad::{BadRecords, OnBadRecord};
use super::files::{self, BatchIter, FileSource, MultiFile};
use super::robust::salvaging_csv;
use super::schema::{declared, ColumnDecl};
use super::{Source, SourceContext};
use crate::{Error, Result};

/// A `type = "csv"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// `path`: a file or glob, relative to the manifest. Files are read in
    /// sorted order and must share one schema.
    pub path: PathBuf,
    /// `delimiter`: one ASCII character (default `,`).
    #[serde(default = "comma")]
    pub delimiter: char,
    /// `header`: whether the first line names the columns (default true).
    #[serde(default = "yes")]
    pub header: bool,
    /// `schema`: declared columns; inferred from the first file when absent.
    pub schema: Option<Vec<ColumnDecl>>,
    /// `infer_rows`: rows sampled to infer the schema (default 1000).
    #[serde(default = "infer_rows")]
    pub infer_rows: usize,
    /// `batch_size`: rows per batch, overriding `[pipeline]`.
    pub batch_size: Option<usize>,
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
pub(crate) fn infer_rows() -> usize {
    1000
}

impl CsvConfig {
    pub(crate) fn delimiter_byte(&self, node: &str) -> Result<u8> {
        u8::try_from(self.delimiter)
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| Error::source(node, "`delimiter` must be one ASCII character"))
    }

    pub(crate) fn format(&self, delimiter: u8) -> Format {
        Format::default()
            .with_header(self.header)
            .with_delimiter(delimiter)
    }

    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let files = files::expand(ctx.name, ctx.base_dir, &self.path)?;
        let delimiter = self.delimiter_byte(ctx.name)?;
        let format = self.format(delimiter);
        let schema = match &self.schema {
            Some(columns) => declared(columns),
            None => infer(ctx.name, &files[0], &format, self.infer_rows)?,
        };
        let batch_size = self.batch_size.unwrap_or(ctx.batch_size);
        let node = ctx.name.to_string();
        let reader_schema = schema.clone();
        let header = self.header;
        let policy = self.on_bad_record;
        let bad = BadRecords::default();
        let collector = bad.clone();
        let open = move |path: &Path| -> Result<BatchIter> {
            let file = files::open(&node, path)?;
            if policy != OnBadRecord::Fail {
                return Ok(Box::new(salvaging_csv(
                    path,
                    Box::new(file),
                    reader_schema.clone(),
                    delimiter,
                    header,
                    batch_size,
                    collector.clone(),
                )));
            }
            let reader = ReaderBuilder::new(reader_schema.clone())
                .with_header(header)
                .with_delimiter(delimiter)
                .with_batch_size(batch_size)
                .build(file)
                .map_err(|e| Error::source(&node, format!("{}: {e}", path.display())))?;
            let (path, schema) = (path.to_path_buf(), reader_schema.clone());
            // Full speed until an error; then find the first bad record to
            // report it by its physical line and text.
            Ok(Box::new(reader.map(move |item| {
                item.map_err(|e| locate_bad_record(&path, &schema, delimiter, header).unwrap_or(e))
            })))
        };
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open).with_policy(policy, bad),
        }))
    }
}

fn locate_bad_record(
    path: &Path,
    schema: &SchemaRef,
    delimiter: u8,
    header: bool,
) -> Option<arrow::error::ArrowError> {
    let file = std::fs::File::open(path).ok()?;
    let bad = BadRecords::default();
    let mut robust = salvaging_csv(
        path,
        Box::new(file),
        schema.clone(),
        delimiter,
        header,
        1024,
        bad.clone(),
    );
    loop {
        match robust.next()? {
            Ok(_) => {
                if let Some(first) = super::bad::drain(&bad).into_iter().next() {
                    return Some(describe(first));
                }
            }
            Err(e) => return Some(e),
        }
    }
}

fn describe(record: super::bad::BadRecord) -> arrow::error::ArrowError {
    arrow::error::ArrowError::CsvError(format!(
        "{}: {} (record: {:?})",
        record.location, record.error, record.text
    ))
}

fn infer(node: &str, path: &Path, format: &Format, rows: usize) -> Result<SchemaRef> {
    let mut file = files::open(node, path)?;
    let (schema, _) = format.infer_schema(&mut file, Some(rows)).map_err(|e| {
        Error::source(
            node,
            format!("{}: can't infer a schema: {e}", path.display()),
        )
    })?;
    Ok(std::sync::Arc::new(schema))
}
