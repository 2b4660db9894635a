//! Named ports: a plugin's further outputs read as `node.port`, named
//! inputs wired as `inputs = { port = "…" }`, and the shipped plugins that
//! use them — filter's `rejected`, aggregate's `late`, and `join`, checked
//! against DuckDB.

use arrow::array::AsArray;
use weir_tests::{int64_values, plugins, read_ipc, reference, toml_path, Scratch};

#[test]
fn filter_sends_the_rows_it_does_not_keep_to_its_rejected_port() {
    let scratch = Scratch::new();
    // Every third amount is null: neither true nor false, so rejected.
    let csv: String = std::iter::once("id,amount\n".to_string())
        .chain((0..1000).map(|i| match i % 3 {
            0 => format!("{i},\n"),
            _ => format!("{i},{}\n", i % 7 - 3),
        }))
        .collect();
    scratch.write("orders.csv", csv);
    scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 128

            [sources.orders]
            type = "csv"
            path = "orders.csv"

            [transforms.valid]
            plugin = {}
            inputs = ["orders"]
            config = {{ predicate = "amount > 0" }}

            [sinks.kept]
            type = "ipc"
            inputs = ["valid"]
            path = "kept.arrow"

            [sinks.rejected]
            type = "ipc"
            inputs = ["valid.rejected"]
            path = "rejected.arrow"
            "#,
            toml_path(plugins::FILTER.as_ref())
        ))
        .unwrap();
    let kept = int64_values(&read_ipc(&scratch.path("kept.arrow")).unwrap(), "id");
    let rejected = int64_values(&read_ipc(&scratch.path("rejected.arrow")).unwrap(), "id");
    let expected_kept: Vec<i64> = (0..1000).filter(|i| i % 3 != 0 && i % 7 > 3).collect();
    let expected_rejected: Vec<i64> = (0..1000).filter(|i| !expected_kept.contains(i)).collect();
    assert_eq!(kept, expected_kept);
    assert_eq!(rejected, expected_rejected, "false and null rows, in order");
}

/// A pipeline with a `join` node between `orders` and `customers`, the
/// data made by `join_duckdb.py`; batches of 700, so the stream's batches
/// race the table's.
fn join_manifest(table: &str, config: &str) -> String {
    format!(
        r#"
        [pipeline]
        batch_size = 700

        [sources.orders]
        type = "parquet"
        path = "orders.parquet"

        [sources.customers]
        type = "parquet"
        path = "{table}.parquet"

        [transforms.enriched]
        plugin = {}
        inputs = {{ stream = "orders", table = "customers" }}
        config = {config}

        [sinks.out]
        type = "ipc"
        inputs = ["enriched"]
        path = "out.arrow"
        "#,
        toml_path(plugins::JOIN.as_ref())
    )
}

fn assert_join_equals_duckdb(table: &str, config: &str, sql: &str) {
    let scratch = Scratch::new();
    let dir = scratch.path("").display().to_string();
    let made = reference("join_duckdb.py", &["make", &dir, "20000", "3000"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    scratch.run(&join_manifest(table, config)).unwrap();
    let out = scratch.path("out.arrow").display().to_string();
    let check = reference("join_duckdb.py", &["compare", &dir, &out, sql]);
    assert!(
        check.status.success(),
        "weir's join differs from DuckDB's:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn a_left_join_with_a_table_equals_duckdbs() {
    assert_join_equals_duckdb(
        "customers",
        r#"{ on = [{ stream = "customer_id", table = "id" }], how = "left" }"#,
        "SELECT o.*, c.name, c.city, c.tier FROM orders o LEFT JOIN customers c ON o.customer_id = c.id",
    );
}

#[test]
fn an_inner_join_with_duplicate_table_keys_equals_duckdbs() {
    assert_join_equals_duckdb(
        "customers_dup",
        r#"{ on = [{ stream = "customer_id", table = "id" }], columns = ["name", "tier"], prefix = "customer_" }"#,
        "SELECT o.*, c.name AS customer_name, c.tier AS customer_tier \
         FROM orders o JOIN customers_dup c ON o.customer_id = c.id",
    );
}

/// `weir check` on a join wired by `inputs`; the error's text.
fn join_check_error(inputs: &str) -> String {
    let scratch = Scratch::new();
    let dir = scratch.path("").display().to_string();
    let made = reference("join_duckdb.py", &["make", &dir, "10", "5"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let manifest = join_manifest(
        "customers",
        r#"{ on = [{ stream = "customer_id", table = "id" }] }"#,
    )
    .replace(r#"{ stream = "orders", table = "customers" }"#, inputs);
    match scratch.check(&manifest) {
        Ok(_) => panic!("weir check accepted inputs = {inputs}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn check_asks_to_wire_a_two_input_plugins_ports_by_name() {
    let e = join_check_error(r#"["orders", "customers"]"#);
    assert!(
        e.contains("stream, table") && e.contains("inputs = { stream = "),
        "{e}"
    );
    assert!(e.contains("pipeline.toml:15"), "{e}");
}

#[test]
fn check_names_an_unwired_input_port_and_an_unknown_one() {
    let e = join_check_error(r#"{ stream = "orders" }"#);
    assert!(e.contains("\"table\" of the plugin is not wired"), "{e}");
    let e = join_check_error(r#"{ stream = "orders", tabel = "customers" }"#);
    assert!(
        e.contains("no input port \"tabel\"") && e.contains("stream, table"),
        "{e}"
    );
}

#[test]
fn check_names_an_output_port_a_node_does_not_have() {
    let scratch = Scratch::new();
    let e = scratch
        .check(&format!(
            r#"
            [sources.gen]
            type = "generate"
            rows = 10

            [transforms.valid]
            plugin = {}
            inputs = ["gen"]
            config = {{ predicate = "seq > 3" }}

            [sinks.out]
            type = "blackhole"
            inputs = ["valid.rejcted"]
            "#,
            toml_path(plugins::FILTER.as_ref())
        ))
        .map(|_| ())
        .expect_err("no such port");
    let e = e.to_string();
    assert!(e.contains("valid.rejcted") && e.contains("rejected"), "{e}");
    assert!(e.contains("pipeline.toml:13"), "{e}");
}

/// Runs `manifest` to the end with `weir run`; it must succeed.
fn run_to_end(manifest: &std::path::Path) {
    let run = crate::process::weir()
        .args(["run", "--quiet"])
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Starts `manifest` with `weir run` and kills it with SIGKILL once its
/// checkpoint `at` is on disk (checkpoints in `checkpoints`).
fn kill_after_checkpoint(manifest: &std::path::Path, checkpoints: &std::path::Path, at: u64) {
    let newest = || {
        std::fs::read_dir(checkpoints)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
            .max()
            .unwrap_or(0u64)
    };
    let mut child = crate::process::weir()
        .args(["run", "--quiet"])
        .arg(manifest)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while newest() < at {
        assert!(std::time::Instant::now() < deadline, "no checkpoint {at}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A checkpointed pipeline: 30,000 generated rows at 20,000/s joined
/// with a 60-row table (keys k0…k59 of the stream's 100), into Parquet
/// parts under `dir`.
fn checkpointed_join(scratch: &Scratch, dir: &str) -> std::path::PathBuf {
    let keys: String = (0..60)
        .map(|i| format!("k{i},{},tier-{}\n", i * 10, i % 3))
        .collect();
    scratch.write("tiers.csv", format!("key,rank,tier\n{keys}"));
    scratch.write(
        &format!("{dir}.toml"),
        format!(
            r#"
            [pipeline]
            batch_size = 500
            checkpoint = {{ dir = "{dir}-checkpoints", interval_ms = 100 }}

            [sources.gen]
            type = "generate"
            rows = 30000
            rate = 20000.0

            [sources.tiers]
            type = "csv"
            path = "tiers.csv"

            [transforms.enriched]
            plugin = {}
            inputs = {{ stream = "gen", table = "tiers" }}
            config = {{ on = ["key"] }}

            [sinks.out]
            type = "parquet"
            inputs = ["enriched"]
            path = "{dir}/part.parquet"
            "#,
            toml_path(plugins::JOIN.as_ref())
        ),
    )
}

/// Every row under `dir` as (seq, key, rank, tier), sorted.
fn joined(dir: &std::path::Path) -> Vec<(i64, String, i64, String)> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let b = weir_tests::read_parquet(&entry.path()).unwrap();
        let seq = int64_values(&b, "seq");
        let rank = int64_values(&b, "rank");
        let key = b.column_by_name("key").unwrap().as_string::<i32>();
        let tier = b.column_by_name("tier").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            rows.push((seq[i], key.value(i).into(), rank[i], tier.value(i).into()));
        }
    }
    rows.sort();
    rows
}

#[test]
fn a_join_killed_mid_stream_and_restarted_equals_an_uninterrupted_run() {
    let scratch = Scratch::new();
    run_to_end(&checkpointed_join(&scratch, "whole"));
    let expected = joined(&scratch.path("whole"));
    assert!(expected.len() > 15_000, "{} rows joined", expected.len());

    let crashed = checkpointed_join(&scratch, "crashed");
    // Past a few checkpoints: the table is in the join's state by then.
    kill_after_checkpoint(&crashed, &scratch.path("crashed-checkpoints"), 4);
    let partial = joined(&scratch.path("crashed"));
    assert!(partial.len() < expected.len(), "killed before the end");
    run_to_end(&crashed);
    let got = joined(&scratch.path("crashed"));
    let missing: Vec<_> = expected
        .iter()
        .filter(|r| !got.contains(r))
        .take(5)
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let repeated: Vec<_> = got.iter().filter(|r| !seen.insert(*r)).take(5).collect();
    assert!(
        got == expected,
        "after the kill: {} rows against {} (before the kill: {}); missing {missing:?}; \
         repeated {repeated:?}",
        got.len(),
        expected.len(),
        partial.len()
    );
}

/// Two generated streams, `clicks` (left) and `impressions` (right), 10
/// keys, one row per millisecond of event time each, joined when a click
/// comes at most 20 ms before an impression of its key. `rate`: rows/s per
/// stream ("" for as fast as they go).
fn interval_join(rate: &str) -> String {
    let stream = |name: &str, seed: u32| {
        format!(
            "[sources.{name}]\ntype = \"generate\"\nrows = 20000\nkeys = 10\nseed = {seed}\n\
             {rate}\nwatermark = {{ column = \"ts\" }}\n\n"
        )
    };
    format!(
        "[pipeline]\nbatch_size = 400\n\n{}{}\
         [transforms.joined]\nplugin = {}\ninputs = {{ left = \"clicks\", right = \"impressions\" }}\n\
         config = {{ on = [\"key\"], prefix = \"r_\", \
         within = {{ left = \"ts\", right = \"ts\", before_ms = 20 }} }}\n\n",
        stream("clicks", 1),
        stream("impressions", 2),
        toml_path(plugins::JOIN.as_ref())
    )
}

/// [`interval_join`] checkpointed into Parquet parts under `dir`.
fn checkpointed_interval_join(scratch: &Scratch, dir: &str) -> std::path::PathBuf {
    let manifest = interval_join("rate = 10000.0").replace(
        "[pipeline]\n",
        &format!("[pipeline]\ncheckpoint = {{ dir = \"{dir}-checkpoints\", interval_ms = 100 }}\n"),
    );
    scratch.write(
        &format!("{dir}.toml"),
        format!(
            "{manifest}[sinks.out]\ntype = \"parquet\"\ninputs = [\"joined\"]\npath = \"{dir}/part.parquet\"\n"
        ),
    )
}

/// Every row under `dir` as (left seq, right seq), sorted.
fn pairs(dir: &std::path::Path) -> Vec<(i64, i64)> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let b = weir_tests::read_parquet(&entry.path()).unwrap();
        rows.extend(
            int64_values(&b, "seq")
                .into_iter()
                .zip(int64_values(&b, "r_seq")),
        );
    }
    rows.sort();
    rows
}

#[test]
fn an_interval_join_of_two_streams_equals_duckdbs() {
    use crate::process::weir;
    let scratch = Scratch::new();
    // The join, and the two streams written out for DuckDB.
    let dump = scratch.write(
        "dump.toml",
        format!(
            "{}[sinks.c]\ntype = \"parquet\"\ninputs = [\"clicks\"]\npath = \"data/clicks.parquet\"\n\
             [sinks.i]\ntype = \"parquet\"\ninputs = [\"impressions\"]\npath = \"data/impressions.parquet\"\n\
             [sinks.out]\ntype = \"ipc\"\ninputs = [\"joined\"]\npath = \"joined.arrow\"\n",
            interval_join("")
        ),
    );
    let run = weir().args(["run", "--quiet"]).arg(&dump).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let data = scratch.path("data").display().to_string();
    let out = scratch.path("joined.arrow").display().to_string();
    let check = reference(
        "join_duckdb.py",
        &[
            "compare",
            &data,
            &out,
            "SELECT l.*, r.seq AS r_seq, r.ts AS r_ts, r.value AS r_value \
             FROM clicks l JOIN impressions r ON l.key = r.key \
             AND l.ts BETWEEN r.ts - INTERVAL 20 MILLISECOND AND r.ts",
        ],
    );
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "weir's interval join differs from DuckDB's:\n{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let rows: usize = said
        .trim()
        .trim_start_matches("equal: ")
        .trim_end_matches(" rows")
        .parse()
        .unwrap();
    assert!(rows > 20_000, "{said}");
}

#[test]
fn an_interval_join_killed_mid_stream_and_restarted_equals_an_uninterrupted_run() {
    let scratch = Scratch::new();
    run_to_end(&checkpointed_interval_join(&scratch, "whole"));
    let expected = pairs(&scratch.path("whole"));
    assert!(expected.len() > 20_000, "{} pairs", expected.len());

    let crashed = checkpointed_interval_join(&scratch, "crashed");
    // Killed twice, at different points, then run to the end.
    for at in [3, 9] {
        kill_after_checkpoint(&crashed, &scratch.path("crashed-checkpoints"), at);
    }
    assert!(
        pairs(&scratch.path("crashed")).len() < expected.len(),
        "killed before the end"
    );
    run_to_end(&crashed);
    let got = pairs(&scratch.path("crashed"));
    assert!(
        got == expected,
        "after two kills: {} pairs against {}",
        got.len(),
        expected.len()
    );
}

#[test]
fn check_refuses_dead_letters_from_a_node_with_two_input_ports() {
    let scratch = Scratch::new();
    let made = reference(
        "join_duckdb.py",
        &["make", &scratch.path("").display().to_string(), "10", "5"],
    );
    assert!(made.status.success());
    let manifest = join_manifest(
        "customers",
        r#"{ on = [{ stream = "customer_id", table = "id" }] }
        on_error = "dead_letter""#,
    )
        + "\n[sinks.dead]\ntype = \"blackhole\"\ninputs = [\"enriched.dead_letter\"]\n";
    let e = scratch.check(&manifest).map(|_| ()).expect_err("two ports");
    let e = e.to_string();
    assert!(
        e.contains("needs a node with one input port") && e.contains("on_error"),
        "{e}"
    );
}
