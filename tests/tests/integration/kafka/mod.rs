//! Kafka: a real broker (tansu on loopback, `scripts/kafka`), topics
//! produced and read by librdkafka's Python client and fastavro — the
//! clients a team's other services use — and a schema registry speaking
//! Confluent's REST API.

mod exactly_once;
mod formats;
mod scale_out;

use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use weir_tests::{read_parquet, Scratch};

/// The rows of every Parquet file under `dir`, in one batch (sorted by
/// nothing: callers sort).
fn parquet_rows(dir: &std::path::Path) -> RecordBatch {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let batches: Vec<RecordBatch> = files.iter().map(|f| read_parquet(f).unwrap()).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// Runs `manifest` in `scratch` to its end; panics with the error.
fn run(scratch: &Scratch, manifest: &str) {
    if let Err(e) = scratch.run(manifest) {
        panic!("{}", weir::error::report(weir::error::chain(&e)));
    }
}
