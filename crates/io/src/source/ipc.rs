//! `type = "ipc"`: Arrow IPC files (`.arrow`) or streams.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::bad::{BadRecords, OnBadRecord};
use super::files::{self, BatchIter, FileSource, MultiFile};
use super::{Source, SourceContext};
use crate::{Error, Result};

/// A `type = "ipc"` source. The file and stream formats are told apart by
/// the file's magic bytes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpcConfig {
    /// `path`: a file or glob, relative to the manifest.
    pub path: PathBuf,
    /// `on_bad_record`: `"fail"` (default), `"skip"` or `"dead_letter"`;
    /// the unit is a file (an IPC file can't be read past corruption).
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
    /// `refresh_ms`: read the whole source again whenever it changed
    /// (checked this often), each read a new version of a table — see
    /// `docs/joins.md`. Absent: read once.
    #[serde(default)]
    pub refresh_ms: Option<u64>,
}

const FILE_MAGIC: &[u8; 6] = b"ARROW1";

fn open_ipc(node: &str, path: &Path) -> Result<(SchemaRef, BatchIter)> {
    weir_core::contain::contained(|| read_ipc_header(node, path))
        .unwrap_or_else(|e| Err(Error::source_from(node, path.display(), e)))
}

fn read_ipc_header(node: &str, path: &Path) -> Result<(SchemaRef, BatchIter)> {
    let fail = |e: weir_core::Cause| Error::source_from(node, path.display(), e);
    let mut file = files::open(node, path)?;
    let mut magic = [0u8; 6];
    let is_file = file.read_exact(&mut magic).is_ok() && &magic == FILE_MAGIC;
    file.seek(SeekFrom::Start(0)).map_err(|e| fail(e.into()))?;
    if is_file {
        check_blocks(&mut file).map_err(|e| fail(e.into()))?;
        let reader = FileReader::try_new(file, None).map_err(|e| fail(e.into()))?;
        Ok((reader.schema(), Box::new(Numbered::new(reader))))
    } else {
        let reader =
            StreamReader::try_new(BufReader::new(file), None).map_err(|e| fail(e.into()))?;
        Ok((reader.schema(), Box::new(Numbered::new(reader))))
    }
}

/// Checks that every block the footer lists lies inside the file. arrow-rs
/// allocates a block's stated length before reading it: a footer lying by
/// a few bytes would ask for gigabytes (found by the `ipc` fuzz target).
fn check_blocks(file: &mut std::fs::File) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len < 10 {
        return Err("too short for an Arrow IPC file".into());
    }
    let mut tail = [0u8; 10];
    file.seek(SeekFrom::Start(len - 10)).map_err(io)?;
    file.read_exact(&mut tail).map_err(io)?;
    let footer_len = arrow::ipc::reader::read_footer_length(tail).map_err(|e| e.to_string())?;
    let footer_start = (len - 10)
        .checked_sub(footer_len as u64)
        .ok_or("the footer's length is larger than the file")?;
    let mut footer = vec![0u8; footer_len];
    file.seek(SeekFrom::Start(footer_start)).map_err(io)?;
    file.read_exact(&mut footer).map_err(io)?;
    let footer =
        arrow::ipc::root_as_footer(&footer).map_err(|e| format!("unreadable footer: {e}"))?;
    let blocks = footer.recordBatches().into_iter().flatten().enumerate();
    let dictionaries = footer.dictionaries().into_iter().flatten().enumerate();
    let labelled = blocks
        .map(|(i, b)| ("record batch", i, b))
        .chain(dictionaries.map(|(i, b)| ("dictionary", i, b)));
    for (kind, i, block) in labelled {
        let end = [
            block.offset(),
            block.metaDataLength() as i64,
            block.bodyLength(),
        ]
        .into_iter()
        .try_fold(0i64, |sum, n| {
            (n >= 0).then(|| sum.checked_add(n)).flatten()
        });
        if end.is_none_or(|end| end as u64 > footer_start) {
            return Err(format!(
                "the footer places {kind} block {i} at bytes {}+{}+{}, outside the file's {footer_start} \
                 bytes of data",
                block.offset(),
                block.metaDataLength(),
                block.bodyLength()
            ));
        }
    }
    Ok(())
}

/// A file's record batches; an error (or a reader panic, contained) names
/// the record batch it came from, counted from 0 as pyarrow's
/// `get_batch(i)` does.
struct Numbered<I> {
    batches: I,
    index: usize,
    rows: usize,
}

impl<I> Numbered<I> {
    fn new(batches: I) -> Self {
        Numbered {
            batches,
            index: 0,
            rows: 0,
        }
    }
}

impl<I: Iterator<Item = Result<RecordBatch, ArrowError>>> Iterator for Numbered<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<Self::Item> {
        let next = weir_core::contain::contained(|| self.batches.next())
            .unwrap_or_else(|e| Some(Err(ArrowError::IpcError(e))));
        match next {
            Some(Ok(batch)) => {
                self.index += 1;
                self.rows += batch.num_rows();
                Some(Ok(batch))
            }
            Some(Err(e)) => Some(Err(ArrowError::IpcError(format!(
                "record batch {} (after row {}): {}",
                self.index,
                self.rows,
                super::bad::plain_message(&e)
            )))),
            None => None,
        }
    }
}

impl IpcConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let files = files::expand(ctx.name, ctx.base_dir, &self.path)?;
        let (schema, _) = open_ipc(ctx.name, &files[0])?;
        let node = ctx.name.to_string();
        let expected = schema.clone();
        let open = move |path: &Path| -> Result<BatchIter> {
            let (schema, batches) = open_ipc(&node, path)?;
            files::fits(&expected, &schema)
                .map_err(|e| Error::source_from(&node, path.display(), e))?;
            Ok(files::restamped(batches, expected.clone()))
        };
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open)
                .with_policy(self.on_bad_record, BadRecords::default()),
        }))
    }
}
