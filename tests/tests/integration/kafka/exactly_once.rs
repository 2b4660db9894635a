//! Exactly-once from Kafka to Kafka: a transaction per checkpoint,
//! committed once the checkpoint is durable, and whatever a crash cut off
//! replayed exactly once on restart.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, StringArray};
use weir::sink::{SinkConfig, SinkContext};
use weir_tests::kafka::{self, brokers, topic};
use weir_tests::{arc, batch, plugins, toml_path, Scratch};

fn orders(from: i64, to: i64) -> arrow::record_batch::RecordBatch {
    batch(vec![
        ("id", arc(Int64Array::from_iter_values(from..to))),
        (
            "name",
            arc(StringArray::from_iter_values(
                (from..to).map(|i| format!("n{i}")),
            )),
        ),
    ])
}

#[test]
fn a_checkpoint_whose_transaction_never_committed_is_sent_once_on_resume() {
    let topic = topic("eo_replay", 2);
    let scratch = Scratch::new();
    let config: SinkConfig = toml::from_str(&format!(
        r#"
        type = "kafka"
        brokers = "{}"
        topic = "{topic}"
        key = ["id"]
        transactional_id = "{topic}-tx"
        "#,
        brokers()
    ))
    .unwrap();
    let base_dir = scratch.path("");
    let context = SinkContext {
        name: "out",
        base_dir: &base_dir,
        schema: None,
        checkpointing: true,
    };
    // A checkpoint is taken, then the process dies before its publish
    // commits the transaction.
    let mut first = config.build(context).unwrap();
    first.write(&orders(0, 100)).unwrap();
    let checkpoint = first.prepare().unwrap();
    drop(first);
    assert_eq!(kafka::read(&topic)["count"], 0, "visible before the commit");

    let mut second = config.build(context).unwrap();
    second.resume(&checkpoint).unwrap();
    assert_eq!(
        kafka::read(&topic)["count"],
        100,
        "the checkpoint's records"
    );

    // It dies again right after that commit, before the next checkpoint:
    // the same checkpoint is resumed once more.
    drop(second);
    let mut third = config.build(context).unwrap();
    third.resume(&checkpoint).unwrap();
    let read = kafka::read(&topic);
    assert_eq!(read["count"], 100, "sent twice");
    assert_eq!(read["duplicated"], 0);
}

fn weir(manifest: &Path) -> Child {
    crate::process::weir()
        .args(["run", "--quiet"])
        .arg(manifest)
        .spawn()
        .unwrap()
}

/// xorshift64*: reproducible pauses from a printed seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn kafka_through_dedupe_to_kafka_killed_ten_times_delivers_every_record_once() {
    const RECORDS: u32 = 20_000;
    let input = topic("eo_in", 6);
    let output = topic("eo_out", 6);
    let scratch = Scratch::new();
    let manifest = scratch.write(
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
            "#,
            brokers = brokers(),
            dedupe = toml_path(plugins::DEDUPE.as_ref()),
        ),
    );
    // Records arrive while the pipeline dies and comes back.
    let mut producer = std::process::Command::new(weir_tests::repo().join(".venv/bin/python"))
        .arg(weir_tests::repo().join("tests/reference/kafka_client.py"))
        .args([
            "produce-json",
            brokers(),
            &input,
            &RECORDS.to_string(),
            "0",
            "2000",
        ])
        .spawn()
        .unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill seed {seed}");
    let mut state = seed;
    for _ in 0..10 {
        let mut child = weir(&manifest);
        std::thread::sleep(Duration::from_millis(500 + next(&mut state) % 2500));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(producer.wait().unwrap().success());
    // The last run reads to the end, then stops on Ctrl-C.
    let mut child = weir(&manifest);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let read = kafka::read(&output);
        if read["count"].as_u64() >= Some(RECORDS as u64) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    crate::process::interrupt(&child);
    assert!(child.wait().unwrap().success());
    let read = kafka::read(&output);
    assert_eq!(read["duplicated"], 0, "seed {seed}");
    assert_eq!(read["count"], RECORDS, "seed {seed}");
    let _ = &mut child;
}
