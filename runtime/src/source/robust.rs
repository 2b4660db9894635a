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

use super::bad::{push, BadRecord, BadRecords};

type Item = Option<Result<RecordBatch, ArrowError>>;

/// Decodes every good record of a chunk: all at once when possible, else
/// one by one, reporting the bad ones.
fn salvage<R>(
    chunk: &[R],
    decode: impl Fn(&[R]) -> Result<Option<RecordBatch>, ArrowError>,
    report: impl Fn(&R, ArrowError) -> BadRecord,
    schema: &SchemaRef,
    bad: &BadRecords,
) -> Item {
    if let Ok(batch) = decode(chunk) {
        return batch.map(Ok);
    }
    let mut good = Vec::new();
    for record in chunk {
        match decode(std::slice::from_ref(record)) {
            Ok(Some(b)) => good.push(b),
            Ok(None) => {}
            Err(e) => push(bad, report(record, e)),
        }
    }
    if good.is_empty() {
        return Some(Ok(RecordBatch::new_empty(schema.clone())));
    }
    Some(concat_batches(schema, &good))
}

/// CSV, record by record on failure.
pub(crate) struct RobustCsv {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read + Send>>,
    schema: SchemaRef,
    delimiter: u8,
    batch_size: usize,
    bad: BadRecords,
    done: bool,
}

impl RobustCsv {
    pub(crate) fn new(
        path: &Path,
        input: Box<dyn Read + Send>,
        schema: SchemaRef,
        delimiter: u8,
        header: bool,
        batch_size: usize,
        bad: BadRecords,
    ) -> Self {
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(header)
            .flexible(true)
            .from_reader(input);
        RobustCsv {
            path: path.to_path_buf(),
            reader,
            schema,
            delimiter,
            batch_size,
            bad,
            done: false,
        }
    }

    fn decode(
        &self,
        records: &[(csv::ByteRecord, u64)],
    ) -> Result<Option<RecordBatch>, ArrowError> {
        let fields = self.schema.fields().len();
        if let Some((r, _)) = records.iter().find(|(r, _)| r.len() != fields) {
            return Err(ArrowError::CsvError(format!(
                "expected {fields} fields, found {}",
                r.len()
            )));
        }
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .from_writer(Vec::new());
        for (r, _) in records {
            writer
                .write_byte_record(r)
                .map_err(|e| ArrowError::CsvError(e.to_string()))?;
        }
        let buf = writer
            .into_inner()
            .map_err(|e| ArrowError::CsvError(e.to_string()))?;
        let mut decoder = arrow::csv::ReaderBuilder::new(self.schema.clone())
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_batch_size(records.len().max(1))
            .build_decoder();
        let mut offset = 0;
        while offset < buf.len() {
            let n = decoder.decode(&buf[offset..])?;
            if n == 0 {
                break;
            }
            offset += n;
        }
        decoder.flush()
    }
}

impl Iterator for RobustCsv {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Item {
        while !self.done {
            let mut chunk = Vec::with_capacity(self.batch_size);
            while chunk.len() < self.batch_size {
                let mut record = csv::ByteRecord::new();
                match self.reader.read_byte_record(&mut record) {
                    Ok(true) => {
                        let line = record.position().map_or(0, |p| p.line());
                        chunk.push((record, line));
                    }
                    Ok(false) => {
                        self.done = true;
                        break;
                    }
                    Err(e) => {
                        return Some(Err(ArrowError::CsvError(format!(
                            "{}: {e}",
                            self.path.display()
                        ))))
                    }
                }
            }
            if chunk.is_empty() {
                break;
            }
            let delimiter = self.delimiter as char;
            let item = salvage(
                &chunk,
                |records| self.decode(records),
                |(r, line), e| {
                    let text = r
                        .iter()
                        .map(String::from_utf8_lossy)
                        .collect::<Vec<_>>()
                        .join(&delimiter.to_string());
                    BadRecord::new(&self.path, format!("line {line}"), &text, e)
                },
                &self.schema,
                &self.bad,
            );
            match item {
                Some(Ok(b)) if b.num_rows() == 0 => continue,
                other => return other,
            }
        }
        None
    }
}

/// NDJSON, line by line on failure.
pub(crate) struct RobustNdjson {
    path: PathBuf,
    reader: BufReader<Box<dyn Read + Send>>,
    schema: SchemaRef,
    batch_size: usize,
    bad: BadRecords,
    line: u64,
    done: bool,
}

impl RobustNdjson {
    pub(crate) fn new(
        path: &Path,
        input: Box<dyn Read + Send>,
        schema: SchemaRef,
        batch_size: usize,
        bad: BadRecords,
    ) -> Self {
        RobustNdjson {
            path: path.to_path_buf(),
            reader: BufReader::new(input),
            schema,
            batch_size,
            bad,
            line: 0,
            done: false,
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
}

impl Iterator for RobustNdjson {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Item {
        while !self.done {
            let mut chunk = Vec::with_capacity(self.batch_size);
            while chunk.len() < self.batch_size {
                let mut line = Vec::new();
                match self.reader.read_until(b'\n', &mut line) {
                    Ok(0) => {
                        self.done = true;
                        break;
                    }
                    Ok(_) => {
                        self.line += 1;
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        chunk.push((line, self.line));
                    }
                    Err(e) => {
                        return Some(Err(ArrowError::JsonError(format!(
                            "{}: {e}",
                            self.path.display()
                        ))))
                    }
                }
            }
            if chunk.is_empty() {
                break;
            }
            let item = salvage(
                &chunk,
                |lines| self.decode(lines),
                |(text, line), e| {
                    BadRecord::new(
                        &self.path,
                        format!("line {line}"),
                        &String::from_utf8_lossy(text),
                        e,
                    )
                },
                &self.schema,
                &self.bad,
            );
            match item {
                Some(Ok(b)) if b.num_rows() == 0 => continue,
                other => return other,
            }
        }
        None
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
        ParquetRecordBatchReaderBuilder::try_new(file)
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

    fn next(&mut self) -> Item {
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
