//! The host state store on disk: a `dedupe` whose million keys live in
//! it (`store = "host"`), with a memory budget far below what the keys
//! take, checkpointed every 50 ms and killed ten times, ends with exactly
//! the rows of the pure computation — and the checkpoints keep only the
//! runs they name.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir_tests::{int64_values, plugins, read_parquet, toml_path, Scratch};

use crate::checkpoint::{files_done, start, wait_ok, Rng};

const FILES: usize = 20;
const ROWS_PER_FILE: usize = 60_000;

/// Rows `seq` 0.. with `id = seq`, except every 6th, which repeats the id
/// of a row 5 000 back (across files too): 1 000 833 distinct ids.
fn id_of(seq: i64) -> i64 {
    if seq % 6 == 5 && seq >= 5000 {
        seq - 5000
    } else {
        seq
    }
}

fn write_input(scratch: &Scratch) {
    for f in 0..FILES {
        let mut csv = String::from("id,seq\n");
        for r in 0..ROWS_PER_FILE {
            let seq = (f * ROWS_PER_FILE + r) as i64;
            csv.push_str(&format!("{},{seq}\n", id_of(seq)));
        }
        scratch.write(&format!("in/part-{f:04}.csv"), csv);
    }
}

fn manifest(scratch: &Scratch) -> std::path::PathBuf {
    scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 8192
            checkpoint = {{ dir = "checkpoints", interval_ms = 50 }}

            [sources.rows]
            type = "directory"
            path = "in/*.csv"
            format = "csv"
            schema = [{{ name = "id", type = "int64" }}, {{ name = "seq", type = "int64" }}]
            poll_interval_ms = 50
            end_after_idle_ms = 500

            [transforms.unique]
            plugin = {dedupe}
            inputs = ["rows"]
            config = {{ key = ["id"], store = "host" }}
            # 16 MiB: the store's table spills at 2 MiB (an eighth:
            # some 35 000 keys); a million keys live on disk.
            limits = {{ memory_mb = 16 }}

            [sinks.out]
            type = "parquet"
            inputs = ["unique"]
            path = "out/unique.parquet"
            "#,
            dedupe = toml_path(plugins::DEDUPE.as_ref()),
        ),
    )
}

/// Every output row as (seq, id), sorted.
fn output(dir: &Path) -> Vec<(i64, i64)> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let batch = read_parquet(&entry.path()).unwrap();
        let seq = int64_values(&batch, "seq");
        let id = int64_values(&batch, "id");
        rows.extend(seq.into_iter().zip(id));
    }
    rows.sort_unstable();
    rows
}

/// What the pipeline must write: each id's first row.
fn expected() -> Vec<(i64, i64)> {
    let mut first = HashMap::new();
    for seq in 0..(FILES * ROWS_PER_FILE) as i64 {
        first.entry(id_of(seq)).or_insert(seq);
    }
    let mut rows: Vec<_> = first.into_iter().map(|(id, seq)| (seq, id)).collect();
    rows.sort_unstable();
    rows
}

fn runs_on_disk(checkpoints: &Path) -> usize {
    std::fs::read_dir(checkpoints.join("state/unique"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".run"))
        .count()
}

#[test]
fn a_dedupe_on_the_host_store_killed_ten_times_with_a_million_keys_equals_the_pure_answer() {
    let expected = expected();
    assert!(expected.len() >= 1_000_000, "{} keys", expected.len());
    let scratch = Scratch::new();
    write_input(&scratch);
    let manifest = manifest(&scratch);
    let checkpoints = scratch.path("checkpoints");

    let seed = std::env::var("WEIR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill points from WEIR_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut next = |n: u64| rng.below(n);
    let mut targets: Vec<usize> = (0..10)
        .map(|_| 1 + next(FILES as u64 - 2) as usize)
        .collect();
    targets.sort_unstable();
    let mut points = Vec::new();
    for target in targets {
        let mut child = start(&manifest);
        let deadline = Instant::now() + Duration::from_secs(120);
        while files_done(&checkpoints, "rows") < target && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(next(40)));
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).ok();
            }
            panic!(
                "the run ended ({status}) before kill {}: {err}",
                points.len() + 1
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        points.push((target, files_done(&checkpoints, "rows")));
    }
    eprintln!("killed at (target, files read at the last checkpoint): {points:?}");
    wait_ok(start(&manifest));

    let got = output(&scratch.path("out"));
    if got != expected {
        let missing = expected
            .iter()
            .filter(|r| got.binary_search(r).is_err())
            .count();
        let extra = got
            .iter()
            .filter(|r| expected.binary_search(r).is_err())
            .count();
        panic!(
            "after 10 kills: {} rows, expected {}; {missing} missing, {extra} extra",
            got.len(),
            expected.len()
        );
    }
    // The keys went to disk (the table holds some 35 000 of them), and the
    // checkpoints kept only the runs they name, not every one written.
    let runs = runs_on_disk(&checkpoints);
    assert!(
        (1..=60).contains(&runs),
        "{runs} runs on disk for 3 kept checkpoints"
    );
}
