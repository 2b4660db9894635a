//! `scale_out = "partitions"`: processes started with the same manifest
//! share a topic's partitions through the consumer group, one pipeline
//! (state, checkpoint, transactions) per partition; a killed process's
//! partitions move to the others and resume from its last checkpoint.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::Duration;

use weir_tests::kafka::{self, brokers, topic};
use weir_tests::{plugins, toml_path, Scratch};

use super::{assert_each_order_once, dedupe_pipeline, next, produce, seed, stop_when, worker};

#[test]
fn three_workers_share_six_partitions_and_ten_kills_deliver_every_record_once() {
    const RECORDS: u64 = 20_000;
    let input = topic("so_in", 6);
    let output = topic("so_out", 6);
    let scratch = Scratch::new();
    let manifest = dedupe_pipeline(&scratch, &input, &output, true);
    let mut producer = produce(&[
        "produce-json",
        brokers(),
        &input,
        &RECORDS.to_string(),
        "0",
        "1500",
    ]);
    let mut workers: Vec<Child> = (0..3).map(|_| worker(&manifest)).collect();
    let mut state = seed();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(1000 + next(&mut state) % 2000));
        let victim = (next(&mut state) % 3) as usize;
        workers[victim].kill().unwrap();
        workers[victim].wait().unwrap();
        workers[victim] = worker(&manifest);
    }
    assert!(producer.wait().unwrap().success());
    stop_when(&output, RECORDS, workers);
    assert_each_order_once(&output, RECORDS);
}

/// Why the scale-out tests give each slot its own output partition (see
/// `dedupe_pipeline`): when this fails, tansu applies a transaction's
/// offset commit with the commit, as Kafka does, and the tests can share
/// partitions between slots again.
#[test]
fn the_test_broker_holds_an_offset_commit_back_behind_another_producers_open_transaction() {
    let topic = topic("deferral", 1);
    let out: serde_json::Value =
        serde_json::from_str(&kafka::client("offset-deferral", &[&topic])).expect("JSON");
    assert_eq!(
        (&out["after_first_commit"], &out["after_second_commit"]),
        (&serde_json::Value::Null, &5.into()),
        "{out}"
    );
}

#[test]
fn windowed_counts_by_key_are_right_after_a_worker_dies_and_its_partitions_move() {
    const EVENTS: u64 = 12_000;
    const KEYS: u64 = 12;
    let input = topic("win_in", 4);
    // A partition per slot: see `dedupe_pipeline`.
    let output = topic("win_out", 4);
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            checkpoint = {{ dir = "checkpoints", interval_ms = 200 }}

            [sources.events]
            type = "kafka"
            brokers = "{brokers}"
            topics = ["{input}"]
            group = "{input}-weir"
            scale_out = "partitions"
            session_timeout_ms = 6000
            metadata = ["partition"]
            format = "json"
            schema = [{{ name = "key", type = "utf8" }}, {{ name = "n", type = "int64" }},
                {{ name = "ts", type = "timestamp" }}]
            watermark = {{ column = "ts" }}

            [transforms.per_key]
            plugin = {aggregate}
            inputs = ["events"]
            config = {{ time = "ts", window_ms = 10000, group_by = ["key", "kafka_partition"],
                        aggregates = [{{ op = "count" }}] }}

            [sinks.out]
            type = "kafka"
            inputs = ["per_key"]
            brokers = "{brokers}"
            topic = "{output}"
            partition_column = "kafka_partition"
            "#,
            brokers = brokers(),
            aggregate = toml_path(plugins::AGGREGATE.as_ref()),
        ),
    );
    let mut producer = produce(&[
        "produce-events",
        brokers(),
        &input,
        &EVENTS.to_string(),
        "1000",
        &KEYS.to_string(),
    ]);
    let mut workers: Vec<Child> = (0..2).map(|_| worker(&manifest)).collect();
    std::thread::sleep(Duration::from_secs(5));
    // One worker dies mid-stream; the other takes its partitions over.
    let mut dead = workers.remove(0);
    dead.kill().unwrap();
    dead.wait().unwrap();
    assert!(producer.wait().unwrap().success());
    // Every (key, 10 s window) of the events: 10 ms apart, so window `w`
    // holds events 1000·w … 1000·w + 999.
    let mut expected: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for i in 0..EVENTS {
        *expected
            .entry((format!("k{}", i % KEYS), (i / 1000) as i64))
            .or_default() += 1;
    }
    stop_when(&output, expected.len() as u64, workers);
    let read = kafka::read(&output);
    let mut got: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let start = 1_704_067_200_000_000i64; // 2024-01-01 in µs
    for r in read["records"].as_array().unwrap() {
        let row: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        let window = row["window_start"].as_str().unwrap();
        let micros = chrono_free_micros(window) - start;
        let key = (
            row["key"].as_str().unwrap().to_string(),
            micros / 10_000_000,
        );
        assert!(
            got.insert(key.clone(), row["count"].as_u64().unwrap())
                .is_none(),
            "{key:?} twice: {row}"
        );
    }
    assert_eq!(got, expected);
}

/// `2024-01-01T00:02:10Z` (or without the `Z`) in µs since the epoch: the
/// windows of these tests are whole seconds on 2024-01-01.
fn chrono_free_micros(text: &str) -> i64 {
    let time = text.trim_end_matches('Z').split('T').nth(1).unwrap();
    let mut parts = time.split(':');
    let h: i64 = parts.next().unwrap().parse().unwrap();
    let m: i64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    1_704_067_200_000_000 + ((h * 3600 + m * 60) * 1_000_000) + (s * 1e6) as i64
}
