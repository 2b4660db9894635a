//! `dedupe` with `ttl_ms`: on an endless stream a key is a duplicate for
//! `ttl_ms` of event time after its first row, then forgotten.

use std::collections::HashMap;

use arrow::array::AsArray;
use arrow::datatypes::TimestampMicrosecondType;
use weir_tests::{plugins, read_ipc, toml_path, Scratch};

const TTL_MS: i64 = 200;
/// Rows per batch; one row per millisecond of event time.
const BATCH: i64 = 10;

/// 3 s of event time, 20 keys, through dedupe (`config`): each key's
/// rows' times in the input and in the output, in ms.
fn run(config: &str) -> (HashMap<String, Vec<i64>>, HashMap<String, Vec<i64>>) {
    let scratch = Scratch::new();
    let manifest = format!(
        r#"
        [pipeline]
        batch_size = {BATCH}

        [sources.gen]
        type = "generate"
        rows = 3000
        keys = 20
        watermark = {{ column = "ts", delay_ms = 0 }}

        [transforms.unique]
        plugin = {dedupe}
        inputs = ["gen"]
        config = {config}

        [sinks.all]
        type = "ipc"
        inputs = ["gen"]
        path = "all.arrow"

        [sinks.out]
        type = "ipc"
        inputs = ["unique"]
        path = "out.arrow"
        "#,
        dedupe = toml_path(plugins::DEDUPE.as_ref()),
    );
    scratch.run(&manifest).unwrap();
    let times = |file: &str| {
        let batch = read_ipc(&scratch.path(file)).unwrap();
        let ts = batch
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
        let keys = batch
            .column_by_name("key")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
        for i in 0..batch.num_rows() {
            by_key
                .entry(keys.value(i).to_string())
                .or_default()
                .push(ts.value(i) / 1000);
        }
        by_key
    };
    (times("all.arrow"), times("out.arrow"))
}

#[test]
fn without_ttl_each_key_passes_once() {
    let (_, out) = run(r#"{ key = ["key"] }"#);
    assert_eq!(out.len(), 20);
    assert!(out.values().all(|t| t.len() == 1));
}

#[test]
fn with_ttl_a_key_passes_again_only_once_its_ttl_has_run_out() {
    let (input, out) = run(&format!(r#"{{ key = ["key"], ttl_ms = {TTL_MS} }}"#));
    // The key's clock runs on the watermark, which moves a batch at a
    // time: a batch of slack each way, and an eighth of the TTL late.
    let slack = 2 * BATCH;
    let latest = TTL_MS + TTL_MS / 8 + slack;
    for (key, passed) in &out {
        assert!(passed.len() >= 3, "{key} passed {} times", passed.len());
        for pair in passed.windows(2) {
            let (first, next) = (pair[0], pair[1]);
            assert!(
                next - first >= TTL_MS - slack,
                "{key}: passed at {first} and again at {next} ms, within the TTL"
            );
            let dropped_late = input[key]
                .iter()
                .find(|&&t| t >= first + latest && t < next);
            assert!(
                dropped_late.is_none(),
                "{key}: a row at {dropped_late:?} ms was dropped though {first} ms was \
                 {TTL_MS} ms past"
            );
        }
    }
}
