//! `type = "csv"`.

use std::path::{Path, PathBuf};

use arrow::csv::reader::Format;
use arrow::csv::ReaderBuilder;
use arrow::datatypes::SchemaRef;
use serde::Deserialize;

use super::files::{self, BatchIter, FileSource, MultiFile};
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
        let open = move |path: &Path| -> Result<BatchIter> {
            let file = files::open(&node, path)?;
            let reader = ReaderBuilder::new(reader_schema.clone())
                .with_header(header)
                .with_delimiter(delimiter)
                .with_batch_size(batch_size)
                .build(file)
                .map_err(|e| Error::source(&node, format!("{}: {e}", path.display())))?;
            Ok(Box::new(reader))
        };
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open),
        }))
    }
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
