//! Unbounded sources, micro-batching, event-time windows and
//! backpressure, run through the `weir` binary as a user runs a stream
//! (started, fed while it runs, stopped with Ctrl-C).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use weir_tests::{plugins, read_ipc, toml_path, Scratch};

use crate::process::{interrupt, summary_rows, weir};

/// Starts `weir run MANIFEST` with piped output.
fn start(manifest: &Path) -> Child {
    weir()
        .args(["run", "--progress", "0"])
        .arg(manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir")
}

/// Waits for `child` to exit (at most `limit`); its stdout and stderr.
pub(crate) fn finish(mut child: Child, limit: Duration) -> (String, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut s) = child.stdout.take() {
                s.read_to_string(&mut out).ok();
            }
            if let Some(mut s) = child.stderr.take() {
                s.read_to_string(&mut err).ok();
            }
            assert!(status.success(), "weir failed ({status}):\n{err}");
            return (out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("weir did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `check` holds, at most `limit`.
pub(crate) fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The int64 column `name` of an IPC file's rows.
fn ids(path: &Path, name: &str) -> Vec<i64> {
    let batch = read_ipc(path).unwrap();
    let column = batch.column_by_name(name).unwrap();
    column.as_primitive::<Int64Type>().values().to_vec()
}

/// The lines a child prints, as they come (so a test can wait with a
/// time limit instead of hanging).
fn lines_of(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// A free port on loopback (bound and released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request; the status code, headers (lower-cased) and body.
pub(crate) fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn ndjson(range: std::ops::Range<i64>) -> String {
    range.map(|i| format!("{{\"id\": {i}}}\n")).collect()
}

#[test]
fn directory_source_takes_each_new_file_once_in_name_order() {
    let scratch = Scratch::new();
    scratch.write("in/b.ndjson", ndjson(10..20));
    scratch.write("in/a.ndjson", ndjson(0..10));
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [sources.files]
        type = "directory"
        path = "in/*.ndjson"
        format = "ndjson"
        schema = [{ name = "id", type = "int64" }]
        poll_interval_ms = 50
        end_after_idle_ms = 1500

        [sinks.out]
        type = "ipc"
        inputs = ["files"]
        path = "out.arrow"
        "#,
    );
    let child = start(&manifest);
    std::thread::sleep(Duration::from_millis(400));
    // Written the way writers should: under a hidden name, then renamed.
    // The hidden file itself is never taken.
    scratch.write("in/.c.ndjson.part", ndjson(20..30));
    std::fs::rename(
        scratch.path("in/.c.ndjson.part"),
        scratch.path("in/c.ndjson"),
    )
    .unwrap();
    scratch.write("in/.d.ndjson", ndjson(100..110));
    // Touching a file already read does not read it again.
    std::thread::sleep(Duration::from_millis(300));
    scratch.write("in/a.ndjson", ndjson(0..10));
    finish(child, Duration::from_secs(30));
    assert_eq!(
        ids(&scratch.path("out.arrow"), "id"),
        (0..30).collect::<Vec<_>>()
    );
}

#[test]
fn tail_source_follows_rotation_without_losing_or_repeating_a_line() {
    let scratch = Scratch::new();
    let log = scratch.path("app.log");
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [sources.log]
        type = "tail"
        path = "app.log"
        format = "ndjson"
        schema = [{ name = "id", type = "int64" }]
        max_delay_ms = 50

        [sinks.out]
        type = "ipc"
        inputs = ["log"]
        path = "out.arrow"
        "#,
    );
    let mut writer = std::fs::File::create(&log).unwrap();
    writer.write_all(ndjson(0..100).as_bytes()).unwrap();
    let child = start(&manifest);
    std::thread::sleep(Duration::from_millis(500));
    // logrotate's default: rename, and the writer goes on appending to the
    // file it has open until it reopens the path.
    std::fs::rename(&log, scratch.path("app.log.1")).unwrap();
    writer.write_all(ndjson(100..150).as_bytes()).unwrap();
    // A line split across two writes is one line.
    writer.write_all(b"{\"id\": 15").unwrap();
    writer.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    writer.write_all(b"0}\n").unwrap();
    drop(writer);
    let mut writer = std::fs::File::create(&log).unwrap();
    writer.write_all(ndjson(151..300).as_bytes()).unwrap();
    writer.flush().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    interrupt(&child);
    finish(child, Duration::from_secs(30));
    assert_eq!(
        ids(&scratch.path("out.arrow"), "id"),
        (0..300).collect::<Vec<_>>()
    );
}

#[test]
fn a_trickle_stream_flows_within_max_delay_long_before_a_batch_fills() {
    let scratch = Scratch::new();
    let log = scratch.path("trickle.log");
    std::fs::write(&log, "").unwrap();
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [pipeline]
        batch_size = 100000

        [sources.log]
        type = "tail"
        path = "trickle.log"
        format = "csv"
        schema = [{ name = "id", type = "int64" }, { name = "word", type = "utf8" }]
        max_delay_ms = 100

        [sinks.out]
        type = "stdout"
        inputs = ["log"]
        format = "csv"
        "#,
    );
    let mut child = start(&manifest);
    let lines_rx = lines_of(child.stdout.take().unwrap());
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for i in 0..3 {
        writeln!(file, "{i},word{i}").unwrap();
        file.flush().unwrap();
        // One row, not 100,000: it must come out on its own.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = lines_rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("row {i} did not come through within 10 s"));
            if line == format!("{i},word{i}") {
                break;
            }
        }
    }
    interrupt(&child);
    finish(child, Duration::from_secs(30));
}

#[test]
fn http_source_takes_rows_in_every_format_and_answers_429_when_behind() {
    let scratch = Scratch::new();
    let port = free_port();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [sources.ingest]
            type = "http"
            address = "127.0.0.1:{port}"
            path = "/rows"
            schema = [{{ name = "id", type = "int64" }}]
            max_queued_rows = 100
            max_body_bytes = 4096
            bearer_env = "WEIR_TEST_INGEST_TOKEN"
            max_delay_ms = 20

            [sinks.out]
            type = "ipc"
            inputs = ["ingest"]
            path = "out.arrow"
            "#
        ),
    );
    let child = weir()
        .args(["run", "--progress", "0"])
        .arg(&manifest)
        .env("WEIR_TEST_INGEST_TOKEN", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let auth = ("Authorization", "Bearer s3cret");
    eventually(Duration::from_secs(30), "the endpoint", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let post =
        |ct: &str, body: &[u8]| request(port, "POST", "/rows", &[auth, ("Content-Type", ct)], body);
    assert_eq!(
        post("application/x-ndjson", ndjson(0..10).as_bytes()).0,
        200
    );
    let csv: String = std::iter::once("id\n".to_string())
        .chain((10..20).map(|i| format!("{i}\n")))
        .collect();
    assert_eq!(post("text/csv", csv.as_bytes()).0, 200);
    let batch = weir_tests::batch(vec![(
        "id",
        weir_tests::arc(arrow::array::Int32Array::from_iter_values(20..30)),
    )]);
    let mut ipc = Vec::new();
    {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }
    assert_eq!(post("application/vnd.apache.arrow.stream", &ipc).0, 200);

    let (status, _, body) = request(
        port,
        "POST",
        "/rows",
        &[("Content-Type", "application/x-ndjson")],
        b"{\"id\": 1}\n",
    );
    assert_eq!(status, 401, "no token: {body}");
    let (status, _, body) = post("application/x-ndjson", b"{\"id\": \"not a number\"}\n");
    assert_eq!(status, 400);
    assert!(body.contains("NDJSON"), "{body}");
    assert_eq!(
        post("application/x-ndjson", ndjson(0..1000).as_bytes()).0,
        413
    );
    assert_eq!(post("application/xml", b"<id/>").0, 415);
    assert_eq!(request(port, "GET", "/rows", &[auth], b"").0, 405);
    interrupt(&child);
    finish(child, Duration::from_secs(30));
    let mut got = ids(&scratch.path("out.arrow"), "id");
    got.sort_unstable();
    assert_eq!(got, (0..30).collect::<Vec<_>>());
}

#[test]
fn http_source_answers_429_with_retry_after_while_the_pipeline_is_behind() {
    let scratch = Scratch::new();
    let port = free_port();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 10
            channel_capacity = 1

            [sources.ingest]
            type = "http"
            address = "127.0.0.1:{port}"
            schema = [{{ name = "id", type = "int64" }}]
            max_queued_rows = 50
            retry_after_s = 2
            max_delay_ms = 10

            [sinks.slow]
            type = "blackhole"
            inputs = ["ingest"]
            rate = 20
            "#
        ),
    );
    let child = start(&manifest);
    eventually(Duration::from_secs(30), "the endpoint", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..20 {
        let (status, head, _) = request(
            port,
            "POST",
            "/",
            &[],
            ndjson(i * 10..i * 10 + 10).as_bytes(),
        );
        if status == 429 {
            retry_after = head
                .lines()
                .find_map(|l| l.strip_prefix("retry-after:").map(|v| v.trim().to_string()));
        }
        statuses.push(status);
    }
    interrupt(&child);
    let (out, _) = finish(child, Duration::from_secs(60));
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert!(accepted >= 5, "the first requests are taken: {statuses:?}");
    assert!(
        statuses.contains(&429),
        "a full queue answers 429: {statuses:?}"
    );
    assert_eq!(retry_after.as_deref(), Some("2"));
    // Everything answered 200 reached the sink; nothing answered 429 did.
    let sunk = summary_rows(&out, "slow");
    assert_eq!(sunk, accepted as u64 * 10, "{out}");
}

#[test]
fn aggregate_windows_count_rows_within_allowed_lateness_and_send_later_ones_to_the_late_port() {
    let scratch = Scratch::new();
    // Event times in seconds, in arrival order; two rows per batch.
    let times = ["0.1", "0.5", "1.2", "0.8", "1.7", "0.9", "0.95", "2.6"];
    let csv: String = std::iter::once("ts,amount\n".to_string())
        .chain(times.iter().enumerate().map(|(i, t)| {
            let micros = (t.parse::<f64>().unwrap() * 1e6).round() as i64;
            format!(
                "1970-01-01T00:00:{:02}.{:06},{}\n",
                micros / 1_000_000,
                micros % 1_000_000,
                i + 1
            )
        }))
        .collect();
    scratch.write("events.csv", csv);
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [sources.events]
            type = "csv"
            path = "events.csv"
            batch_size = 2
            schema = [{{ name = "ts", type = "timestamp" }}, {{ name = "amount", type = "int64" }}]
            watermark = {{ column = "ts", delay_ms = 0 }}

            [transforms.per_second]
            plugin = {aggregate}
            inputs = ["events"]
            config = {{ time = "ts", window_ms = 1000, allowed_lateness_ms = 500,
                        aggregates = [{{ op = "count" }}, {{ op = "sum", column = "amount" }}] }}

            [sinks.out]
            type = "ipc"
            inputs = ["per_second"]
            path = "out.arrow"

            [sinks.late]
            type = "ipc"
            inputs = ["per_second.late"]
            path = "late.arrow"
            "#,
            aggregate = toml_path(plugins::AGGREGATE.as_ref())
        ),
    );
    let out = weir()
        .env("RUST_LOG", "warn,weir=info")
        .args(["run", "--quiet"])
        .arg(&manifest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let batch = read_ipc(&scratch.path("out.arrow")).unwrap();
    let count = batch
        .column_by_name("count")
        .unwrap()
        .as_primitive::<Int64Type>();
    let sum = batch
        .column_by_name("sum_amount")
        .unwrap()
        .as_primitive::<Int64Type>();
    // [0,1): 0.1, 0.5, then 0.8 and 0.9 arriving after 1.2 and 1.7 but
    // within the 500 ms allowed; 0.95 arrives after the watermark reached
    // 1.7 ≥ 1.0 + 0.5: the window was emitted, the row is late.
    assert_eq!(count.values().to_vec(), vec![4, 2, 1]);
    assert_eq!(sum.values().to_vec(), vec![1 + 2 + 4 + 6, 3 + 5, 8]);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("late rows sent to the `late` port") && l.contains("total=1")),
        "the late row is counted in the log:\n{stderr}"
    );
    // The late row itself, unchanged: 0.95 s, the 7th row.
    let late = read_ipc(&scratch.path("late.arrow")).unwrap();
    assert_eq!(late.num_rows(), 1);
    let amount = late
        .column_by_name("amount")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(amount.values().to_vec(), vec![7]);
}

#[test]
fn sliding_windows_count_a_row_in_every_window_that_contains_it() {
    let scratch = Scratch::new();
    let summary = scratch
        .run(&format!(
            r#"
            [sources.gen]
            type = "generate"
            rows = 10000
            keys = 3
            watermark = {{ column = "ts", delay_ms = 0 }}

            [transforms.windows]
            plugin = {aggregate}
            inputs = ["gen"]
            config = {{ time = "ts", window_ms = 2000, slide_ms = 1000, group_by = ["key"],
                        aggregates = [{{ op = "count" }}, {{ op = "min", column = "seq" }},
                                      {{ op = "max", column = "seq" }}, {{ op = "avg", column = "value", as = "mean" }}] }}

            [sinks.out]
            type = "ipc"
            inputs = ["windows"]
            path = "out.arrow"
            "#,
            aggregate = toml_path(plugins::AGGREGATE.as_ref())
        ))
        .unwrap();
    assert_eq!(summary.node("gen").unwrap().rows_out, 10000);
    let batch = read_ipc(&scratch.path("out.arrow")).unwrap();
    let count = batch
        .column_by_name("count")
        .unwrap()
        .as_primitive::<Int64Type>();
    // One row per ms for 10 s: 11 windows of 2 s sliding by 1 s, each
    // interior one holding 2,000 rows across the keys; every row in two.
    assert_eq!(count.values().iter().sum::<i64>(), 20000);
    let starts = batch.column_by_name("window_start").unwrap();
    assert_eq!(starts.len(), batch.num_rows());
    assert!(batch.column_by_name("mean").is_some());
}

/// VmRSS of a process, in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

#[test]
fn a_slow_sink_slows_the_source_and_memory_stays_flat() {
    let scratch = Scratch::new();
    // The source could make 1 M rows/s; the sink takes 100 k rows/s.
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 4096

            [sources.gen]
            type = "generate"
            rate = 1000000

            [transforms.keep]
            plugin = {filter}
            inputs = ["gen"]
            config = {{ predicate = "value > -1000" }}

            [sinks.slow]
            type = "blackhole"
            inputs = ["keep"]
            rate = 100000
            "#,
            filter = toml_path(plugins::FILTER.as_ref())
        ),
    );
    let child = start(&manifest);
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(bytes) = rss(child.id()) {
            samples.push((started.elapsed(), bytes));
        }
    }
    interrupt(&child);
    let (out, _) = finish(child, Duration::from_secs(60));
    let elapsed = started.elapsed().as_secs_f64();
    let produced = summary_rows(&out, "gen");
    // The source was held to the sink's pace (plus what the bounded
    // queues hold), far below the 1 M rows/s it could make.
    assert!(
        (produced as f64) < 100_000.0 * elapsed * 1.5,
        "source made {produced} rows in {elapsed:.1}s; the sink takes 100,000/s\n{out}"
    );
    let warm: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= Duration::from_secs(2))
        .map(|(_, b)| *b)
        .collect();
    let (lo, hi) = (warm.iter().min().unwrap(), warm.iter().max().unwrap());
    assert!(
        hi - lo < 32 << 20,
        "resident memory moved by {} MiB after warm-up (samples {samples:?})",
        (hi - lo) >> 20
    );
}

#[test]
fn a_stream_shows_live_progress_and_the_summary_names_each_guarantee() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [pipeline]
        checkpoint = { dir = "checkpoints", interval_ms = 100 }

        [sources.gen]
        type = "generate"
        rate = 20000
        watermark = { column = "ts", delay_ms = 0 }

        [sinks.out]
        type = "parquet"
        inputs = ["gen"]
        path = "out/gen.parquet"
        "#,
    );
    let child = weir()
        .args(["run", "--progress", "0.3"])
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&child);
    let (out, err) = finish(child, Duration::from_secs(30));
    let progress: Vec<&str> = err.lines().filter(|l| l.starts_with("progress:")).collect();
    assert!(progress.len() >= 2, "a line every 0.3 s:\n{err}");
    let last = progress[progress.len() - 1];
    assert!(
        last.contains("gen ")
            && last.contains("rows/s")
            && last.contains("lag ")
            && last.contains("checkpoint #"),
        "rows/s, event-time lag and the last checkpoint: {last}"
    );
    assert!(
        out.contains("delivery across a crash: sources gen exactly-once; sinks out exactly-once"),
        "{out}"
    );
    // Rows generated went into parts, every one published.
    let parts = std::fs::read_dir(scratch.path("out")).unwrap().count();
    assert!(parts >= 1);
    let rows: usize = std::fs::read_dir(scratch.path("out"))
        .unwrap()
        .map(|e| {
            weir_tests::read_parquet(&e.unwrap().path())
                .unwrap()
                .num_rows()
        })
        .sum();
    assert_eq!(rows as u64, summary_rows(&out, "gen"));
}

#[test]
fn a_watermark_on_a_column_that_is_not_a_timestamp_is_a_manifest_error_naming_the_key() {
    let scratch = Scratch::new();
    let Err(e) = scratch.check(
        r#"
        [sources.gen]
        type = "generate"
        rows = 10
        watermark = { column = "value" }

        [sinks.out]
        type = "blackhole"
        inputs = ["gen"]
        "#,
    ) else {
        panic!("accepted a watermark on a float column");
    };
    let text = e.to_string();
    assert!(
        text.contains("pipeline.toml:5") && text.contains("watermark"),
        "{text}"
    );
    assert!(text.contains("value: Float64"), "{text}");
}

#[test]
fn a_line_on_stdin_comes_out_within_max_delay_while_the_pipe_stays_open() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [sources.in]
        type = "stdin"
        format = "ndjson"
        schema = [{ name = "id", type = "int64" }]
        max_delay_ms = 50

        [sinks.out]
        type = "stdout"
        inputs = ["in"]
        format = "ndjson"
        "#,
    );
    let mut child = weir()
        .args(["run", "--quiet", "--progress", "0"])
        .arg(&manifest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    for i in 0..3 {
        writeln!(stdin, "{{\"id\": {i}}}").unwrap();
        stdin.flush().unwrap();
        // The pipe stays open: only max_delay can let the row out.
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("row {i} did not come through within 10 s"));
        assert_eq!(line, format!("{{\"id\":{i}}}"));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn http_source_takes_a_json_array_posted_as_application_json_and_says_what_it_expects() {
    let scratch = Scratch::new();
    let port = free_port();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [sources.ingest]
            type = "http"
            address = "127.0.0.1:{port}"
            schema = [{{ name = "id", type = "int64" }}, {{ name = "sensor", type = "utf8" }}]
            max_delay_ms = 20

            [sinks.out]
            type = "ipc"
            inputs = ["ingest"]
            path = "out.arrow"
            "#
        ),
    );
    let child = start(&manifest);
    eventually(Duration::from_secs(30), "the endpoint", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let post = |body: &[u8]| {
        request(
            port,
            "POST",
            "/",
            &[("Content-Type", "application/json")],
            body,
        )
    };
    let (status, _, body) = post(br#"[{"id": 4, "sensor": "a"}, {"id": 5, "sensor": "b"}]"#);
    assert_eq!(status, 200, "{body}");
    let (status, _, body) =
        post(b"{\"id\": 6, \"sensor\": \"c\"}\n{\"id\": 7, \"sensor\": \"d\"}\n");
    assert_eq!(status, 200, "NDJSON as before: {body}");
    let (status, _, body) = post(br#"[4, 5]"#);
    assert_eq!(status, 400);
    assert!(
        body.contains("element 0 of the array is a number"),
        "{body}"
    );
    let (status, _, body) = post(br#"{"rows": [{"id": 8}]"#);
    assert_eq!(status, 400);
    assert!(
        body.contains("one array of objects"),
        "says what it expects: {body}"
    );
    interrupt(&child);
    finish(child, Duration::from_secs(30));
    let mut got = ids(&scratch.path("out.arrow"), "id");
    got.sort_unstable();
    assert_eq!(got, [4, 5, 6, 7]);
}

#[test]
fn a_tailed_csv_whose_header_is_not_the_declared_order_fails_instead_of_mislabelling() {
    let scratch = Scratch::new();
    scratch.write("app.csv", "bytes,status\n512,200\n71586,404\n");
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [sources.log]
        type = "tail"
        path = "app.csv"
        format = "csv"
        header = true
        start_at = "beginning"
        max_delay_ms = 20
        schema = [{ name = "status", type = "int64" }, { name = "bytes", type = "int64" }]

        [sinks.out]
        type = "blackhole"
        inputs = ["log"]
        "#,
    );
    let mut child = start(&manifest);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("still running: the mislabelled rows were taken");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the header names [bytes, status] but `schema` declares [status, bytes]"),
        "{stderr}"
    );
}
