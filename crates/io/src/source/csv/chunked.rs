//! A CSV file decoded on several cores, batches in file order.
//!
//! Tokenizing and parsing a CSV file is most of a CSV-to-Parquet job, and
//! arrow's reader does both on the thread that asks for the next batch.
//! Here one thread cuts the text into chunks of whole records and decoder
//! threads turn the chunks into batches, handed out in file order. The cut
//! finds record ends with a `memchr` scan over quotes and newlines only,
//! by the reader's own rules: a quote opens a quoted value
//! only as a field's first byte (`5" screen` is text), `""` inside quotes
//! is a quote, and a newline outside quotes ends a record. A chunk holds
//! `batch_size` records, so the batches are the ones the sequential reader
//! makes, row for row.
//!
//! Dialects with an `escape` character or comment lines stay on the
//! sequential reader: the scan does not follow them.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use arrow::csv::reader::{Format, ReaderBuilder};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::dialect::Dialect;

/// Files smaller than this are read on one thread: starting decoder
/// threads costs more than it saves.
pub(crate) const MIN_BYTES: u64 = 8 << 20;

/// Batches larger than this decode on one thread: the chunks in flight
/// (up to `2 × decoders + 2`, a batch each) would multiply the memory a
/// run with huge batches already spends on one.
const MAX_BATCH: usize = 65_536;

/// How many decoder threads a file gets: none (read sequentially) for a
/// dialect the scan can't follow, for batches over 65,536 rows, or on
/// fewer than three cores.
///
/// On two cores a pipeline's other stages already keep the second core
/// busy: with two decoders there, CSV → blackhole took 0.22 s instead of
/// 0.32, but the seed job (CSV → four plugins → Parquet, 1.7 cores used)
/// 0.498 s instead of 0.440 by median. From three cores on, the cores
/// beyond the pipeline's stages decode.
pub(crate) fn decoders(dialect: &Dialect, batch_size: usize) -> usize {
    if dialect.escape.is_some() || dialect.comment.is_some() || batch_size > MAX_BATCH {
        return 0;
    }
    match std::thread::available_parallelism().map_or(1, usize::from) {
        0..=2 => 0,
        n => (n - 1).min(4),
    }
}

/// What a decoder thread needs to turn a chunk into a batch.
struct Decoding {
    file_schema: SchemaRef,
    projection: Vec<usize>,
    format: Format,
}

impl Decoding {
    /// One chunk of whole records (the last may lack its newline).
    fn decode(&self, chunk: &[u8], records: usize) -> Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = ReaderBuilder::new(self.file_schema.clone())
            .with_format(self.format.clone())
            .with_projection(self.projection.clone())
            // One more than the chunk holds: a bare `\r` line end the cut
            // did not count still leaves the chunk one batch.
            .with_batch_size(records.max(1) + 1)
            .build_decoder();
        let mut rest = chunk;
        let mut batches = Vec::new();
        loop {
            let used = decoder.decode(rest)?;
            rest = &rest[used..];
            if rest.is_empty() {
                // The end of the chunk ends its last record.
                decoder.decode(&[])?;
                batches.extend(decoder.flush()?);
                break;
            }
            if used == 0 {
                let Some(batch) = decoder.flush()? else {
                    return Err(ArrowError::CsvError("a CSV chunk did not decode".into()));
                };
                batches.push(batch);
            }
        }
        match batches.len() {
            0 => Ok(None),
            1 => Ok(batches.pop()),
            _ => arrow::compute::concat_batches(&batches[0].schema(), &batches).map(Some),
        }
    }
}

/// A chunk of the file: its place in the file, its bytes, its records.
type Chunk = (u64, Vec<u8>, usize);
type Decoded = (u64, Result<Option<RecordBatch>, ArrowError>);

/// Batches of `input` (the text after any skipped lines; its header
/// still there when `header`) decoded on `decoders` threads.
pub(crate) struct Chunked {
    results: Receiver<Decoded>,
    /// Batches decoded ahead of the one handed out next.
    early: BTreeMap<u64, Result<Option<RecordBatch>, ArrowError>>,
    next: u64,
    /// One ticket per chunk not yet handed out: bounds the memory ahead.
    tickets: Receiver<()>,
    /// How the cut ended: the number of chunks, or why it stopped. Unset
    /// while it runs, and if its thread never ran or died.
    cut: Arc<Mutex<Option<std::io::Result<u64>>>>,
}

impl Chunked {
    pub(crate) fn start(
        input: Box<dyn Read + Send>,
        dialect: &Dialect,
        header: bool,
        file_schema: SchemaRef,
        projection: Vec<usize>,
        batch_size: usize,
        decoders: usize,
    ) -> Chunked {
        let columns = (file_schema, projection);
        Self::reading_blocks(
            input,
            dialect,
            header,
            columns,
            batch_size,
            decoders,
            1 << 20,
        )
    }

    /// [`start`](Self::start), reading `block` bytes at a time (tests cut
    /// tiny blocks to land on every boundary).
    fn reading_blocks(
        input: Box<dyn Read + Send>,
        dialect: &Dialect,
        header: bool,
        (file_schema, projection): (SchemaRef, Vec<usize>),
        batch_size: usize,
        decoders: usize,
        block: usize,
    ) -> Chunked {
        let decoding = Arc::new(Decoding {
            file_schema,
            projection,
            format: dialect.format(false),
        });
        let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(decoders);
        let (result_tx, results) = mpsc::channel();
        let (ticket_tx, tickets) = mpsc::sync_channel(2 * decoders + 2);
        let cut_end = Arc::new(Mutex::new(None));
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        for _ in 0..decoders {
            let (chunks, results, decoding) =
                (chunk_rx.clone(), result_tx.clone(), decoding.clone());
            spawn("weir-csv-decode", move || {
                decode_chunks(&chunks, &results, &decoding)
            });
        }
        let cut = Cut {
            quote: dialect.quote,
            delimiter: dialect.delimiter,
            header,
            batch_size: batch_size.max(1),
        };
        let end = cut_end.clone();
        spawn("weir-csv-split", move || {
            let outcome = cut.run(input, &chunk_tx, &ticket_tx, block);
            if let Ok(mut end) = end.lock() {
                *end = Some(outcome);
            }
        });
        Chunked {
            results,
            early: BTreeMap::new(),
            next: 0,
            tickets,
            cut: cut_end,
        }
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) {
    // Without its threads the file is not read this way: the channels
    // close early and the reader reports the chunks it never got.
    if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(work) {
        tracing::warn!(error = %e, "can't start a CSV decoder thread");
    }
}

fn decode_chunks(
    chunks: &Mutex<Receiver<Chunk>>,
    results: &mpsc::Sender<Decoded>,
    decoding: &Decoding,
) {
    loop {
        let next = match chunks.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, bytes, records)) = next else {
            return;
        };
        // A panic in the decoder on some input fails that batch; it must
        // not take the batch's rows away unnoticed.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decoding.decode(&bytes, records)
        }))
        .unwrap_or_else(|_| {
            Err(ArrowError::CsvError(
                "the CSV decoder panicked on this chunk".into(),
            ))
        });
        if results.send((seq, decoded)).is_err() {
            return;
        }
    }
}

impl Iterator for Chunked {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(decoded) = self.early.remove(&self.next) {
                self.next += 1;
                // The chunk is handed out: the splitter may cut another.
                let _ = self.tickets.try_recv();
                match decoded {
                    Ok(None) => continue,
                    Ok(Some(batch)) => return Some(Ok(batch)),
                    Err(e) => return Some(Err(e)),
                }
            }
            match self.results.recv() {
                Ok((seq, decoded)) => {
                    self.early.insert(seq, decoded);
                }
                // Every decoder ended: the file is read, or reading failed.
                Err(_) => return self.ended(),
            }
        }
    }
}

impl Chunked {
    /// The end once no decoder is left: the end of the file when every
    /// chunk cut was handed out, else an error — never fewer rows quietly.
    fn ended(&mut self) -> Option<Result<RecordBatch, ArrowError>> {
        if self.next == u64::MAX {
            return None;
        }
        let end = self.cut.lock().ok().and_then(|mut c| c.take());
        let handed_out = std::mem::replace(&mut self.next, u64::MAX);
        let lost = |why: String| Some(Err(ArrowError::CsvError(why)));
        match end {
            Some(Ok(chunks)) if handed_out >= chunks => None,
            Some(Ok(chunks)) => lost(format!(
                "the CSV decoder threads stopped at chunk {handed_out} of {chunks}"
            )),
            Some(Err(e)) => Some(Err(ArrowError::IoError(e.to_string(), e))),
            None => lost("the CSV reading thread stopped before the end of the file".into()),
        }
    }
}

/// Cuts text into chunks of `batch_size` records.
struct Cut {
    quote: u8,
    delimiter: u8,
    header: bool,
    batch_size: usize,
}

/// How far the scan of the chunk being cut has come.
#[derive(Default)]
struct Scan {
    /// Bytes of the chunk already scanned.
    at: usize,
    /// Where the record being scanned starts.
    record_start: usize,
    in_quotes: bool,
    records: usize,
}

impl Cut {
    fn run(
        &self,
        mut input: Box<dyn Read + Send>,
        chunks: &SyncSender<Chunk>,
        tickets: &SyncSender<()>,
        block: usize,
    ) -> std::io::Result<u64> {
        let mut block = vec![0u8; block.max(1)];
        let mut chunk: Vec<u8> = Vec::with_capacity(2 << 20);
        let mut scan = Scan::default();
        let mut header = self.header;
        let mut seq = 0u64;
        let mut send = |bytes: Vec<u8>, records: usize| -> bool {
            // Blocks while enough chunks wait to be handed out; an error:
            // the reader is gone.
            if tickets.send(()).is_err() || chunks.send((seq, bytes, records)).is_err() {
                return false;
            }
            seq += 1;
            true
        };
        loop {
            let n = match input.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            chunk.extend_from_slice(&block[..n]);
            while let Some(end) = self.scan(&mut chunk, &mut scan, &mut header) {
                let rest = chunk.split_off(end);
                let records = scan.records;
                scan = Scan::default();
                if !send(std::mem::replace(&mut chunk, rest), records) {
                    // The reader is gone: nobody counts the chunks.
                    return Ok(u64::MAX);
                }
            }
        }
        // Not a file of a header alone (or nothing): the last records.
        if !header && !chunk.is_empty() {
            let records = scan.records + usize::from(scan.record_start < chunk.len());
            send(chunk, records);
        }
        Ok(seq)
    }

    /// Scans `chunk` on from `scan.at`; the end of the chunk to cut (just
    /// past the newline ending its last record) once it holds
    /// `batch_size` records. A header is dropped from the chunk as found.
    fn scan(&self, chunk: &mut Vec<u8>, scan: &mut Scan, header: &mut bool) -> Option<usize> {
        while let Some(found) = memchr::memchr2(b'\n', self.quote, &chunk[scan.at..]) {
            let at = scan.at + found;
            let byte = chunk[at];
            if scan.in_quotes {
                if byte == self.quote {
                    match chunk.get(at + 1) {
                        // `""` inside quotes: a quote in the value.
                        Some(&next) if next == self.quote => scan.at = at + 2,
                        Some(_) => {
                            scan.in_quotes = false;
                            scan.at = at + 1;
                        }
                        // Which of the two it is shows with the next block.
                        None => {
                            scan.at = at;
                            return None;
                        }
                    }
                } else {
                    scan.at = at + 1;
                }
                continue;
            }
            scan.at = at + 1;
            if byte == self.quote {
                // As the reader: a quote opens a quoted value only as a
                // field's first byte; elsewhere (`5" screen`) it is text.
                // A chunk starts at a record's start.
                scan.in_quotes = at == 0
                    || matches!(chunk[at - 1], b'\n' | b'\r')
                    || chunk[at - 1] == self.delimiter;
                continue;
            }
            let line = &chunk[scan.record_start..at];
            scan.record_start = at + 1;
            if line.is_empty() || line == b"\r" {
                // The reader skips empty lines.
                continue;
            }
            if *header {
                *header = false;
                chunk.drain(..at + 1);
                *scan = Scan::default();
                continue;
            }
            scan.records += 1;
            if scan.records == self.batch_size {
                return Some(at + 1);
            }
        }
        scan.at = chunk.len();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};

    fn read(text: &str, header: bool, batch_size: usize) -> Vec<RecordBatch> {
        read_blocks(text, header, batch_size, 1 << 20)
    }

    /// The columns of the tests' files: `id`, `name`.
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    /// `text` decoded in chunks, read `block` bytes at a time.
    fn read_blocks(text: &str, header: bool, batch_size: usize, block: usize) -> Vec<RecordBatch> {
        let dialect = Dialect::plain(b',', header);
        Chunked::reading_blocks(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            &dialect,
            header,
            (schema(), vec![0, 1]),
            batch_size,
            2,
            block,
        )
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn sequential(text: &str, header: bool, batch_size: usize) -> Vec<RecordBatch> {
        ReaderBuilder::new(schema())
            .with_format(Dialect::plain(b',', header).format(header))
            .with_batch_size(batch_size)
            .build(std::io::Cursor::new(text.as_bytes().to_vec()))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn chunks_decode_to_the_sequential_readers_batches_quoted_newlines_and_all() {
        let mut text = String::from("id,name\n");
        for i in 0..1000 {
            match i % 4 {
                0 => text.push_str(&format!("{i},\"two\nlines, \"\"quoted\"\"\"\r\n")),
                1 => text.push_str(&format!("{i},plain\n\n")),
                2 => text.push_str(&format!("{i},\n")),
                _ => text.push_str(&format!("{i},\"a,b\"\n")),
            }
        }
        text.push_str("1000,no newline at the end");
        for batch_size in [1, 7, 100, 5000] {
            assert_eq!(
                read(&text, true, batch_size),
                sequential(&text, true, batch_size),
                "batch size {batch_size}"
            );
        }
    }

    #[test]
    fn quotes_inside_unquoted_values_and_after_closing_quotes_are_text_as_the_reader_reads_them() {
        let mut text = String::from("id,name\n");
        for i in 0..300 {
            match i % 5 {
                0 => text.push_str(&format!("{i},5\" screen\n")),
                1 => text.push_str(&format!("{i},\"quoted\"then text\n")),
                2 => text.push_str(&format!("{i},\"\"\"\"\n")),
                3 => text.push_str(&format!("{i},\"line\none\"\"\nline two\"\n")),
                _ => text.push_str(&format!("{i},a \"quoted\" word\n")),
            }
        }
        let expected = sequential(&text, true, 7);
        assert_eq!(expected.iter().map(|b| b.num_rows()).sum::<usize>(), 300);
        // Every block size from 1 byte: quotes, doubled quotes and line
        // ends fall on every block boundary.
        for block in (1..40).chain([4096]) {
            assert_eq!(
                read_blocks(&text, true, 7, block),
                expected,
                "blocks of {block}"
            );
        }
    }

    /// A reader whose threads are gone, having handed out `next` chunks,
    /// the cut having ended as `cut` says.
    fn orphaned(next: u64, cut: Option<std::io::Result<u64>>) -> Chunked {
        let (_, results) = mpsc::channel();
        let (_, tickets) = mpsc::sync_channel(1);
        Chunked {
            results,
            early: BTreeMap::new(),
            next,
            tickets,
            cut: Arc::new(Mutex::new(cut)),
        }
    }

    #[test]
    fn threads_gone_before_every_chunk_was_handed_out_are_an_error_never_a_short_file() {
        assert!(orphaned(3, Some(Ok(3))).next().is_none());
        let mut short = orphaned(1, Some(Ok(3)));
        assert!(matches!(short.next(), Some(Err(_))));
        assert!(short.next().is_none(), "reported once");
        assert!(matches!(orphaned(0, None).next(), Some(Err(_))));
        let broken = std::io::Error::other("disk gone");
        assert!(matches!(
            orphaned(0, Some(Err(broken))).next(),
            Some(Err(_))
        ));
    }

    #[test]
    fn a_header_alone_or_nothing_is_no_batch() {
        assert!(read("id,name\n", true, 10).is_empty());
        assert!(read("", true, 10).is_empty());
        assert!(read("", false, 10).is_empty());
    }

    #[test]
    fn a_bad_value_is_an_error_in_its_batch() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let dialect = Dialect::plain(b',', false);
        let got: Vec<_> = Chunked::start(
            Box::new(std::io::Cursor::new(b"1\n2\nthree\n4\n".to_vec())),
            &dialect,
            false,
            schema,
            vec![0],
            2,
            2,
        )
        .collect();
        assert!(got[0].is_ok());
        assert!(got[1].is_err(), "{got:?}");
    }
}
