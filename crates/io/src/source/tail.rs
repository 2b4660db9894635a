//! `type = "tail"`: lines appended to a file (NDJSON or CSV), like
//! `tail -F`: it survives rotation (the file renamed away and a new one
//! created: the old one is read to its end first) and truncation (read
//! again from the start).
//!
//! Its position — the file's inode and the byte offset after the last
//! line it returned — goes into checkpoints; a restart resumes there if
//! the file is still the same one (after a rotation it starts the new
//! file from its beginning, and says so).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::lines::{LineBatcher, LineFormat};
use super::schema::{declared, ColumnDecl};
use super::{Source, SourceContext};
use crate::{Error, Result};
use weir_core::paths::resolve;

/// Where a `tail` source starts when there is no checkpoint.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// Every line already in the file, then new ones.
    #[default]
    Beginning,
    /// Only lines appended after the start.
    End,
}

/// A `type = "tail"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TailConfig {
    /// `path`: the file, relative to the manifest. It may not exist yet.
    pub path: PathBuf,
    /// `format`: `"ndjson"` or `"csv"` (one record per line).
    pub format: LineFormat,
    /// `schema`: the columns (required: a stream has no sample to infer from).
    pub schema: Vec<ColumnDecl>,
    /// `delimiter`: CSV delimiter (default `,`).
    #[serde(default = "comma")]
    pub delimiter: char,
    /// `header`: the file's first line is a CSV header to pass over
    /// (default false).
    #[serde(default)]
    pub header: bool,
    /// `start_at`: `"beginning"` (default) or `"end"`.
    #[serde(default)]
    pub start_at: StartAt,
    /// `batch_size`: the most rows per batch, overriding `[pipeline]`.
    pub batch_size: Option<usize>,
    /// `max_delay_ms`: the longest a line waits for its batch to fill
    /// (default 200).
    #[serde(default = "max_delay_ms")]
    pub max_delay_ms: u64,
    /// `poll_interval_ms`: how often the file is checked for new lines
    /// (default 50).
    #[serde(default = "poll_interval_ms")]
    pub poll_interval_ms: u64,
}

fn comma() -> char {
    ','
}
fn max_delay_ms() -> u64 {
    200
}
fn poll_interval_ms() -> u64 {
    50
}

impl TailConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let delimiter = u8::try_from(self.delimiter)
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| Error::source(ctx.name, "`delimiter` must be one ASCII character"))?;
        let schema = declared(&self.schema);
        let batcher = LineBatcher::new(
            schema.clone(),
            self.format,
            delimiter,
            self.batch_size.unwrap_or(ctx.batch_size),
            Duration::from_millis(self.max_delay_ms),
        );
        Ok(Box::new(Tail {
            node: ctx.name.to_string(),
            path: resolve(ctx.base_dir, &self.path),
            config: self.clone(),
            schema,
            batcher,
            file: None,
            partial: Vec::new(),
            read_offset: 0,
            line_end: 0,
            emitted: 0,
            resume: None,
            first_open: true,
            header_error: None,
        }))
    }
}

/// The open file: its inode, and whether its header line is still ahead.
struct Open {
    file: File,
    inode: u64,
    header_pending: bool,
}

struct Tail {
    node: String,
    path: PathBuf,
    config: TailConfig,
    schema: SchemaRef,
    batcher: LineBatcher,
    file: Option<Open>,
    /// Bytes after the last newline read.
    partial: Vec<u8>,
    /// Bytes of the file read so far.
    read_offset: u64,
    /// Offset just after the last complete line handed to the batcher.
    line_end: u64,
    /// Offset just after the last line in a returned batch (the position).
    emitted: u64,
    /// A checkpoint's (inode, offset) to resume at on first open.
    resume: Option<(u64, u64)>,
    first_open: bool,
    /// A CSV header that doesn't match the declared columns.
    header_error: Option<Error>,
}

impl Tail {
    fn fail(&self, e: impl Into<weir_core::Cause>) -> Error {
        Error::source_from(&self.node, self.path.display(), e)
    }

    /// Opens the file if it exists (at the checkpoint's offset, the end,
    /// or the start).
    fn open(&mut self) -> Result<bool> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.fail(e)),
        };
        let meta = file.metadata().map_err(|e| self.fail(e))?;
        let mut offset = 0;
        if let Some((inode, at)) = self.resume.take() {
            if inode == meta.ino() && at <= meta.len() {
                offset = at;
            } else {
                tracing::warn!(node = %self.node, file = %self.path.display(),
                    "the file was rotated or truncated since the checkpoint; reading the new one from its start");
            }
        } else if self.first_open && self.config.start_at == StartAt::End {
            offset = meta.len();
        }
        self.first_open = false;
        let mut open = Open {
            file,
            inode: meta.ino(),
            header_pending: self.config.header && offset == 0,
        };
        open.file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| self.fail(e))?;
        self.file = Some(open);
        self.partial.clear();
        self.read_offset = offset;
        self.line_end = offset;
        self.emitted = offset;
        Ok(true)
    }

    /// Reads what was appended; moves complete lines to the batcher
    /// until it is full. `true` if anything was read.
    fn read_more(&mut self) -> Result<bool> {
        let Some(open) = self.file.as_mut() else {
            return Ok(false);
        };
        let mut chunk = vec![0u8; 256 * 1024];
        let n = open
            .file
            .read(&mut chunk)
            .map_err(|e| Error::source_from(&self.node, self.path.display(), e))?;
        self.read_offset += n as u64;
        self.partial.extend_from_slice(&chunk[..n]);
        self.split_lines();
        Ok(n > 0)
    }

    fn split_lines(&mut self) {
        let mut start = 0;
        while !self.batcher.full() {
            let Some(nl) = self.partial[start..].iter().position(|b| *b == b'\n') else {
                break;
            };
            let line = &self.partial[start..start + nl];
            let header = self
                .file
                .as_mut()
                .is_some_and(|o| std::mem::take(&mut o.header_pending));
            if !header {
                self.batcher.push(line);
            } else if self.header_error.is_none() && self.config.format == LineFormat::Csv {
                self.header_error = self.check_header(line);
            }
            start += nl + 1;
            self.line_end += (nl + 1) as u64;
        }
        self.partial.drain(..start);
    }

    /// At the end of the open file: a rotated or truncated file is left
    /// for the new one. `true` if the file changed.
    fn check_rotation(&mut self) -> Result<bool> {
        let Some(inode) = self.file.as_ref().map(|o| o.inode) else {
            return self.open();
        };
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.ino() != inode => {
                // Whatever reached the old file before the new one
                // appeared is read first; its last line, if the writer
                // left it without a newline, still counts.
                while self.read_more()? {}
                if self.batcher.len() > 0 {
                    return Ok(true);
                }
                tracing::info!(node = %self.node, file = %self.path.display(), "the file was rotated; following the new one");
                let leftover = std::mem::take(&mut self.partial);
                let opened = self.open()?;
                self.batcher.push(&leftover);
                Ok(opened)
            }
            Ok(meta) if meta.len() < self.read_offset => {
                tracing::warn!(node = %self.node, file = %self.path.display(), "the file was truncated; reading it from the start");
                self.resume = None;
                self.open()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A CSV header whose names aren't the declared columns, in order, is
    /// an error: the lines are read by position, and a schema declared in
    /// another order would silently put values under the wrong names.
    fn check_header(&self, line: &[u8]) -> Option<Error> {
        let names: Vec<String> = csv::ReaderBuilder::new()
            .delimiter(u8::try_from(self.config.delimiter).unwrap_or(b','))
            .has_headers(false)
            .from_reader(line)
            .records()
            .next()?
            .ok()?
            .iter()
            .map(|n| n.trim_end_matches('\r').to_string())
            .collect();
        let declared: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        (names != declared).then(|| {
            self.fail(format!(
                "the header names [{}] but `schema` declares [{}]; a tailed file is read by \
                 position, so declare every column, in the header's order",
                names.join(", "),
                declared.join(", ")
            ))
        })
    }

    fn emit(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(e) = self.header_error.take() {
            return Err(e);
        }
        let batch = self.batcher.take().map_err(|e| self.fail(e))?;
        self.emitted = self.line_end;
        Ok(batch)
    }
}

impl Source for Tail {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(1));
        loop {
            // Lines already read past a full batch come first.
            self.split_lines();
            if self.batcher.full() {
                return self.emit();
            }
            if self.read_more()? {
                continue;
            }
            // At the end of the file as it is now.
            if self.batcher.due() {
                return self.emit();
            }
            // Lines of the old file go out before following a new one, so
            // a position never mixes two files.
            if self.batcher.len() == 0 && self.check_rotation()? {
                continue;
            }
            let wait = self.batcher.time_left().map_or(poll, |left| left.min(poll));
            std::thread::sleep(wait.max(Duration::from_millis(1)));
            if self.batcher.len() == 0 {
                // Idle: let the run see stop, pause and checkpoints.
                return Ok(Some(RecordBatch::new_empty(self.schema.clone())));
            }
        }
    }

    fn drain(&mut self) -> Result<Vec<RecordBatch>> {
        // Lines already read go out; the position moves past them.
        Ok(self.emit()?.into_iter().collect())
    }

    fn position(&self) -> Option<serde_json::Value> {
        let inode = self
            .file
            .as_ref()
            .map(|o| o.inode)
            .or(self.resume.map(|r| r.0));
        let offset = match (&self.file, self.resume) {
            (None, Some((_, at))) => at,
            _ => self.emitted,
        };
        Some(serde_json::json!({ "inode": inode, "offset": offset }))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let offset = position.get("offset").and_then(|o| o.as_u64()).unwrap_or(0);
        match position.get("inode").and_then(|i| i.as_u64()) {
            Some(inode) => self.resume = Some((inode, offset)),
            // The file did not exist at the checkpoint: read it whole.
            None => self.first_open = false,
        }
        self.file = None;
        Ok(())
    }
}
