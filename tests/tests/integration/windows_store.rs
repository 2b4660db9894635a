//! `aggregate` with its open windows in the host state store (`store =
//! "host"`), its budget far below what the open groups take: it emits
//! exactly what the memory store emits — uninterrupted, and stopped twice
//! with windows open while the node switches memory → host → memory.

use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use weir_tests::{plugins, read_parquet, toml_path, Scratch};

use crate::checkpoint::{chrono_free_iso, files_done, start, wait_ok};
use crate::process::interrupt;

const FILES: usize = 12;
const ROWS_PER_FILE: usize = 20_000;
/// Room for every open group in the plugin's memory, as the memory store
/// keeps them (and as moving them into the host store reads them, once).
const ROOMY: u32 = 256;

/// Events 50 µs apart with up to ±300 ms of disorder (some arrive after
/// their window closed), from 60 000 users: a 4 s window holds ~45 000
/// groups.
fn write_events(scratch: &Scratch, files: Range<usize>) {
    let base: i64 = 1_704_067_200_000_000;
    for f in files {
        let mut csv = String::from("user,amount,price,ts\n");
        for r in 0..ROWS_PER_FILE {
            let row = (f * ROWS_PER_FILE + r) as i64;
            let ts = base + row * 50 + (row * 7919 % 600_000 - 300_000);
            let amount = row * 37 % 1000 - 100;
            let price = (row * 13 % 997) as f64 / 7.0;
            let time = chrono_free_iso(ts.div_euclid(1_000_000), ts.rem_euclid(1_000_000));
            csv.push_str(&format!(
                "u{},{amount},{price},{time}\n",
                row * 7919 % 60_000
            ));
        }
        scratch.write(&format!("in/events-{f:04}.csv"), csv);
    }
}

/// The pipeline with its windows in `store`, within `memory_mb`. With
/// `ends`, the source ends once idle (emitting every window); without, it
/// reads until stopped.
fn manifest(scratch: &Scratch, store: &str, memory_mb: u32, ends: bool) -> std::path::PathBuf {
    let idle = if ends { "end_after_idle_ms = 600" } else { "" };
    scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 4096
            checkpoint = {{ dir = "checkpoints", interval_ms = 50 }}

            [sources.events]
            type = "directory"
            path = "in/*.csv"
            format = "csv"
            schema = [{{ name = "user", type = "utf8" }}, {{ name = "amount", type = "int64" }},
                      {{ name = "price", type = "float64" }}, {{ name = "ts", type = "timestamp" }}]
            poll_interval_ms = 50
            {idle}
            watermark = {{ column = "ts", delay_ms = 200 }}

            [transforms.windows]
            plugin = {aggregate}
            inputs = ["events"]
            config = {{ time = "ts", window_ms = 4000, slide_ms = 2000, group_by = ["user"],
                        allowed_lateness_ms = 50, store = "{store}",
                        aggregates = [{{ op = "count" }}, {{ op = "sum", column = "amount" }},
                                      {{ op = "min", column = "price" }}, {{ op = "max", column = "price" }},
                                      {{ op = "avg", column = "price" }}] }}
            limits = {{ memory_mb = {memory_mb} }}

            [sinks.out]
            type = "parquet"
            inputs = ["windows"]
            path = "out/windows.parquet"

            [sinks.late]
            type = "parquet"
            inputs = ["windows.late"]
            path = "late/rows.parquet"
            "#,
            aggregate = toml_path(plugins::AGGREGATE.as_ref()),
        ),
    )
}

/// (window start, user, count, sum, min, max and avg bits).
type Row = (i64, String, i64, i64, u64, u64, u64);

/// Every row of every part file in `dir`, sorted.
fn rows(dir: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let b = read_parquet(&entry.path()).unwrap();
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        let start = col("window_start");
        let start = start.as_primitive::<TimestampMicrosecondType>();
        let user = col("user");
        let user = user.as_string::<i32>();
        let (count, sum) = (col("count"), col("sum_amount"));
        let (count, sum) = (
            count.as_primitive::<Int64Type>(),
            sum.as_primitive::<Int64Type>(),
        );
        let f = |name: &str| {
            let c = col(name);
            (0..c.len())
                .map(|i| c.as_primitive::<Float64Type>().value(i).to_bits())
                .collect::<Vec<_>>()
        };
        let (min, max, avg) = (f("min_price"), f("max_price"), f("avg_price"));
        for i in 0..b.num_rows() {
            rows.push((
                start.value(i),
                user.value(i).to_string(),
                count.value(i),
                sum.value(i),
                min[i],
                max[i],
                avg[i],
            ));
        }
    }
    rows.sort_unstable();
    rows
}

fn late_rows(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| read_parquet(&e.path()).unwrap().num_rows())
        .sum()
}

/// Runs `store` over what is in `in/` until a checkpoint has read
/// `files`, then stops it with Ctrl-C (open windows are saved, not
/// emitted).
fn run_then_interrupt(scratch: &Scratch, store: &str, files: usize) {
    let mut child = start(&manifest(scratch, store, ROOMY, false));
    let deadline = Instant::now() + Duration::from_secs(120);
    while files_done(&scratch.path("checkpoints"), "events") < files {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).ok();
            }
            panic!(
                "the {store} run ended ({status}) before a checkpoint read {files} files: {err}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint covered {files} files"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    interrupt(&child);
    wait_ok(child);
}

#[test]
fn an_aggregate_on_the_host_store_emits_what_the_memory_store_emits_and_switches_stores_on_restart()
{
    let whole = |store: &str, memory_mb: u32| {
        let scratch = Scratch::new();
        write_events(&scratch, 0..FILES);
        wait_ok(start(&manifest(&scratch, store, memory_mb, true)));
        scratch
    };
    let memory = whole("memory", ROOMY);
    let expected = rows(&memory.path("out"));
    let late = late_rows(&memory.path("late"));
    assert!(expected.len() > 100_000, "{} groups", expected.len());
    assert!(late > 0, "some rows arrive after their window closed");
    let counted: i64 = expected.iter().map(|r| r.2).sum();
    // A row counts in both its windows, except those it came too late
    // for (one or both).
    let all = (2 * FILES * ROWS_PER_FILE) as i64;
    assert!(
        (all - 2 * late as i64..=all - late as i64).contains(&counted),
        "{counted} counted, {late} late of {all} row-windows"
    );

    // 16 MiB: the store's table spills at 4 MiB, ~25 000 groups.
    let host = whole("host", 16);
    let runs = std::fs::read_dir(host.path("checkpoints/state/windows")).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "run"))
            .count()
    });
    assert!(
        runs > 0,
        "the open groups outgrew the budget and went to disk"
    );
    assert!(
        rows(&host.path("out")) == expected,
        "host store: other windows than the memory store's"
    );
    assert_eq!(late_rows(&host.path("late")), late);

    // Memory → host → memory, each leg stopped with windows open.
    let switched = Scratch::new();
    write_events(&switched, 0..4);
    run_then_interrupt(&switched, "memory", 4);
    write_events(&switched, 4..8);
    run_then_interrupt(&switched, "host", 8);
    write_events(&switched, 8..FILES);
    wait_ok(start(&manifest(&switched, "memory", ROOMY, true)));
    let got = rows(&switched.path("out"));
    let missing: Vec<_> = expected
        .iter()
        .filter(|r| got.binary_search(r).is_err())
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|r| expected.binary_search(r).is_err())
        .collect();
    assert!(
        got == expected,
        "after switching stores: {} groups, expected {}; {} missing, e.g. {:?}; {} extra, e.g. {:?}",
        got.len(),
        expected.len(),
        missing.len(),
        &missing[..missing.len().min(3)],
        extra.len(),
        &extra[..extra.len().min(3)],
    );
    assert_eq!(late_rows(&switched.path("late")), late);
}
