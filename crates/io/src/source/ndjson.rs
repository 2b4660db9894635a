//! `type = "ndjson"`: newline-delimited JSON objects.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::json::reader::infer_json_schema_from_iterator;
use arrow::json::ReaderBuilder;
use serde::Deserialize;

use super::bad::{BadRecords, OnBadRecord};
use super::files::{self, BatchIter, FileSource, MultiFile};
use super::robust::salvaging_ndjson;
use super::schema::{declared, ColumnDecl};
use super::{Source, SourceContext};
use crate::{Error, Result};

/// A `type = "ndjson"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NdjsonConfig {
    /// `path`: a file or glob, relative to the manifest.
    pub path: PathBuf,
    /// `schema`: declared columns; inferred from the first file when absent.
    pub schema: Option<Vec<ColumnDecl>>,
    /// `infer_rows`: lines sampled to infer the schema (default 1000).
    #[serde(default = "super::csv::infer_rows")]
    pub infer_rows: usize,
    /// `batch_size`: rows per batch, overriding `[pipeline]`.
    pub batch_size: Option<usize>,
    /// `refresh_ms`: read the whole source again whenever it changed
    /// (checked this often), each read a new version of a table — see
    /// `docs/joins.md`. Absent: read once.
    #[serde(default)]
    pub refresh_ms: Option<u64>,
    /// `on_bad_record`: `"fail"` (default), `"skip"` or `"dead_letter"`.
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
}

/// Infers the schema from the first `rows` lines of `path` that are JSON
/// objects. Other lines are left out of the sample: the reader meets them
/// again and reports or skips them by `on_bad_record`, naming their line,
/// instead of failing the whole source at inference.
fn infer(node: &str, path: &Path, rows: usize) -> Result<SchemaRef> {
    use std::io::BufRead;
    let fail = |e: weir_core::Cause| {
        Error::source_from(node, format!("{}: can't infer a schema", path.display()), e)
    };
    let mut records = Vec::new();
    for line in BufReader::new(files::open(node, path)?).lines() {
        let line = line.map_err(|e| fail(e.into()))?;
        if let Ok(value @ serde_json::Value::Object(_)) = serde_json::from_str(&line) {
            records.push(value);
            if records.len() >= rows {
                break;
            }
        }
    }
    let schema =
        infer_json_schema_from_iterator(records.iter().map(Ok)).map_err(|e| fail(e.into()))?;
    Ok(Arc::new(schema))
}

impl NdjsonConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let files = files::expand(ctx.name, ctx.base_dir, &self.path)?;
        let schema = match &self.schema {
            Some(columns) => declared(columns),
            None => infer(ctx.name, &files[0], self.infer_rows)?,
        };
        let batch_size = self.batch_size.unwrap_or(ctx.batch_size);
        let policy = self.on_bad_record;
        let bad = BadRecords::default();
        if policy == OnBadRecord::Fail {
            return Ok(Box::new(FileSource {
                schema: schema.clone(),
                files: MultiFile::new(ctx.name, files, opener(ctx.name, schema, batch_size)),
            }));
        }
        let node = ctx.name.to_string();
        let collector = bad.clone();
        let reader_schema = schema.clone();
        let open = move |path: &Path| -> Result<BatchIter> {
            let file = files::open(&node, path)?;
            Ok(Box::new(salvaging_ndjson(
                path,
                Box::new(file),
                reader_schema.clone(),
                batch_size,
                collector.clone(),
            )) as BatchIter)
        };
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open).with_policy(policy, bad),
        }))
    }
}

/// Opens NDJSON files with `schema`; shared with the stdin source.
pub(crate) fn opener(
    node: &str,
    schema: SchemaRef,
    batch_size: usize,
) -> impl FnMut(&Path) -> Result<BatchIter> + Send {
    let node = node.to_string();
    move |path: &Path| {
        let file = files::open(&node, path)?;
        let reader = ReaderBuilder::new(schema.clone())
            .with_batch_size(batch_size)
            .build(BufReader::new(file))
            .map_err(|e| Error::source_from(&node, path.display(), e))?;
        let (node, path, schema) = (node.clone(), path.to_path_buf(), schema.clone());
        // Full speed until an error; then find the first bad record to
        // report it by its line.
        Ok(Box::new(reader.map(move |item| {
            item.map_err(|e| {
                files::open(&node, &path)
                    .ok()
                    .and_then(|file| {
                        salvaging_ndjson(
                            &path,
                            Box::new(file),
                            schema.clone(),
                            1024,
                            BadRecords::default(),
                        )
                        .first_bad()
                    })
                    .unwrap_or(e)
            })
        })) as BatchIter)
    }
}
