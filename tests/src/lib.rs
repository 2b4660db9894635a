//! Shared helpers for weir's integration tests: paths of the plugins built
//! from source by `build.rs`, one shared plugin host, scratch directories,
//! and readers for every output format.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use weir::plugin::{EngineConfig, PluginHost};

pub mod api;
pub mod kafka;

/// Component files of every plugin, built from source.
pub mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `tests/reference/SCRIPT` with `.venv`'s Python (pyarrow, pandas,
/// DuckDB: `scripts/setup --test` makes it).
pub fn reference(script: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("tests/reference").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {script} (scripts/setup --test makes .venv): {e}"))
}

/// Replaces the file at `to` with `bytes` the way a build tool does:
/// write beside it, then rename over it (a watcher never sees half a file).
pub fn replace(to: &Path, bytes: &[u8]) {
    let tmp = to.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, to).expect("rename");
}

/// `component` with a custom section naming `tag` appended: the same
/// plugin with new bytes (a new hash), as a rebuild gives.
pub fn new_version(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"weir-test";
    let mut out = component.to_vec();
    out.push(0); // custom section
    out.push((1 + name.len() + tag.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(tag.as_bytes());
    out
}

/// One engine for the whole test binary: compiled components are cached
/// by content hash, so each plugin compiles once.
pub fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| PluginHost::new(&EngineConfig::default()).expect("plugin host"))
}

/// A temporary directory holding a manifest and its files.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A fresh, empty directory.
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name`; returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// Writes `pipeline.toml` and runs it to completion.
    pub fn run(&self, manifest: &str) -> weir::Result<weir::exec::RunSummary> {
        let path = self.write("pipeline.toml", manifest);
        weir::run_file(&path, host())
    }

    /// Writes `pipeline.toml` and only prepares it (what `weir check` does).
    pub fn check(&self, manifest: &str) -> weir::Result<weir::graph::Prepared> {
        let path = self.write("pipeline.toml", manifest);
        let graph = weir::graph::Graph::new(weir::manifest::Manifest::load(&path)?)?;
        graph.prepare(host())
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

fn one(schema: SchemaRef, batches: Vec<RecordBatch>) -> anyhow::Result<RecordBatch> {
    Ok(concat_batches(&schema, &batches)?)
}

/// Everything in a Parquet file, as one batch.
pub fn read_parquet(path: &Path) -> anyhow::Result<RecordBatch> {
    let file = File::open(path).with_context(|| path.display().to_string())?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let schema = reader.schema();
    one(schema, reader.collect::<Result<Vec<_>, _>>()?)
}

/// The values of int64 column `name` of `batch` (panics naming the column
/// when it is missing or of another type: a test's expectation).
pub fn int64_values(batch: &RecordBatch, name: &str) -> Vec<i64> {
    use arrow::array::AsArray;
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name:?}"))
        .as_primitive_opt::<arrow::datatypes::Int64Type>()
        .unwrap_or_else(|| panic!("column {name:?} is not int64"))
        .values()
        .to_vec()
}

/// Everything in an Arrow IPC file, as one batch.
pub fn read_ipc(path: &Path) -> anyhow::Result<RecordBatch> {
    let file = File::open(path).with_context(|| path.display().to_string())?;
    let reader = arrow::ipc::reader::FileReader::try_new(file, None)?;
    let schema = reader.schema();
    one(schema, reader.collect::<Result<Vec<_>, _>>()?)
}

/// Builds a one-batch schema-checked record batch from columns.
pub fn batch(columns: Vec<(&str, arrow::array::ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).expect("batch")
}

/// Shared ownership helper for arrays in test tables.
pub fn arc<A: arrow::array::Array + 'static>(a: A) -> arrow::array::ArrayRef {
    Arc::new(a)
}

/// The manifest-friendly spelling of a path (forward slashes, quoted).
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// Writes `batch` as an Arrow IPC file at `path` (an `ipc` source's input).
pub fn write_ipc(path: &Path, batch: &RecordBatch) {
    let file = File::create(path).expect("create");
    let mut writer =
        arrow::ipc::writer::FileWriter::try_new(file, &batch.schema()).expect("writer");
    writer.write(batch).expect("write");
    writer.finish().expect("finish");
}

/// The test PostgreSQL server — Debian's `postgresql` with its own data
/// directory, on loopback — started (once, idempotently) by
/// `scripts/postgres start`; its URL.
pub fn postgres_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let out = std::process::Command::new(repo().join("scripts/postgres"))
            .arg("start")
            .output()
            .expect("scripts/postgres");
        assert!(
            out.status.success(),
            "starting PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("url")
            .trim()
            .to_string()
    })
}

/// A client of the test PostgreSQL server.
pub fn postgres() -> postgres::Client {
    postgres::Client::connect(postgres_url(), postgres::NoTls)
        .expect("connect to the test PostgreSQL")
}

/// A table name no other test (or earlier run) uses.
pub fn unique_table(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
