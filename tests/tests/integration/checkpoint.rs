//! Exactly-once through checkpoints: a pipeline stopped at random points
//! — SIGKILL, or the stops a user types (Ctrl-C, SIGTERM), with windows
//! open — and restarted each time ends with exactly the output of one
//! uninterrupted run.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use weir_tests::{plugins, read_parquet, toml_path, Scratch};

use crate::process::{interrupt, signal, weir};

const FILES: usize = 100;
const ROWS_PER_FILE: usize = 4000;

/// Orders spread over files: duplicate ids (every 10th row repeats one
/// from three rows before, across file boundaries too), 13 customers,
/// event times 5 ms apart with up to ±200 ms of disorder.
fn write_orders(scratch: &Scratch) {
    let base: i64 = 1_704_067_200_000_000;
    for f in 0..FILES {
        let mut csv = String::from("id,customer,amount,ts\n");
        for r in 0..ROWS_PER_FILE {
            let row = (f * ROWS_PER_FILE + r) as i64;
            let id = if row % 10 == 9 { row - 3 } else { row };
            let jitter = (row * 7919 % 400 - 200) * 1000;
            let ts = base + row * 5000 + jitter;
            let amount = (row * 37 % 1000) as f64 / 10.0 - 5.0;
            let secs = ts.div_euclid(1_000_000);
            let micros = ts.rem_euclid(1_000_000);
            let time = chrono_free_iso(secs, micros);
            csv.push_str(&format!("{id},c{},{amount},{time}\n", row * 31 % 13));
        }
        scratch.write(&format!("in/orders-{f:04}.csv"), csv);
    }
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffff` (days from the
/// civil-from-days algorithm; no date library in the tests).
pub(crate) fn chrono_free_iso(secs: i64, micros: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn manifest(scratch: &Scratch) -> std::path::PathBuf {
    scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 256
            checkpoint = {{ dir = "checkpoints", interval_ms = 20 }}

            [sources.orders]
            type = "directory"
            path = "in/*.csv"
            format = "csv"
            schema = [{{ name = "id", type = "int64" }}, {{ name = "customer", type = "utf8" }},
                      {{ name = "amount", type = "float64" }}, {{ name = "ts", type = "timestamp" }}]
            poll_interval_ms = 50
            end_after_idle_ms = 1000
            watermark = {{ column = "ts", delay_ms = 1000 }}

            [transforms.unique]
            plugin = {dedupe}
            inputs = ["orders"]
            config = {{ key = ["id"] }}

            [transforms.per_second]
            plugin = {aggregate}
            inputs = ["unique"]
            config = {{ time = "ts", window_ms = 1000, group_by = ["customer"],
                        aggregates = [{{ op = "count" }}, {{ op = "sum", column = "amount" }}] }}

            [sinks.out]
            type = "parquet"
            inputs = ["per_second"]
            path = "out/agg.parquet"

            # Before dedupe: a row the source read twice shows here. Its
            # windows are in the host state store, checkpointed with it.
            [transforms.raw_per_second]
            plugin = {aggregate}
            inputs = ["orders"]
            config = {{ time = "ts", window_ms = 1000, group_by = ["customer"], store = "host",
                        aggregates = [{{ op = "count" }}, {{ op = "sum", column = "amount" }}] }}

            [sinks.raw]
            type = "parquet"
            inputs = ["raw_per_second"]
            path = "raw/agg.parquet"
            "#,
            dedupe = toml_path(plugins::DEDUPE.as_ref()),
            aggregate = toml_path(plugins::AGGREGATE.as_ref()),
        ),
    )
}

pub(crate) fn start(manifest: &Path) -> Child {
    weir()
        .args(["run", "--quiet", "--progress", "0"])
        .arg(manifest)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir")
}

pub(crate) fn wait_ok(mut child: Child) {
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).ok();
    }
    assert!(status.success(), "weir failed: {err}");
}

/// Every output row, as (window start, customer, count, sum bits),
/// sorted; and how many part files held them.
fn output(dir: &Path) -> (Vec<(i64, String, i64, u64)>, usize) {
    let mut rows = Vec::new();
    let mut parts = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        assert!(
            name.starts_with("agg-") && name.ends_with(".parquet"),
            "unexpected {name}"
        );
        parts += 1;
        let batch = read_parquet(&entry.path()).unwrap();
        let start = batch.column_by_name("window_start").unwrap();
        let start = start.as_primitive::<TimestampMicrosecondType>();
        let customer = batch.column_by_name("customer").unwrap().as_string::<i32>();
        let count = batch
            .column_by_name("count")
            .unwrap()
            .as_primitive::<Int64Type>();
        let sum = batch
            .column_by_name("sum_amount")
            .unwrap()
            .as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            rows.push((
                start.value(i),
                customer.value(i).to_string(),
                count.value(i),
                sum.value(i).to_bits(),
            ));
        }
    }
    rows.sort();
    (rows, parts)
}

/// The newest checkpoint id on disk (0: none yet).
fn newest_checkpoint(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Files source `source` had read to the end at the newest checkpoint.
pub(crate) fn files_done(dir: &Path, source: &str) -> usize {
    let id = newest_checkpoint(dir);
    let meta = dir.join(format!("chk-{id:010}/meta.json"));
    let Ok(text) = std::fs::read_to_string(meta) else {
        return 0;
    };
    let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    meta["nodes"][source]["source"]["position"]["done"]
        .as_array()
        .map_or(0, Vec::len)
}

/// xorshift64*: reproducible "random" kill points from a printed seed.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn stopped_ten_times_by_sigint_sigterm_or_sigkill_the_output_equals_one_uninterrupted_run() {
    let reference = Scratch::new();
    write_orders(&reference);
    let started = Instant::now();
    wait_ok(start(&manifest(&reference)));
    let whole_run = started.elapsed();
    let (expected, _) = output(&reference.path("out"));
    let (expected_raw, _) = output(&reference.path("raw"));
    let counted: i64 = expected.iter().map(|r| r.2).sum();
    assert_eq!(
        expected_raw.iter().map(|r| r.2).sum::<i64>(),
        (FILES * ROWS_PER_FILE) as i64
    );
    assert!(expected.len() > 1000, "{} windows", expected.len());
    assert!(
        counted < (FILES * ROWS_PER_FILE) as i64
            && counted > (FILES * ROWS_PER_FILE) as i64 * 8 / 10,
        "dedupe dropped the duplicates: {counted}"
    );

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
    eprintln!("stop points from WEIR_CRASH_SEED={seed} (a whole run takes {whole_run:?})");
    let mut rng = Rng(seed);
    let crashed = Scratch::new();
    write_orders(&crashed);
    let manifest = manifest(&crashed);
    let checkpoints = crashed.path("checkpoints");
    // Ten stop points spread over the input: after the newest checkpoint
    // covers `target` files, 0–30 ms more — at start-up, mid-batch,
    // mid-checkpoint, mid-publish. Each is SIGKILL, SIGINT or SIGTERM
    // (every kind at least three times, in an order drawn from the seed);
    // a graceful stop must save open windows, not emit them.
    let mut targets: Vec<usize> = (0..10).map(|_| rng.below(FILES as u64) as usize).collect();
    targets.sort_unstable();
    let mut kinds: Vec<&str> = ["KILL", "INT", "TERM"].repeat(4)[..10].to_vec();
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut kills = 0;
    let mut points = Vec::new();
    for (target, kind) in targets.into_iter().zip(kinds) {
        let mut child = start(&manifest);
        let spawned = Instant::now();
        let extra = Duration::from_millis(rng.below(30));
        let deadline = Instant::now() + Duration::from_secs(120);
        while files_done(&checkpoints, "orders") < target && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(extra);
        if kind != "KILL" {
            // A signal in the first milliseconds of a process, before weir
            // listens for it, kills it like SIGKILL (covered above).
            std::thread::sleep(Duration::from_millis(200).saturating_sub(spawned.elapsed()));
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).ok();
            }
            panic!("the run ended ({status}) before stop {}: {err}", kills + 1);
        }
        if kind == "KILL" {
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            signal(&child, kind);
            wait_ok(child);
        }
        kills += 1;
        points.push((kind, target, files_done(&checkpoints, "orders")));
    }
    eprintln!("stopped at (signal, target, files read at the last checkpoint): {points:?}");
    assert!(
        newest_checkpoint(&checkpoints) > 0,
        "the killed runs got far enough to checkpoint"
    );
    // The last start runs to the end.
    wait_ok(start(&manifest));
    let (got, parts) = output(&crashed.path("out"));
    let missing: Vec<_> = expected
        .iter()
        .filter(|r| !got.contains(r))
        .take(20)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|r| !expected.contains(r))
        .take(20)
        .collect();
    assert!(
        got == expected,
        "after {kills} stops: {} windows, expected {}; missing {missing:?}; extra {extra:?}",
        got.len(),
        expected.len()
    );
    assert!(parts > 1, "one part per checkpoint that saw rows: {parts}");
    let (raw, _) = output(&crashed.path("raw"));
    assert!(
        raw == expected_raw,
        "before dedupe, after {kills} stops: {} rows counted, expected {}",
        raw.iter().map(|r| r.2).sum::<i64>(),
        expected_raw.iter().map(|r| r.2).sum::<i64>()
    );

    // Starting a finished pipeline again resumes at its end: nothing new.
    wait_ok(start(&manifest));
    assert_eq!(output(&crashed.path("out")), (got, parts));
    assert_eq!(output(&crashed.path("raw")).0, raw);
}

#[test]
fn a_tail_source_killed_mid_stream_resumes_at_its_checkpointed_offset() {
    let scratch = Scratch::new();
    let log = scratch.path("app.log");
    std::fs::write(&log, "").unwrap();
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [pipeline]
        checkpoint = { dir = "checkpoints", interval_ms = 50 }

        [sources.log]
        type = "tail"
        path = "app.log"
        format = "ndjson"
        schema = [{ name = "id", type = "int64" }]
        max_delay_ms = 20

        [sinks.out]
        type = "parquet"
        inputs = ["log"]
        path = "out/ids.parquet"
        "#,
    );
    // A writer appending all along, across the crash and the restart.
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            for chunk in 0..200 {
                let lines: String = (chunk * 20..chunk * 20 + 20)
                    .map(|i| format!("{{\"id\": {i}}}\n"))
                    .collect();
                std::io::Write::write_all(&mut file, lines.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut first = start(&manifest);
    let checkpoints = scratch.path("checkpoints");
    let deadline = Instant::now() + Duration::from_secs(60);
    while newest_checkpoint(&checkpoints) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        first.try_wait().unwrap().is_none(),
        "weir stopped on its own"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let second = start(&manifest);
    writer.join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&second);
    wait_ok(second);
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(scratch.path("out")).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let batch = read_parquet(&entry.path()).unwrap();
        ids.extend(
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(total, ids.len(), "no line twice");
    assert_eq!(ids, (0..4000).collect::<Vec<i64>>(), "every line once");
}

/// Every non-hidden output file's lines after its header, sorted.
fn csv_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        rows.extend(text.lines().skip(1).map(str::to_string));
    }
    rows.sort();
    rows
}

/// Requests at `minute`:`second` of 2024-01-01 00:MM:SS, one per line.
fn requests(minute: u32, seconds: std::ops::Range<u32>, method: &str) -> String {
    seconds
        .map(|s| format!("{method},2024-01-01T00:{minute:02}:{:02}\n", s % 60))
        .collect()
}

#[test]
fn ctrl_c_then_restart_emits_each_window_once() {
    let scratch = Scratch::new();
    scratch.write(
        "in/a.csv",
        format!(
            "method,ts\n{}",
            requests(19, 0..50, "GET") + &requests(19, 0..50, "GET")
        ),
    );
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            checkpoint = {{ dir = "checkpoints", interval_ms = 50 }}

            [sources.orders]
            type = "directory"
            path = "in/*.csv"
            format = "csv"
            schema = [{{ name = "ts", type = "timestamp" }}]
            poll_interval_ms = 20
            end_after_idle_ms = 2000
            watermark = {{ column = "ts", delay_ms = 0 }}

            [transforms.per_minute]
            plugin = {aggregate}
            inputs = ["orders"]
            config = {{ time = "ts", window_ms = 60000, group_by = ["method"],
                        aggregates = [{{ op = "count" }}], allowed_lateness_ms = 600000 }}

            [sinks.out]
            type = "csv"
            inputs = ["per_minute"]
            path = "out/minutes.csv"
            "#,
            aggregate = toml_path(plugins::AGGREGATE.as_ref()),
        ),
    );
    // Ctrl-C while the 00:19 window is open (the watermark is at 00:19:49).
    let mut first = start(&manifest);
    let deadline = Instant::now() + Duration::from_secs(120);
    while files_done(&scratch.path("checkpoints"), "orders") < 1 {
        assert!(
            Instant::now() < deadline,
            "the first file was never checkpointed"
        );
        if first.try_wait().unwrap().is_some() {
            wait_ok(first);
            panic!("the run ended by itself before the stop");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    interrupt(&first);
    wait_ok(first);
    assert_eq!(
        csv_rows(&scratch.path("out")),
        Vec::<String>::new(),
        "a stop is not the end of the input: the open window is kept, not emitted"
    );

    // 20 more requests in that minute (within lateness), then one at
    // 00:25, which closes it; this run ends at idleness and flushes.
    scratch.write(
        "in/b.csv",
        format!("method,ts\n{}", requests(19, 0..20, "GET")),
    );
    scratch.write(
        "in/c.csv",
        format!("method,ts\n{}", requests(25, 0..1, "GET")),
    );
    wait_ok(start(&manifest));
    let rows = csv_rows(&scratch.path("out"));
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains("00:19:00"))
            .collect::<Vec<_>>(),
        [&"2024-01-01T00:19:00Z,2024-01-01T00:20:00Z,GET,120".to_string()],
        "the 00:19 window once, with every request: {rows:?}"
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
}

#[test]
fn ctrl_c_without_checkpoints_says_plainly_what_was_written_and_that_state_was_flushed() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [sources.gen]
            type = "generate"
            rate = 2000.0

            [transforms.per_second]
            plugin = {aggregate}
            inputs = ["gen"]
            config = {{ time = "ts", window_ms = 1000, group_by = ["key"],
                        aggregates = [{{ op = "count" }}] }}

            [sinks.out]
            type = "csv"
            inputs = ["per_second"]
            path = "out.csv"
            "#,
            aggregate = toml_path(plugins::AGGREGATE.as_ref()),
        ),
    );
    let child = weir()
        .args(["run", "--progress", "0"])
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("stopped before the input ended, without checkpoints")
            && summary.contains("flushed as final"),
        "{summary}"
    );
    // The summary's time is data time; loading and compiling is said apart.
    assert!(
        summary.contains("s loading and compiling plugins"),
        "{summary}"
    );
    assert!(
        scratch.path("out.csv").exists(),
        "the sink committed what it had"
    );
}

/// A checkpointed, unbounded generate → hostile → blackhole pipeline whose
/// plugin has `config`, started with `weir run` (stdout and stderr piped).
fn start_counter(scratch: &Scratch, config: &str) -> Child {
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            checkpoint = {{ dir = "checkpoints", interval_ms = 50 }}

            [sources.gen]
            type = "generate"
            rate = 5000.0

            [transforms.counter]
            plugin = {hostile}
            inputs = ["gen"]
            config = {config}
            grants = {{ stdio = true }}
            limits = {{ timeout_ms = 300, memory_mb = 64 }}

            [sinks.out]
            type = "blackhole"
            inputs = ["counter"]
            "#,
            hostile = toml_path(plugins::HOSTILE.as_ref()),
        ),
    );
    weir()
        .args(["run", "--progress", "0"])
        .arg(manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the checkpoints in `scratch` pass `after`, then stops the
/// run with Ctrl-C; returns the summary of the clean stop.
fn stop_after_a_checkpoint(scratch: &Scratch, child: Child, after: u64) -> String {
    let checkpoints = scratch.path("checkpoints");
    let deadline = Instant::now() + Duration::from_secs(60);
    while newest_checkpoint(&checkpoints) <= after {
        assert!(Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(Duration::from_millis(10));
    }
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_plugin_whose_restore_panics_fails_the_resume_by_name_and_a_fixed_version_resumes_the_same_checkpoint(
) {
    let scratch = Scratch::new();
    let checkpoints = scratch.path("checkpoints");
    stop_after_a_checkpoint(
        &scratch,
        start_counter(&scratch, r#"{ mode = "stateful" }"#),
        0,
    );
    let saved = newest_checkpoint(&checkpoints);

    let out = start_counter(&scratch, r#"{ mode = "bad-restore" }"#)
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an error, not a crash: {stderr}"
    );
    assert!(
        stderr.contains("\"counter\"") && stderr.contains("panicked in restore on purpose"),
        "{stderr}"
    );
    assert!(!stderr.contains("Cannot start a runtime"), "{stderr}");
    assert_eq!(
        newest_checkpoint(&checkpoints),
        saved,
        "the checkpoint is untouched"
    );

    let summary = stop_after_a_checkpoint(
        &scratch,
        start_counter(&scratch, r#"{ mode = "stateful" }"#),
        saved,
    );
    assert!(
        summary.contains(&format!("resumed from #{saved}")),
        "{summary}"
    );
}

/// Runs the counter pipeline with `mode` striking in `phase` to its end,
/// and checks it failed within the node's limits, naming node, phase and
/// the cause.
fn fails_in(scratch: &Scratch, phase: &str, mode: &str) {
    let started = Instant::now();
    let out = start_counter(
        scratch,
        &format!(r#"{{ mode = "{mode}", phase = "{phase}" }}"#),
    )
    .wait_with_output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
    let cause = match mode {
        "panic" => "panicked on purpose",
        "loop" => "exceeded its time budget",
        _ => "exceeded its memory limit",
    };
    assert!(
        stderr.contains(&format!("node \"counter\": plugin failed in {phase}"))
            && stderr.contains(cause),
        "{mode}: {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{mode}: took {:?}",
        started.elapsed()
    );
}

/// A `snapshot` that panics, never returns or grows without bound is
/// stopped by the node's limits (300 ms, 64 MiB here) and fails the run at
/// that checkpoint, naming node and phase: the plugin's state is gone, so
/// no later checkpoint could be consistent. (A snapshot that returns an
/// error only declines its checkpoint: see below.)
#[test]
fn a_snapshot_that_panics_hangs_or_grows_fails_the_run_naming_node_and_phase_within_its_limits() {
    for mode in ["panic", "loop", "grow"] {
        let scratch = Scratch::new();
        fails_in(&scratch, "snapshot", mode);
        assert_eq!(
            newest_checkpoint(&scratch.path("checkpoints")),
            0,
            "{mode}: no checkpoint without the plugin's state"
        );
    }
}

/// The same in `restore` when a checkpointed pipeline resumes: the run
/// fails naming node and phase within the node's limits, and the
/// checkpoint it was resuming from is kept for a fixed version.
#[test]
fn a_restore_that_panics_hangs_or_grows_fails_the_resume_naming_node_and_phase_and_keeps_the_checkpoint(
) {
    let scratch = Scratch::new();
    let checkpoints = scratch.path("checkpoints");
    // `phase = "restore"` with `mode = "pass"` keeps a count and restores it.
    stop_after_a_checkpoint(
        &scratch,
        start_counter(&scratch, r#"{ mode = "pass", phase = "restore" }"#),
        0,
    );
    let saved = newest_checkpoint(&checkpoints);
    for mode in ["panic", "loop", "grow"] {
        fails_in(&scratch, "restore", mode);
        assert_eq!(newest_checkpoint(&checkpoints), saved, "{mode}");
    }
    let summary = stop_after_a_checkpoint(
        &scratch,
        start_counter(&scratch, r#"{ mode = "pass", phase = "restore" }"#),
        saved,
    );
    assert!(
        summary.contains(&format!("resumed from #{saved}")),
        "{summary}"
    );
}

/// A checkpointed generate → hostile(stateful) → blackhole run of `rows`
/// rows whose plugin fails its first `fail_snapshots` snapshots.
fn run_with_failing_snapshots(scratch: &Scratch, fail_snapshots: u64) -> std::process::Output {
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 100
            checkpoint = {{ dir = "checkpoints", interval_ms = 20, max_failed_snapshots = 3 }}

            [sources.gen]
            type = "generate"
            rows = 20000
            rate = 40000.0

            [transforms.counter]
            plugin = {hostile}
            inputs = ["gen"]
            config = {{ mode = "stateful", fail_snapshots = {fail_snapshots} }}

            [sinks.out]
            type = "blackhole"
            inputs = ["counter"]
            "#,
            hostile = toml_path(plugins::HOSTILE.as_ref()),
        ),
    );
    weir()
        .args(["run", "--progress", "0"])
        .arg(manifest)
        .output()
        .unwrap()
}

#[test]
fn a_failed_snapshot_declines_that_checkpoint_not_the_run_up_to_max_failed_snapshots() {
    let scratch = Scratch::new();
    let out = run_with_failing_snapshots(&scratch, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("checkpoint declined").count(), 2, "{stderr}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("20000 rows"), "{summary}");

    let scratch = Scratch::new();
    let out = run_with_failing_snapshots(&scratch, 1000);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"counter\"") && stderr.contains("state store busy"),
        "the fourth failure in a row fails the run, naming the node: {stderr}"
    );
}

#[test]
fn a_snapshot_larger_than_128_mib_is_checkpointed_when_the_memory_limit_allows_it() {
    // wasmtime lets one call hand the host 128 MiB by default; a plugin
    // allowed 512 MiB of memory may hold (and snapshot) more than that.
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            checkpoint = {{ dir = "checkpoints", interval_ms = 100000 }}

            [sources.gen]
            type = "generate"
            rows = 1000

            [transforms.counter]
            plugin = {hostile}
            inputs = ["gen"]
            config = {{ mode = "stateful", snapshot_mib = 160 }}
            limits = {{ memory_mb = 512, timeout_ms = 10000 }}

            [sinks.out]
            type = "blackhole"
            inputs = ["counter"]
            "#,
            hostile = toml_path(plugins::HOSTILE.as_ref()),
        ),
    );
    wait_ok(start(&manifest));
    let id = newest_checkpoint(&scratch.path("checkpoints"));
    let dir = scratch.path(&format!("checkpoints/chk-{id:010}"));
    let state = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".state"))
        .expect("the plugin's state file");
    assert!(state.metadata().unwrap().len() >= 160 << 20);
}
