//! Record-level readers for `on_bad_record = "skip" | "dead_letter"`: a
//! batch decodes at full speed; only a batch holding a bad record is
//! re-decoded record by record, so good records around it survive in order.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::compute::{cast_with_options, CastOptions};

use super::bad::{push, BadRecord, BadRecords};
use super::csv::{finish, Dialect, FileColumns};

/// A reader of raw records (CSV rows, NDJSON lines) that can decode any
/// slice of them into a batch.
pub(crate) trait Records: Send {
    /// One raw record.
    type Record: Send;
    /// The next record and its 1-based line; `Ok(None)` at end of input.
    fn read(&mut self) -> Result<Option<(Self::Record, u64)>, ArrowError>;
    /// Decodes `records` into one batch.
    fn decode(&self, records: &[(Self::Record, u64)]) -> Result<Option<RecordBatch>, ArrowError>;
    /// The record as text, for a report.
    fn text(&self, record: &Self::Record) -> String;
}

/// Batches of `batch_size` records: decoded all at once when they are all
/// good, else one by one, reporting the bad ones and keeping the rest in
/// order.
pub(crate) struct Salvaging<R> {
    records: R,
    path: PathBuf,
    schema: SchemaRef,
    batch_size: usize,
    bad: BadRecords,
    done: bool,
}

impl<R: Records> Salvaging<R> {
    fn chunk(&mut self) -> Result<Vec<(R::Record, u64)>, ArrowError> {
        let mut chunk = Vec::with_capacity(self.batch_size);
        while chunk.len() < self.batch_size {
            match self.records.read()? {
                Some(record) => chunk.push(record),
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        Ok(chunk)
    }

    fn salvage(&self, chunk: &[(R::Record, u64)]) -> Result<RecordBatch, ArrowError> {
        if let Ok(batch) = self.records.decode(chunk) {
            return Ok(batch.unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone())));
        }
        let mut good = Vec::new();
        for record in chunk {
            match self.records.decode(std::slice::from_ref(record)) {
                Ok(Some(b)) => good.push(b),
                Ok(None) => {}
                Err(e) => {
                    let text = self.records.text(&record.0);
                    push(
                        &self.bad,
                        BadRecord::new(
                            &self.path,
                            format!("line {}", record.1),
                            &text,
                            super::bad::plain_message(&e),
                        ),
                    );
                }
            }
        }
        concat_batches(&self.schema, &good)
    }
}

impl<R: Records> Salvaging<R> {
    /// The first bad record, as an error naming its line (or the error
    /// that stopped reading): what a fast reader that failed can't say.
    pub(crate) fn first_bad(mut self) -> Option<ArrowError> {
        loop {
            match self.next()? {
                Ok(_) => {
                    if let Some(first) = super::bad::drain(&self.bad).into_iter().next() {
                        return Some(ArrowError::ExternalError(
                            format!(
                                "{}: {} (record: {:?})",
                                first.location, first.error, first.text
                            )
                            .into(),
                        ));
                    }
                }
                Err(e) => return Some(e),
            }
        }
    }
}

impl<R: Records> Iterator for Salvaging<R> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let chunk = match self.chunk() {
                Ok(chunk) => chunk,
                Err(e) => return Some(Err(e)),
            };
            match self.salvage(&chunk) {
                Ok(b) if b.num_rows() == 0 => continue,
                other => return Some(other),
            }
        }
        None
    }
}

/// CSV rows, split with the `csv` crate (the source's dialect: quotes,
/// escapes, comments), picked into the source's column order, decoded
/// with arrow's CSV decoder.
pub(crate) struct CsvRecords {
    reader: csv::Reader<Box<dyn Read + Send>>,
    dialect: Arc<Dialect>,
    columns: Arc<FileColumns>,
    /// The source's schema (the columns' final types).
    target: SchemaRef,
}

/// Record-level CSV reading under `skip` / `dead_letter` (and to locate
/// the first bad record for an error).
pub(crate) fn salvaging_csv(
    path: &Path,
    input: Box<dyn Read + Send>,
    dialect: Arc<Dialect>,
    columns: Arc<FileColumns>,
    batch_size: usize,
    bad: BadRecords,
) -> Salvaging<CsvRecords> {
    let reader = dialect.records(input, dialect.header);
    let target = columns.target.clone();
    Salvaging {
        records: CsvRecords {
            reader,
            dialect,
            columns,
            target: target.clone(),
        },
        path: path.to_path_buf(),
        schema: target,
        batch_size,
        bad,
        done: false,
    }
}

impl CsvRecords {
    /// Why `record` can't be read: the first column whose value doesn't
    /// parse as its type, by name.
    fn explain(&self, record: &csv::ByteRecord) -> Option<String> {
        let strict = CastOptions {
            safe: false,
            ..Default::default()
        };
        for (field, &i) in self.target.fields().iter().zip(&self.columns.projection) {
            let value = String::from_utf8_lossy(record.get(i)?);
            if self.dialect.is_null(&value) {
                if !field.is_nullable() {
                    return Some(format!(
                        "column {:?} is declared not nullable but is empty",
                        field.name()
                    ));
                }
                continue;
            }
            let text = if self.dialect.decimal_comma {
                value.replace(',', ".")
            } else {
                value.to_string()
            };
            let one: ArrayRef = Arc::new(StringArray::from(vec![text]));
            if cast_with_options(&one, field.data_type(), &strict).is_err() {
                return Some(format!(
                    "column {:?}: can't read {value:?} as {}",
                    field.name(),
                    field.data_type()
                ));
            }
        }
        None
    }
}

impl Records for CsvRecords {
    type Record = csv::ByteRecord;

    fn read(&mut self) -> Result<Option<(csv::ByteRecord, u64)>, ArrowError> {
        let mut record = csv::ByteRecord::new();
        match self.reader.read_byte_record(&mut record) {
            Ok(true) => {
                // Physical lines of the file: the skipped ones count.
                let line =
                    record.position().map_or(0, |p| p.line()) + self.dialect.skip_rows as u64;
                Ok(Some((record, line)))
            }
            Ok(false) => Ok(None),
            Err(e) => Err(ArrowError::CsvError(e.to_string())),
        }
    }

    fn decode(
        &self,
        records: &[(csv::ByteRecord, u64)],
    ) -> Result<Option<RecordBatch>, ArrowError> {
        let fields = self.columns.file_schema.fields().len();
        if let Some((r, _)) = records.iter().find(|(r, _)| r.len() != fields) {
            return Err(ArrowError::CsvError(format!(
                "expected {fields} fields, found {}",
                r.len()
            )));
        }
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.dialect.delimiter)
            .from_writer(Vec::new());
        for (r, _) in records {
            writer
                .write_record(self.columns.projection.iter().map(|&i| &r[i]))
                .map_err(|e| ArrowError::CsvError(e.to_string()))?;
        }
        let buf = writer
            .into_inner()
            .map_err(|e| ArrowError::CsvError(e.to_string()))?;
        let mut builder = arrow::csv::ReaderBuilder::new(self.columns.read_schema.clone())
            .with_header(false)
            .with_delimiter(self.dialect.delimiter)
            .with_batch_size(records.len().max(1));
        if let Some(nulls) = self.dialect.null_regex() {
            builder = builder.with_null_regex(nulls);
        }
        let mut decoder = builder.build_decoder();
        let decoded = (|| {
            let mut offset = 0;
            while offset < buf.len() {
                let n = decoder.decode(&buf[offset..])?;
                if n == 0 {
                    break;
                }
                offset += n;
            }
            decoder
                .flush()?
                .map(|b| finish(b, &self.target, &self.dialect))
                .transpose()
        })();
        match (decoded, records) {
            // One record: say which column, by name (arrow's message
            // numbers columns and lines of its own input).
            (Err(e), [(record, _)]) => Err(self.explain(record).map_or(e, ArrowError::CsvError)),
            (other, _) => other,
        }
    }

    fn text(&self, record: &csv::ByteRecord) -> String {
        let delimiter = (self.dialect.delimiter as char).to_string();
        record
            .iter()
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(&delimiter)
    }
}

/// NDJSON lines, decoded with arrow's JSON decoder.
pub(crate) struct NdjsonRecords {
    reader: BufReader<Box<dyn Read + Send>>,
    schema: SchemaRef,
    line: u64,
}

/// Record-level NDJSON reading under `skip` / `dead_letter`.
pub(crate) fn salvaging_ndjson(
    path: &Path,
    input: Box<dyn Read + Send>,
    schema: SchemaRef,
    batch_size: usize,
    bad: BadRecords,
) -> Salvaging<NdjsonRecords> {
    Salvaging {
        records: NdjsonRecords {
            reader: BufReader::new(input),
            schema: schema.clone(),
            line: 0,
        },
        path: path.to_path_buf(),
        schema,
        batch_size,
        bad,
        done: false,
    }
}

impl Records for NdjsonRecords {
    type Record = Vec<u8>;

    fn read(&mut self) -> Result<Option<(Vec<u8>, u64)>, ArrowError> {
        loop {
            let mut line = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut line)
                .map_err(|e| ArrowError::JsonError(e.to_string()))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some((line, self.line)));
            }
        }
    }

    fn decode(&self, lines: &[(Vec<u8>, u64)]) -> Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = arrow::json::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(lines.len().max(1))
            .build_decoder()?;
        for (line, _) in lines {
            decoder.decode(line)?;
            decoder.decode(b"\n")?;
        }
        decoder.flush()
    }

    fn text(&self, line: &Vec<u8>) -> String {
        String::from_utf8_lossy(line).into_owned()
    }
}

/// Parquet, row group by row group: a corrupt row group is reported and
/// skipped; the others are read.
pub(crate) struct RobustParquet {
    path: PathBuf,
    groups: std::ops::Range<usize>,
    current: Option<(usize, ParquetRecordBatchReader)>,
    batch_size: usize,
    bad: BadRecords,
}

impl RobustParquet {
    pub(crate) fn new(path: &Path, row_groups: usize, batch_size: usize, bad: BadRecords) -> Self {
        RobustParquet {
            path: path.to_path_buf(),
            groups: 0..row_groups,
            current: None,
            batch_size,
            bad,
        }
    }

    fn open(&self, group: usize) -> Result<ParquetRecordBatchReader, String> {
        let file = std::fs::File::open(&self.path).map_err(|e| e.to_string())?;
        ParquetRecordBatchReaderBuilder::try_new(super::parquet::StrictFile(file))
            .and_then(|b| {
                b.with_row_groups(vec![group])
                    .with_batch_size(self.batch_size)
                    .build()
            })
            .map_err(|e| e.to_string())
    }
}

impl Iterator for RobustParquet {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((group, reader)) = &mut self.current {
                match reader.next() {
                    Some(Ok(b)) => return Some(Ok(b)),
                    Some(Err(e)) => {
                        push(
                            &self.bad,
                            BadRecord::new(&self.path, format!("row group {group}"), "", e),
                        );
                        self.current = None;
                    }
                    None => self.current = None,
                }
            }
            let group = self.groups.next()?;
            match self.open(group) {
                Ok(reader) => self.current = Some((group, reader)),
                Err(e) => push(
                    &self.bad,
                    BadRecord::new(&self.path, format!("row group {group}"), "", e),
                ),
            }
        }
    }
}
