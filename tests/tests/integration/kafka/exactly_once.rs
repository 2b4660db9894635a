//! Exactly-once from Kafka to Kafka: a transaction per checkpoint,
//! committed once the checkpoint is durable, and whatever a crash cut off
//! replayed exactly once on restart.

use std::time::Duration;

use arrow::array::{Int64Array, StringArray};
use weir::sink::{SinkConfig, SinkContext};
use weir_tests::kafka::{self, brokers, topic};
use weir_tests::{arc, batch, Scratch};

use super::{assert_each_order_once, dedupe_pipeline, next, produce, seed, stop_when, worker};

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

#[test]
fn kafka_through_dedupe_to_kafka_killed_ten_times_delivers_every_record_once() {
    const RECORDS: u64 = 20_000;
    let input = topic("eo_in", 6);
    let output = topic("eo_out", 6);
    let scratch = Scratch::new();
    let manifest = dedupe_pipeline(&scratch, &input, &output, false);
    // Records arrive while the pipeline dies and comes back.
    let mut producer = produce(&[
        "produce-json",
        brokers(),
        &input,
        &RECORDS.to_string(),
        "0",
        "2000",
    ]);
    let mut state = seed();
    for _ in 0..10 {
        let mut child = worker(&manifest);
        std::thread::sleep(Duration::from_millis(500 + next(&mut state) % 2500));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(producer.wait().unwrap().success());
    // The last run reads to the end, then stops on Ctrl-C.
    stop_when(&output, RECORDS, vec![worker(&manifest)]);
    assert_each_order_once(&output, RECORDS);
}
