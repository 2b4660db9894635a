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
}

const FILE_MAGIC: &[u8; 6] = b"ARROW1";

fn open_ipc(node: &str, path: &Path) -> Result<(SchemaRef, BatchIter)> {
    crate::contain::contained(|| read_ipc_header(node, path))
        .unwrap_or_else(|e| Err(Error::source(node, format!("{}: {e}", path.display()))))
}

fn read_ipc_header(node: &str, path: &Path) -> Result<(SchemaRef, BatchIter)> {
    let fail = |e: &dyn std::fmt::Display| Error::source(node, format!("{}: {e}", path.display()));
    let mut file = files::open(node, path)?;
    let mut magic = [0u8; 6];
    let is_file = file.read_exact(&mut magic).is_ok() && &magic == FILE_MAGIC;
    file.seek(SeekFrom::Start(0)).map_err(|e| fail(&e))?;
    if is_file {
        let reader = FileReader::try_new(file, None).map_err(|e| fail(&e))?;
        Ok((reader.schema(), Box::new(Numbered::new(reader))))
    } else {
        let reader = StreamReader::try_new(BufReader::new(file), None).map_err(|e| fail(&e))?;
        Ok((reader.schema(), Box::new(Numbered::new(reader))))
    }
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
        let next = crate::contain::contained(|| self.batches.next())
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
                .map_err(|e| Error::source(&node, format!("{}: {e}", path.display())))?;
            Ok(files::restamped(batches, expected.clone()))
        };
        Ok(Box::new(FileSource {
            schema,
            files: MultiFile::new(ctx.name, files, open)
                .with_policy(self.on_bad_record, BadRecords::default()),
        }))
    }
}
