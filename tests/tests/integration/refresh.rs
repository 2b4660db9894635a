//! A table source with `refresh_ms`: read again whenever its file changes,
//! each read swapped into a running join at a batch boundary — stream rows
//! before the swap joined with the old table, after it with the new, none
//! lost or doubled, and a restart from a checkpoint keeping the version it
//! had.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use weir_tests::{plugins, postgres, postgres_url, read_parquet, toml_path, unique_table, Scratch};

const ROWS: i64 = 20_000;

/// Writes the 100-key table of `version` (`tier` = `{version}-{key}`)
/// the way a careful writer replaces a file: a new file renamed over it.
fn write_table(scratch: &Scratch, version: &str) {
    let rows: String = (0..100).map(|i| format!("k{i},{version}-{i}\n")).collect();
    scratch.write("tiers.csv.tmp", format!("key,tier\n{rows}"));
    std::fs::rename(scratch.path("tiers.csv.tmp"), scratch.path("tiers.csv")).unwrap();
}

/// The table source: `tiers.csv`, refreshed every 50 ms.
const CSV_TABLE: &str = r#"
    type = "csv"
    path = "tiers.csv"
    refresh_ms = 50
"#;

/// 20,000 generated rows at 4,000/s joined with the table `tiers`
/// (`table`: its source's keys), checkpointed every 100 ms into Parquet
/// parts under `out`.
fn manifest(scratch: &Scratch, table: &str) -> PathBuf {
    scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 250
            checkpoint = {{ dir = "checkpoints", interval_ms = 100 }}

            [sources.gen]
            type = "generate"
            rows = {ROWS}
            rate = 4000.0

            [sources.tiers]
            {table}

            [transforms.enriched]
            plugin = {}
            inputs = {{ stream = "gen", table = "tiers" }}
            config = {{ on = ["key"], columns = ["tier"] }}

            [sinks.out]
            type = "parquet"
            inputs = ["enriched"]
            path = "out/part.parquet"
            "#,
            toml_path(plugins::JOIN.as_ref())
        ),
    )
}

/// Every committed row under `dir`: (seq, key, tier), sorted by seq.
fn rows(dir: &Path) -> Vec<(i64, String, String)> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(b) = read_parquet(&entry.path()) else {
            continue;
        };
        let seq = b.column_by_name("seq").unwrap().as_primitive::<Int64Type>();
        let key = b.column_by_name("key").unwrap().as_string::<i32>();
        let tier = b.column_by_name("tier").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            rows.push((seq.value(i), key.value(i).into(), tier.value(i).into()));
        }
    }
    rows.sort();
    rows
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(manifest: &Path) -> Child {
    crate::process::weir()
        .args(["run", "--quiet"])
        .arg(manifest)
        .spawn()
        .unwrap()
}

/// Ctrl-C once every row is committed; the run must end cleanly.
fn stop_when_all_committed(mut child: Child, out: &Path) {
    wait_for("every row", || rows(out).len() as i64 >= ROWS);
    crate::process::interrupt(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// Each stream row exactly once, its tier from the version in force when
/// it was joined: the versions in `order`, each a contiguous run by seq.
fn assert_versions_in_order(rows: &[(i64, String, String)], order: &[&str]) {
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (0..ROWS).collect::<Vec<_>>(), "every row once");
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for (_, key, tier) in rows {
        let (version, k) = tier.split_once('-').unwrap();
        assert_eq!(format!("k{k}"), *key, "the tier of another key");
        match runs.last_mut() {
            Some((v, n)) if *v == version => *n += 1,
            _ => runs.push((version, 1)),
        }
    }
    let versions: Vec<&str> = runs.iter().map(|r| r.0).collect();
    assert_eq!(
        versions, order,
        "versions by seq, each one contiguous: {runs:?}"
    );
}

#[test]
fn a_refreshed_table_is_swapped_into_a_join_mid_stream_at_a_batch_boundary() {
    let scratch = Scratch::new();
    write_table(&scratch, "old");
    let child = start(&manifest(&scratch, CSV_TABLE));
    let out = scratch.path("out");
    wait_for("rows joined with the old table", || {
        rows(&out).len() >= 2_000
    });
    write_table(&scratch, "new");
    stop_when_all_committed(child, &out);
    assert_versions_in_order(&rows(&out), &["old", "new"]);
}

#[test]
fn a_join_killed_after_a_refresh_restarts_with_the_new_table_and_each_row_once() {
    let scratch = Scratch::new();
    write_table(&scratch, "old");
    let manifest = manifest(&scratch, CSV_TABLE);
    let out = scratch.path("out");
    let mut child = start(&manifest);
    wait_for("rows joined with the old table", || {
        rows(&out).len() >= 2_000
    });
    write_table(&scratch, "new");
    wait_for("rows joined with the new table", || {
        rows(&out).iter().any(|r| r.2.starts_with("new"))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // The restart restores the join's table from the checkpoint; the
    // file is unchanged, so it is not read again.
    stop_when_all_committed(start(&manifest), &out);
    assert_versions_in_order(&rows(&out), &["old", "new"]);
}

#[test]
fn a_postgres_table_read_on_an_interval_is_swapped_into_a_join_when_it_changes() {
    let table = unique_table("tiers");
    let set =
        |version: &str| format!("UPDATE \"{table}\" SET tier = '{version}-' || substr(key, 2)");
    postgres()
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (key text, tier text);
             INSERT INTO \"{table}\" SELECT 'k' || i, '' FROM generate_series(0, 99) i;
             {};",
            set("old")
        ))
        .unwrap();
    let scratch = Scratch::new();
    let source = format!(
        "type = \"postgres\"\nurl = \"{}\"\nquery = \"SELECT key, tier FROM \\\"{table}\\\" ORDER BY key\"\nrefresh_ms = 50",
        postgres_url()
    );
    let child = start(&manifest(&scratch, &source));
    let out = scratch.path("out");
    wait_for("rows joined with the old table", || {
        rows(&out).len() >= 2_000
    });
    // One transaction: a read sees the old table or the new one.
    postgres().batch_execute(&set("new")).unwrap();
    stop_when_all_committed(child, &out);
    assert_versions_in_order(&rows(&out), &["old", "new"]);
}
