//! The machinery every file sink shares: a lazily created format writer
//! over a temporary file that is renamed into place on commit.
//!
//! Under checkpoints a file sink writes *parts* instead of one file:
//! `out/orders.parquet` becomes `out/orders-000000.parquet`,
//! `out/orders-000001.parquet`, … — one per checkpoint that saw rows. A
//! part is closed at the barrier under a hidden temporary name and renamed
//! into place only once its checkpoint is on disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::{Sink, SinkContext};
use crate::{Error, Result};
use weir_core::checkpoint::{Rename, SinkState};
use weir_core::paths::resolve;

/// The buffered temporary file a format writes into.
pub(crate) type Out = BufWriter<File>;

/// One file format: how to start, append to, and close a file.
pub(crate) trait Format: Send + Sized + 'static {
    /// Format-specific settings.
    type Options: Clone + Send + 'static;
    /// Starts a file for batches of `schema`.
    fn create(out: Out, schema: &SchemaRef, options: &Self::Options) -> Result<Self, String>;
    /// Appends a batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), String>;
    /// Writes any footer and hands the file back.
    fn close(self) -> Result<Out, String>;
}

/// A file sink in format `F`, written atomically.
pub(crate) struct FileSink<F: Format> {
    node: String,
    target: PathBuf,
    temp: PathBuf,
    options: F::Options,
    declared: Option<SchemaRef>,
    writer: Option<(F, SchemaRef)>,
    /// Part files, under checkpoints.
    parts: Option<Parts>,
}

/// How part files are named: `<dir>/<stem>-<n>.<ext>`.
struct Parts {
    dir: PathBuf,
    stem: String,
    ext: String,
    next: u64,
}

impl Parts {
    fn file(&self, n: u64) -> String {
        format!("{}-{n:06}{}", self.stem, self.ext)
    }
    fn target(&self) -> PathBuf {
        self.dir.join(self.file(self.next))
    }
    fn temp(&self) -> PathBuf {
        self.dir.join(format!(".{}.weir.tmp", self.file(self.next)))
    }
    fn is_temp(&self, name: &str) -> bool {
        name.strip_prefix(&format!(".{}-", self.stem))
            .and_then(|rest| rest.strip_suffix(&format!("{}.weir.tmp", self.ext)))
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl<F: Format> FileSink<F> {
    pub(crate) fn open(
        ctx: SinkContext<'_>,
        path: &Path,
        options: F::Options,
    ) -> Result<Box<dyn Sink>> {
        let target = resolve(ctx.base_dir, path);
        let file_name = target
            .file_name()
            .ok_or_else(|| {
                Error::sink(ctx.name, format!("`path` {} names no file", path.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
        let temp = dir.join(format!(".{file_name}.weir-{}.tmp", std::process::id()));
        let parts = ctx.checkpointing.then(|| {
            let path = Path::new(&file_name);
            Parts {
                dir: dir.clone(),
                stem: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                ext: path
                    .extension()
                    .map(|e| format!(".{}", e.to_string_lossy()))
                    .unwrap_or_default(),
                next: 0,
            }
        });
        Ok(Box::new(FileSink::<F> {
            node: ctx.name.to_string(),
            target,
            temp,
            options,
            declared: ctx.schema.cloned(),
            writer: None,
            parts,
        }))
    }

    fn fail(&self, e: impl Into<weir_core::Cause>) -> Error {
        Error::sink_from(&self.node, self.target.display(), e)
    }

    fn start(&mut self, schema: &SchemaRef) -> Result<()> {
        if let Some(parts) = &self.parts {
            self.temp = parts.temp();
        }
        if let Some(dir) = self.temp.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                let target = self.target.display();
                let context = format!("{target}: can't create directory {}", dir.display());
                Error::sink_from(&self.node, context, e)
            })?;
        }
        let file = File::create(&self.temp).map_err(|e| self.fail(e))?;
        let format =
            F::create(BufWriter::new(file), schema, &self.options).map_err(|e| self.fail(e))?;
        self.writer = Some((format, schema.clone()));
        Ok(())
    }
}

impl<F: Format> Sink for FileSink<F> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.writer.is_none() {
            let schema = self.declared.clone().unwrap_or_else(|| batch.schema());
            self.start(&schema)?;
        }
        let node = self.node.clone();
        let target = self.target.clone();
        let Some((format, schema)) = self.writer.as_mut() else {
            return Err(Error::sink(&node, "writer not started"));
        };
        let same_shape = batch.schema().fields().len() == schema.fields().len()
            && batch
                .schema()
                .fields()
                .iter()
                .zip(schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same_shape {
            return Err(Error::sink(
                &node,
                format!(
                    "{}: a batch's schema differs from the first batch's ({} vs {schema})",
                    target.display(),
                    batch.schema()
                ),
            ));
        }
        // Same names and types; restamp so nullability and metadata match
        // what the file declares.
        let batch = &RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| Error::sink_from(&node, target.display(), e))?;
        format
            .write(batch)
            .map_err(|e| Error::sink_from(&node, target.display(), e))
    }

    fn prepare(&mut self) -> Result<SinkState> {
        let Some(parts) = &self.parts else {
            return Ok(SinkState::default());
        };
        let target = parts.target();
        let mut pending = Vec::new();
        if let Some((format, _)) = self.writer.take() {
            close_synced(format).map_err(|e| {
                let _ = std::fs::remove_file(&self.temp);
                self.fail(e)
            })?;
            pending.push(Rename {
                from: self.temp.clone(),
                to: target,
            });
            if let Some(parts) = &mut self.parts {
                parts.next += 1;
            }
        }
        let next = self.parts.as_ref().map_or(0, |p| p.next);
        Ok(SinkState {
            state: serde_json::json!({ "next_part": next }),
            pending,
            ..SinkState::default()
        })
    }

    fn resume(&mut self, state: &SinkState) -> Result<()> {
        let Some(parts) = &mut self.parts else {
            return Ok(());
        };
        parts.next = state
            .state
            .get("next_part")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        // Parts prepared after the checkpoint: their rows are replayed.
        for entry in std::fs::read_dir(&parts.dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            if parts.is_temp(&entry.file_name().to_string_lossy()) {
                tracing::debug!(node = %self.node, file = %entry.path().display(), "removing a part written after the checkpoint");
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        self.parts.is_some()
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.writer.is_none() {
            match self.declared.clone() {
                Some(schema) => self.start(&schema)?,
                None => {
                    tracing::warn!(node = %self.node, path = %self.target.display(),
                        "no batch arrived and the schema is unknown: no file written");
                    return Ok(());
                }
            }
        }
        let Some((format, _)) = self.writer.take() else {
            return Ok(());
        };
        let temp = self.temp.clone();
        let target = self.target.clone();
        let finish = move || -> Result<(), String> {
            close_synced(format)?;
            std::fs::rename(&temp, &target).map_err(|e| e.to_string())
        };
        if let Err(e) = finish() {
            let _ = std::fs::remove_file(&self.temp);
            return Err(self.fail(e));
        }
        tracing::info!(node = %self.node, path = %self.target.display(), "committed");
        Ok(())
    }

    fn abort(self: Box<Self>) {
        // Drop removes the temporary file.
    }
}

impl<F: Format> Drop for FileSink<F> {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Closes a format's file and makes it durable.
fn close_synced<F: Format>(format: F) -> Result<(), String> {
    let out = format.close()?;
    let file = out.into_inner().map_err(|e| e.error().to_string())?;
    file.sync_all().map_err(|e| e.to_string())
}

/// Flushes a buffered writer, for formats without a footer.
pub(crate) fn flushed(mut out: Out) -> Result<Out, String> {
    out.flush().map_err(|e| e.to_string())?;
    Ok(out)
}
