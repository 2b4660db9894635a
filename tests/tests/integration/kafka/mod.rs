//! Kafka: a real broker (tansu on loopback, `scripts/kafka`), topics
//! produced and read by librdkafka's Python client and fastavro — the
//! clients a team's other services use — and a schema registry speaking
//! Confluent's REST API.

mod exactly_once;
mod formats;
mod scale_out;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use weir_tests::kafka::{self, brokers};
use weir_tests::{plugins, read_parquet, toml_path, Scratch};

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

/// `weir run --quiet MANIFEST` as a process of its own.
fn worker(manifest: &Path) -> Child {
    crate::process::weir()
        .args(["run", "--quiet"])
        .arg(manifest)
        .spawn()
        .unwrap()
}

/// xorshift64*: reproducible pauses and victims from a printed seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// A seed from the clock, printed so a failure can be replayed.
fn seed() -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    seed
}

/// Starts `kafka_client.py ARGS…` (a producer) in the background.
fn produce(args: &[&str]) -> Child {
    std::process::Command::new(weir_tests::repo().join(".venv/bin/python"))
        .arg(weir_tests::repo().join("tests/reference/kafka_client.py"))
        .args(args)
        .spawn()
        .unwrap()
}

/// Waits until `topic` holds `count` distinct committed records (or 90 s
/// passed), then stops every worker with Ctrl-C; each must end cleanly.
/// Distinct: a repeated record must not stop the wait before the last
/// ones arrive, which would report them missing as well.
fn stop_when(topic: &str, count: u64, workers: Vec<Child>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while kafka::read(topic)["distinct"].as_u64() < Some(count) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    for w in &workers {
        crate::process::interrupt(w);
    }
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
}

/// Asserts that `topic` holds each of the orders `0..records` exactly
/// once, as a read_committed consumer sees it; a failure names the first
/// ids repeated and missing.
fn assert_each_order_once(topic: &str, records: u64) {
    let check: serde_json::Value =
        serde_json::from_str(&kafka::client("check-ids", &[topic, &records.to_string()]))
            .expect("kafka_client.py check-ids: JSON");
    assert_eq!(
        (&check["repeated"], &check["missing"], &check["unknown"]),
        (&0.into(), &0.into(), &0.into()),
        "{check}"
    );
}

/// The campaigns' pipeline: the JSON orders of `input` through `dedupe`
/// by id to `output`, checkpointed every 200 ms.
///
/// `scale_out` runs a slot per partition, and each slot writes to its own
/// partition of `output` (`partition_column`): the test broker, tansu,
/// defers a transaction's offset commit (weir's marker) while another
/// producer's transaction on the same partition is open, and a slot
/// resumed in that window would send the last transaction again. Kafka
/// applies it with the commit; docs/kafka.md, "Testing against a broker".
fn dedupe_pipeline(scratch: &Scratch, input: &str, output: &str, scale_out: bool) -> PathBuf {
    scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            checkpoint = {{ dir = "checkpoints", interval_ms = 200 }}

            [sources.orders]
            type = "kafka"
            brokers = "{brokers}"
            topics = ["{input}"]
            group = "{input}-weir"
            {scale_out}
            session_timeout_ms = 6000
            format = "json"
            schema = [{{ name = "id", type = "int64" }}, {{ name = "name", type = "utf8" }},
                {{ name = "amount", type = "float64" }}, {{ name = "ts", type = "timestamp" }}]

            [transforms.unique]
            plugin = {dedupe}
            inputs = ["orders"]
            config = {{ key = ["id"] }}

            [sinks.out]
            type = "kafka"
            inputs = ["unique"]
            brokers = "{brokers}"
            topic = "{output}"
            key = ["id"]
            {own_partition}
            "#,
            brokers = brokers(),
            scale_out = if scale_out {
                "scale_out = \"partitions\"\nmetadata = [\"partition\"]"
            } else {
                ""
            },
            own_partition = if scale_out {
                r#"partition_column = "kafka_partition""#
            } else {
                ""
            },
            dedupe = toml_path(plugins::DEDUPE.as_ref()),
        ),
    )
}
