//! `type = "csv"`.
//!
//! With a header, columns are matched **by name**: a declared `schema`
//! overrides the types of the columns it names (like pandas' `dtype=`),
//! the others are inferred, and every file's header is read so that files
//! with their columns in another order still land in the right columns.
//! Without a header, a declared schema is positional.

mod chunked;
mod dialect;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::bad::{BadRecords, OnBadRecord};
use super::files::{self, BatchIter, FileSource, MultiFile};
use super::robust::salvaging_csv;
use super::schema::ColumnDecl;
use super::{Source, SourceContext};
use crate::{Error, Result};
use chunked::Chunked;
pub use dialect::Encoding;
pub(crate) use dialect::{Dialect, DialectKeys};

/// A `type = "csv"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// `path`: a file or glob, relative to the manifest. Files are read in
    /// sorted order; with a header, their columns are matched by name.
    pub path: PathBuf,
    /// `delimiter`: one ASCII character (default `,`).
    #[serde(default = "comma")]
    pub delimiter: char,
    /// `header`: whether the first line names the columns (default true).
    #[serde(default = "yes")]
    pub header: bool,
    /// `schema`: declared column types. With a header: by name, and only
    /// the columns named (the others are inferred). Without: by position,
    /// every column.
    pub schema: Option<Vec<ColumnDecl>>,
    /// `infer_rows`: rows sampled to infer the schema (default 1000).
    #[serde(default = "infer_rows")]
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
    /// `null_values`: values read as null in any column (default `[""]`;
    /// e.g. `["", "NA", "-"]`).
    pub null_values: Option<Vec<String>>,
    /// `quote`: the quote character (default `"`).
    #[serde(default = "double_quote")]
    pub quote: char,
    /// `escape`: an escape character inside quotes (default none: a quote
    /// is escaped by doubling it).
    pub escape: Option<char>,
    /// `comment`: lines starting with this character are passed over.
    pub comment: Option<char>,
    /// `skip_rows`: physical lines passed over before the header.
    #[serde(default)]
    pub skip_rows: usize,
    /// `encoding`: `"utf-8"` (default) or `"latin-1"`.
    #[serde(default)]
    pub encoding: Encoding,
    /// `decimal`: the decimal mark of float columns, `"."` (default) or
    /// `","`.
    #[serde(default = "dot")]
    pub decimal: char,
}

pub(crate) fn comma() -> char {
    ','
}
pub(crate) fn double_quote() -> char {
    '"'
}
pub(crate) fn dot() -> char {
    '.'
}
fn yes() -> bool {
    true
}
pub(crate) fn infer_rows() -> usize {
    1000
}

impl CsvConfig {
    fn dialect(&self, node: &str) -> Result<Dialect> {
        DialectKeys {
            delimiter: self.delimiter,
            quote: self.quote,
            escape: self.escape,
            comment: self.comment,
            header: self.header,
            skip_rows: self.skip_rows,
            encoding: self.encoding,
            decimal: self.decimal,
            null_values: self.null_values.as_deref(),
        }
        .dialect(node)
    }

    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let files = files::expand(ctx.name, ctx.base_dir, &self.path)?;
        let dialect = Arc::new(self.dialect(ctx.name)?);
        let schema = resolve_schema(
            ctx.name,
            &files[0],
            &dialect,
            self.schema.as_deref(),
            self.infer_rows,
        )?;
        let reading = Reading {
            node: ctx.name.to_string(),
            dialect,
            schema: schema.clone(),
            batch_size: self.batch_size.unwrap_or(ctx.batch_size),
            policy: self.on_bad_record,
        };
        let bad = BadRecords::default();
        let collector = bad.clone();
        let open = move |path: &Path| reading.open(path, &collector);
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open).with_policy(self.on_bad_record, bad),
        }))
    }
}

/// The source's schema. With a header: the header's columns in its
/// order, typed by the declaration where it names them and by inference
/// elsewhere; a declared column the header lacks is an error naming it.
fn resolve_schema(
    node: &str,
    first: &Path,
    dialect: &Dialect,
    declared: Option<&[ColumnDecl]>,
    rows: usize,
) -> Result<SchemaRef> {
    let field = |c: &ColumnDecl| Field::new(&c.name, c.data_type.0.clone(), c.nullable);
    let Some(declared) = declared else {
        return infer(node, first, dialect, rows);
    };
    if !dialect.header {
        return Ok(Arc::new(Schema::new(
            declared.iter().map(field).collect::<Vec<_>>(),
        )));
    }
    let names = dialect.header_names(node, first)?;
    if let Some(missing) = declared.iter().find(|c| !names.contains(&c.name)) {
        return Err(Error::source(
            node,
            format!(
                "`schema` declares column {:?}, but the header of {} has no such column \
                 (its columns: {}); declared columns are matched by name",
                missing.name,
                first.display(),
                names.join(", ")
            ),
        ));
    }
    let inferred = if names.iter().all(|n| declared.iter().any(|c| &c.name == n)) {
        None
    } else {
        Some(infer(node, first, dialect, rows)?)
    };
    let fields: Vec<Field> = names
        .iter()
        .enumerate()
        .map(
            |(i, name)| match declared.iter().find(|c| &c.name == name) {
                Some(c) => field(c),
                None => inferred
                    .as_ref()
                    .map(|s| s.field(i).clone())
                    .unwrap_or_else(|| Field::new(name, DataType::Utf8, true)),
            },
        )
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// Infers the schema from the first `rows` records of `path`, with the
/// dialect's null sentinels (an `NA` doesn't make a column text) and
/// decimal mark. Records that can't be records — the wrong number of
/// fields, invalid UTF-8 — are left out of the sample: the reader meets
/// them again and reports or skips them by `on_bad_record`, naming their
/// line, instead of failing the whole source at inference.
fn infer(node: &str, path: &Path, dialect: &Dialect, rows: usize) -> Result<SchemaRef> {
    let sample = sample(node, path, dialect, rows)?;
    let (schema, _) = dialect
        .plain_format(dialect.header)
        .infer_schema(&sample[..], Some(rows))
        .map_err(|e| {
            Error::source_from(node, format!("{}: can't infer a schema", path.display()), e)
        })?;
    Ok(Arc::new(schema))
}

/// The header and the first `rows` well-formed records of `path`, as
/// plain CSV (`.` as the decimal mark in numbers written with `,`).
fn sample(node: &str, path: &Path, dialect: &Dialect, rows: usize) -> Result<Vec<u8>> {
    let number = regex::Regex::new(r"^[+-]?[0-9]*,[0-9]+$").expect("a constant pattern");
    let unreadable = |e: weir_core::Cause| Error::source_from(node, path.display(), e);
    let mut reader = dialect.records(dialect.open(node, path)?, false);
    let mut writer = csv::WriterBuilder::new()
        .delimiter(dialect.delimiter)
        .quote(dialect.quote)
        .from_writer(Vec::new());
    let mut record = csv::ByteRecord::new();
    let (mut width, mut taken) = (None, 0);
    while taken < rows + usize::from(dialect.header) {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            // A broken quote or the like: what came before still counts.
            Err(_) if taken > 0 => break,
            Err(e) => return Err(unreadable(e.into())),
        }
        let Ok(fields) = record
            .iter()
            .map(std::str::from_utf8)
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        if *width.get_or_insert(fields.len()) != fields.len() {
            continue;
        }
        let fields: Vec<String> = fields
            .iter()
            .map(|v| match dialect.decimal_comma && number.is_match(v) {
                true => v.replace(',', "."),
                false => v.to_string(),
            })
            .collect();
        writer
            .write_record(&fields)
            .map_err(|e| unreadable(e.into()))?;
        taken += 1;
    }
    writer.into_inner().map_err(|e| unreadable(e.into()))
}

/// Everything one file's reader needs.
struct Reading {
    node: String,
    dialect: Arc<Dialect>,
    schema: SchemaRef,
    batch_size: usize,
    policy: OnBadRecord,
}

/// The column plan for one file: which of its columns feed the source's
/// columns, and the types to read them as.
pub(crate) struct FileColumns {
    /// The file's columns, in file order, as read.
    pub file_schema: SchemaRef,
    /// For each source column, its index in the file.
    pub projection: Vec<usize>,
    /// The source's schema, read as: float columns under `decimal = ","`
    /// are read as text and converted after.
    pub read_schema: SchemaRef,
    /// The source's schema.
    pub target: SchemaRef,
}

impl FileColumns {
    /// Every column in its place, read as its own type.
    pub(crate) fn positional(schema: &SchemaRef) -> FileColumns {
        FileColumns {
            file_schema: schema.clone(),
            projection: (0..schema.fields().len()).collect(),
            read_schema: schema.clone(),
            target: schema.clone(),
        }
    }
}

impl Reading {
    fn open(&self, path: &Path, bad: &BadRecords) -> Result<BatchIter> {
        let columns = Arc::new(self.columns(path)?);
        let input = self.dialect.open(&self.node, path)?;
        let (schema, dialect) = (self.schema.clone(), self.dialect.clone());
        if self.policy != OnBadRecord::Fail {
            return Ok(Box::new(salvaging_csv(
                path,
                input,
                dialect,
                columns,
                self.batch_size,
                bad.clone(),
            )));
        }
        let decoders = chunked::decoders(&self.dialect, self.batch_size);
        let large = std::fs::metadata(path).is_ok_and(|m| m.len() >= chunked::MIN_BYTES);
        let batches: Box<dyn Iterator<Item = _> + Send> = if decoders > 0 && large {
            Box::new(Chunked::start(
                input,
                &self.dialect,
                self.dialect.header,
                columns.file_schema.clone(),
                columns.projection.clone(),
                self.batch_size,
                decoders,
            ))
        } else {
            Box::new(
                ReaderBuilder::new(columns.file_schema.clone())
                    .with_format(self.dialect.format(self.dialect.header))
                    .with_projection(columns.projection.clone())
                    .with_batch_size(self.batch_size)
                    .build(input)
                    .map_err(|e| Error::source_from(&self.node, path.display(), e))?,
            )
        };
        let (node, path) = (self.node.clone(), path.to_path_buf());
        // Full speed until an error; then find the first bad record to
        // report it by its physical line and column name.
        Ok(Box::new(batches.map(move |item| {
            item.and_then(|b| finish(b, &schema, &dialect))
                .map_err(|e| locate_bad_record(&node, &path, &dialect, &columns).unwrap_or(e))
        })))
    }

    /// Matches `path`'s header to the source's columns by name (by
    /// position without a header).
    fn columns(&self, path: &Path) -> Result<FileColumns> {
        let read_schema = Arc::new(Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|f| {
                    let as_text = self.dialect.decimal_comma && is_float(f.data_type());
                    let f = f.as_ref().clone();
                    if as_text {
                        f.with_data_type(DataType::Utf8)
                    } else {
                        f
                    }
                })
                .collect::<Vec<_>>(),
        ));
        if !self.dialect.header {
            return Ok(FileColumns {
                file_schema: read_schema.clone(),
                projection: (0..read_schema.fields().len()).collect(),
                read_schema,
                target: self.schema.clone(),
            });
        }
        let names = self.dialect.header_names(&self.node, path)?;
        let mut projection = Vec::with_capacity(read_schema.fields().len());
        for field in read_schema.fields() {
            let Some(i) = names.iter().position(|n| n == field.name()) else {
                return Err(Error::source(
                    &self.node,
                    format!(
                        "{} has no column {:?} (its columns: {}); every file must have the \
                         source's columns",
                        path.display(),
                        field.name(),
                        names.join(", ")
                    ),
                ));
            };
            projection.push(i);
        }
        let file_schema = Arc::new(Schema::new(
            names
                .iter()
                .map(|n| match read_schema.field_with_name(n) {
                    Ok(f) => f.clone(),
                    Err(_) => Field::new(n, DataType::Utf8, true),
                })
                .collect::<Vec<_>>(),
        ));
        Ok(FileColumns {
            file_schema,
            projection,
            read_schema,
            target: self.schema.clone(),
        })
    }
}

fn is_float(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

/// A batch as read (decimal-comma floats still text) as the source's
/// schema.
pub(crate) fn finish(
    batch: RecordBatch,
    schema: &SchemaRef,
    dialect: &Dialect,
) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| -> Result<ArrayRef, ArrowError> {
            if column.data_type() == field.data_type() {
                return Ok(column.clone());
            }
            let column = match (
                dialect.decimal_comma,
                column.as_any().downcast_ref::<StringArray>(),
            ) {
                (true, Some(text)) => Arc::new(
                    text.iter()
                        .map(|v| v.map(|v| v.replace(',', ".")))
                        .collect::<StringArray>(),
                ) as ArrayRef,
                _ => column.clone(),
            };
            cast_with_options(&column, field.data_type(), &strict)
                .map_err(|e| ArrowError::CsvError(format!("column {:?}: {e}", field.name())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// The first bad record of `path`, as an error naming its physical line
/// and column (the fast reader knows neither).
fn locate_bad_record(
    node: &str,
    path: &Path,
    dialect: &Arc<Dialect>,
    columns: &Arc<FileColumns>,
) -> Option<ArrowError> {
    let input = dialect.open(node, path).ok()?;
    salvaging_csv(
        path,
        input,
        dialect.clone(),
        columns.clone(),
        1024,
        BadRecords::default(),
    )
    .first_bad()
}
