//! Watching a pipeline from outside: Prometheus metrics scraped while a
//! stream runs (parsed by the Prometheus project's own Python parser),
//! the run summary as JSON, and `weir check --json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use weir_tests::{plugins, repo, toml_path, Scratch};

use crate::process::{interrupt, weir};
use crate::streaming::{eventually, finish, free_port, request};

/// The families of a Prometheus text exposition, as `prometheus_client`'s
/// parser reads them: name (without `_total`) → type and samples.
fn parse_metrics(text: &str) -> BTreeMap<String, Value> {
    let mut child = std::process::Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("tests/reference/metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse the exposition:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include every pair of
/// `labels`.
fn sample(families: &BTreeMap<String, Value>, name: &str, labels: &[(&str, &str)]) -> f64 {
    families
        .values()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .find(|s| {
            s[0] == name
                && labels
                    .iter()
                    .all(|(k, v)| s[1].get(k).and_then(Value::as_str) == Some(v))
        })
        .and_then(|s| s[2].as_f64())
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

/// The entry of `json["nodes"]` called `name`.
fn node_named(json: &Value, name: &str) -> Value {
    json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {json}"))
        .clone()
}

/// Runs `tests/reference/SCRIPT` with the test venv's Python; its output.
fn reference(script: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("tests/reference").join(script))
        .args(args)
        .output()
        .unwrap()
}

/// Holds the JSON document at `path` to `docs/schemas/NAME.schema.json`
/// (validated by the `jsonschema` package).
fn assert_matches_schema(name: &str, path: &Path) {
    let schema = repo().join(format!("docs/schemas/{name}.schema.json"));
    let out = reference("json_schema.py", &[schema.as_os_str(), path.as_os_str()]);
    assert!(
        out.status.success(),
        "{} doesn't match docs/schemas/{name}.schema.json:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value on the exposition's first line starting with `series` (0 if
/// none): a quick look while waiting, before the full parse.
fn line_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// `GET /metrics` on `port`: the content type and the body.
fn scrape(port: u16) -> (String, String) {
    let (status, head, body) = request(port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{head}\n{body}");
    (head, body)
}

/// A stream whose sink takes a tenth of what the source makes: a
/// generate source, the filter plugin under `skip`, a rate-limited
/// blackhole; checkpoints every 200 ms.
fn slow_sink_stream(scratch: &Scratch, metrics_port: u16) -> std::path::PathBuf {
    scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 2048
            metrics = "127.0.0.1:{metrics_port}"
            checkpoint = {{ dir = "checkpoints", interval_ms = 200 }}

            [sources.gen]
            type = "generate"
            rate = 400000
            watermark = {{ column = "ts", delay_ms = 0 }}

            [transforms.keep]
            plugin = {filter}
            inputs = ["gen"]
            config = {{ predicate = "value > 0.5" }}
            on_error = "skip"

            [sinks.slow]
            type = "blackhole"
            inputs = ["keep"]
            rate = 40000
            "#,
            filter = toml_path(plugins::FILTER.as_ref())
        ),
    )
}

fn start(manifest: &Path, args: &[&str]) -> Child {
    weir()
        .args(["run", "--progress", "0"])
        .args(args)
        .arg(manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir")
}

#[test]
fn metrics_scraped_during_a_stream_parse_as_prometheus_text_and_rise() {
    let scratch = Scratch::new();
    let port = free_port();
    let child = start(&slow_sink_stream(&scratch, port), &[]);
    let mut first = String::new();
    eventually(
        Duration::from_secs(60),
        "metrics with rows and a checkpoint",
        || {
            let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            drop(stream);
            first = scrape(port).1;
            first.contains("weir_checkpoint_last_success_timestamp_seconds")
                && line_value(&first, "weir_node_sent_rows_total{node=\"keep\"") > 0.0
        },
    );
    std::thread::sleep(Duration::from_millis(1200));
    let (head, second) = scrape(port);
    interrupt(&child);
    finish(child, Duration::from_secs(60));

    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (before, now) = (parse_metrics(&first), parse_metrics(&second));
    for family in [
        "weir_node_received_rows",
        "weir_node_sent_rows",
        "weir_node_received_bytes",
        "weir_node_sent_bytes",
        "weir_node_received_batches",
        "weir_node_sent_batches",
        "weir_node_busy_seconds",
        "weir_plugin_call_duration_seconds",
        "weir_plugin_failed_batches",
        "weir_source_bad_records",
        "weir_dead_lettered_rows",
        "weir_plugin_swaps",
        "weir_plugin_rejected_versions",
        "weir_plugin_memory_bytes",
        "weir_edge_queued_messages",
        "weir_edge_backpressure_seconds",
        "weir_checkpoints",
        "weir_checkpoint_last_duration_seconds",
        "weir_checkpoint_last_size_bytes",
        "weir_checkpoint_last_success_timestamp_seconds",
        "weir_source_event_time_lag_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds",
        "process_start_time_seconds",
    ] {
        assert!(now.contains_key(family), "no {family} in:\n{second}");
    }
    assert_eq!(
        now["weir_plugin_call_duration_seconds"]["type"],
        "histogram"
    );
    assert_eq!(now["weir_edge_queued_messages"]["type"], "gauge");
    assert_eq!(now["weir_node_sent_rows"]["type"], "counter");

    // Rows keep flowing between the two scrapes.
    let gen = [("node", "gen"), ("kind", "source")];
    let sent = |m: &BTreeMap<String, Value>| sample(m, "weir_node_sent_rows_total", &gen);
    assert!(
        sent(&now) > sent(&before),
        "{} then {}",
        sent(&before),
        sent(&now)
    );

    // The histogram counts every call once: +Inf equals the count, and
    // the buckets only grow.
    let keep = [("node", "keep")];
    let calls = sample(&now, "weir_plugin_call_duration_seconds_count", &keep);
    let inf = sample(
        &now,
        "weir_plugin_call_duration_seconds_bucket",
        &[("node", "keep"), ("le", "+Inf")],
    );
    assert!(calls >= 1.0 && inf == calls, "count {calls}, +Inf {inf}");
    let buckets: Vec<f64> = now["weir_plugin_call_duration_seconds"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[0] == "weir_plugin_call_duration_seconds_bucket")
        .map(|s| s[2].as_f64().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");

    // The sink takes a tenth of what comes: keep waits on its edge.
    let slow_edge = [("from", "keep"), ("to", "slow")];
    assert!(sample(&now, "weir_edge_backpressure_seconds_total", &slow_edge) > 0.1);
    assert!(sample(&now, "weir_checkpoints_total", &[]) >= 1.0);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = sample(&now, "weir_checkpoint_last_success_timestamp_seconds", &[]);
    assert!(
        (unix - last).abs() < 60.0,
        "last checkpoint at {last}, now {unix}"
    );
    assert!(sample(&now, "weir_plugin_memory_bytes", &keep) >= 65536.0);
    assert!(sample(&now, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(sample(&now, "process_cpu_seconds_total", &[]) > 0.0);
    let skip = [("node", "keep"), ("policy", "skip")];
    assert_eq!(sample(&now, "weir_plugin_failed_batches_total", &skip), 0.0);
}

#[test]
fn summary_json_of_a_stopped_stream_has_every_nodes_figures() {
    let scratch = Scratch::new();
    let port = free_port();
    let manifest = slow_sink_stream(&scratch, port);
    let json = scratch.path("summary.json");
    let child = start(&manifest, &["--summary-json", json.to_str().unwrap()]);
    // Stopped once rows reached the sink (however long the first compile
    // of the plugin takes on this machine).
    eventually(Duration::from_secs(60), "rows at the sink", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && line_value(
                &scrape(port).1,
                "weir_node_received_rows_total{node=\"slow\"",
            ) > 0.0
    });
    interrupt(&child);
    finish(child, Duration::from_secs(60));
    assert_matches_schema("run-summary", &json);
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["status"], "stopped");
    let node = |name: &str| node_named(&summary, name);
    let (gen, keep, slow) = (node("gen"), node("keep"), node("slow"));
    assert!(gen["rows_out"].as_u64().unwrap() > 0);
    assert_eq!(gen["rows_out"], keep["rows_in"]);
    assert_eq!(keep["rows_out"], slow["rows_in"]);
    assert_eq!(summary["rows"], gen["rows_out"]);
    assert_eq!(keep["policy"], "skip");
    assert_eq!(keep["plugin_calls"], keep["batches_in"]);
    assert_eq!(
        summary["checkpoints"]["delivery"]["sources"]["gen"],
        "exactly-once"
    );
}

/// A CSV whose second row has `oops` for a float64 amount: the run fails
/// on it (on_bad_record = "fail", the default).
fn failing_csv(scratch: &Scratch) -> std::path::PathBuf {
    scratch.write("orders.csv", "id,amount\n1,2.5\n2,oops\n");
    scratch.write(
        "pipeline.toml",
        r#"
        [sources.orders]
        type = "csv"
        path = "orders.csv"
        schema = [{ name = "id", type = "int64" }, { name = "amount", type = "float64" }]

        [sinks.out]
        type = "blackhole"
        inputs = ["orders"]
        "#,
    )
}

#[test]
fn summary_json_of_a_failed_run_says_failed_and_why() {
    let scratch = Scratch::new();
    let manifest = failing_csv(&scratch);
    let json = scratch.path("summary.json");
    let out = weir()
        .args(["run", "--summary-json", json.to_str().unwrap()])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_matches_schema("run-summary", &json);
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["status"], "failed");
    let error = summary["error"].as_str().unwrap();
    assert!(
        error.contains("orders.csv") && error.contains("oops"),
        "{error}"
    );
}

/// Two CSV sources feeding a filter (dead letters to their own sink) and,
/// beside it, one CSV sink: a fan-out and two fan-ins.
fn fan_out_fan_in(scratch: &Scratch) -> std::path::PathBuf {
    scratch.write("a.csv", "id,amount\n1,2.5\n");
    scratch.write("b.csv", "id,amount\n2,-1\n");
    scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [sources.a]
            type = "csv"
            path = "a.csv"
            schema = [{{ name = "id", type = "int64" }}, {{ name = "amount", type = "float64" }}]

            [sources.b]
            type = "csv"
            path = "b.csv"
            schema = [{{ name = "id", type = "int64" }}, {{ name = "amount", type = "float64" }}]

            [transforms.keep]
            plugin = {filter}
            inputs = ["a", "b"]
            config = {{ predicate = "amount > 0" }}
            on_error = "dead_letter"

            [sinks.good]
            type = "parquet"
            inputs = ["keep"]
            path = "good.parquet"

            [sinks.bad]
            type = "ndjson"
            inputs = ["keep.dead_letter"]
            path = "bad.ndjson"

            [sinks.all]
            type = "csv"
            inputs = ["a", "b"]
            path = "all.csv"
            "#,
            filter = toml_path(plugins::FILTER.as_ref())
        ),
    )
}

#[test]
fn check_json_shows_each_nodes_ports_and_the_edges_of_a_fan_out_fan_in() {
    let scratch = Scratch::new();
    let manifest = fan_out_fan_in(&scratch);
    let out = weir()
        .args(["check", "--json"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_matches_schema("check", &scratch.write("check.json", &out.stdout));
    let graph: Value = serde_json::from_slice(&out.stdout).unwrap();
    let node = |name: &str| node_named(&graph, name);
    assert_eq!(node("a")["kind"], "source");
    assert_eq!(node("a")["type"], "csv");
    assert_eq!(node("good")["type"], "parquet");
    let keep = node("keep");
    assert_eq!(keep["kind"], "transform");
    assert!(keep["plugin"].as_str().unwrap().ends_with("filter.wasm"));
    let names = |schema: &Value| -> Vec<String> {
        schema
            .as_array()
            .unwrap_or_else(|| panic!("no schema: {schema}"))
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&keep["ports"]["main"]), ["id", "amount"]);
    assert_eq!(keep["ports"]["main"][1]["type"], "Float64");
    let dead = names(&keep["ports"]["dead_letter"]);
    assert_eq!(&dead[..2], ["id", "amount"]);
    assert!(dead.contains(&"_error".to_string()), "{dead:?}");
    assert_eq!(names(&node("bad")["input"]), dead);

    let mut edges: Vec<String> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}.{}->{}",
                e["from"].as_str().unwrap(),
                e["port"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        [
            "a.main->all",
            "a.main->keep",
            "b.main->all",
            "b.main->keep",
            "keep.dead_letter->bad",
            "keep.main->good",
        ]
    );
}

#[test]
fn a_metrics_address_that_is_not_one_is_a_manifest_error_naming_the_key() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [pipeline]
        metrics = "nine-one-hundred"

        [sources.gen]
        type = "generate"
        rows = 10

        [sinks.out]
        type = "blackhole"
        inputs = ["gen"]
        "#,
    );
    let out = weir().arg("run").arg(&manifest).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pipeline.toml:3") && err.contains("metrics"),
        "{err}"
    );
}

#[test]
fn one_address_for_metrics_and_the_live_view_is_refused_before_the_run_starts() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [sources.gen]
        type = "generate"
        rows = 10

        [sinks.out]
        type = "csv"
        path = "out.csv"
        inputs = ["gen"]
        "#,
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let out = weir()
        .arg("run")
        .arg(&manifest)
        .args(["--metrics", &addr, "--ui", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&addr) && err.contains("a port of their own") && !err.contains("in use"),
        "{err}"
    );
    assert!(!scratch.path("out.csv").exists(), "the run started: {err}");
}

/// `weir graph PIPELINE --format FORMAT`'s output.
fn graph(manifest: &Path, format: &str) -> String {
    let out = weir()
        .args(["graph", "--format", format])
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn graph_draws_a_fan_out_fan_in_as_mermaid_that_mermaid_renders_dot_and_svg() {
    let scratch = Scratch::new();
    let manifest = fan_out_fan_in(&scratch);

    let mermaid = graph(&manifest, "mermaid");
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert_eq!(mermaid.matches(" --> ").count(), 5, "{mermaid}");
    assert_eq!(
        mermaid.matches(" -. dead_letter .-> ").count(),
        1,
        "{mermaid}"
    );
    assert!(mermaid.contains("amount: Float64"), "{mermaid}");
    // Mermaid itself (its npm bundle, in headless Chromium) draws it: six
    // nodes with their names, six edges, the dead-letter one labelled.
    let mmd = scratch.write("graph.mmd", &mermaid);
    let bundle = repo().join(".toolchains/mermaid/mermaid.min.js");
    let drawn = reference("mermaid_render.py", &[bundle.as_os_str(), mmd.as_os_str()]);
    assert!(
        drawn.status.success(),
        "{}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    let drawn: Value = serde_json::from_slice(&drawn.stdout).unwrap();
    assert_eq!(
        drawn["error"],
        Value::Null,
        "Mermaid can't draw it:\n{mermaid}"
    );
    let nodes = drawn["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "{drawn}");
    // A node's text runs its lines together: name, then "kind · type".
    for (name, kind) in [
        ("a", "source"),
        ("b", "source"),
        ("keep", "transform"),
        ("good", "sink"),
        ("bad", "sink"),
        ("all", "sink"),
    ] {
        let head = format!("{name}{kind} ·");
        assert!(
            nodes.iter().any(|n| n.as_str().unwrap().starts_with(&head)),
            "no node {head} in {drawn}"
        );
    }
    assert_eq!(drawn["edges"], 6, "{drawn}");
    assert!(
        drawn["edge_labels"]
            .as_array()
            .unwrap()
            .contains(&"dead_letter".into()),
        "{drawn}"
    );

    let dot = graph(&manifest, "dot");
    for edge in [
        "\"a\" -> \"all\";",
        "\"a\" -> \"keep\";",
        "\"b\" -> \"all\";",
        "\"b\" -> \"keep\";",
        "\"keep\" -> \"good\";",
        "\"keep\" -> \"bad\" [label=\"dead_letter\", style=dashed];",
    ] {
        assert!(dot.contains(edge), "no {edge} in:\n{dot}");
    }
    assert_eq!(dot.matches(" -> ").count(), 6, "{dot}");

    // The SVG is well-formed XML (Python's parser reads it) and shows
    // every node's name (a line of its label each).
    let svg = scratch.write("graph.svg", graph(&manifest, "svg"));
    let texts = std::process::Command::new(repo().join(".venv/bin/python"))
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             assert root.tag.endswith('svg'), root.tag\n\
             print('\\n'.join(t.text or '' for t in root.iter() if t.tag.endswith(('text', 'tspan'))))",
        ])
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        texts.status.success(),
        "{}",
        String::from_utf8_lossy(&texts.stderr)
    );
    let texts = String::from_utf8(texts.stdout).unwrap();
    for node in ["a", "b", "keep", "good", "bad", "all"] {
        assert!(
            texts.lines().any(|l| l.trim() == node),
            "no {node} in the SVG's text:\n{texts}"
        );
    }
}

/// The OpenLineage events in `file`, each rebuilt by openlineage-python's
/// spec classes (`tests/reference/openlineage_events.py`), in order.
fn lineage_events(file: &Path) -> Vec<Value> {
    let out = reference("openlineage_events.py", &[file.as_os_str()]);
    assert!(
        out.status.success(),
        "the events don't hold to the OpenLineage spec:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// The dataset of `events[k]` (inputs or outputs) whose name ends with `file`.
fn lineage_dataset(event: &Value, side: &str, file: &str) -> Value {
    event[side]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("no {side} dataset {file} in {event}"))
        .clone()
}

#[test]
fn lineage_of_a_batch_run_is_start_then_complete_with_schemas_and_row_counts() {
    let scratch = Scratch::new();
    let manifest = fan_out_fan_in(&scratch);
    let out = weir()
        .args(["run", "--lineage", "events.ndjson"])
        .arg(&manifest)
        .current_dir(scratch.path(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = lineage_events(&scratch.path("events.ndjson"));
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["START", "COMPLETE"]);
    assert_eq!(events[0]["run"], events[1]["run"]);
    assert_eq!(events[0]["job"][0], "weir");

    let (start, complete) = (&events[0], &events[1]);
    let a = lineage_dataset(start, "inputs", "a.csv");
    assert_eq!(a["namespace"], "file");
    assert_eq!(a["columns"], serde_json::json!(["id", "amount"]));
    assert_eq!(a["rows"], Value::Null, "no counts before data moves");
    assert_eq!(lineage_dataset(complete, "inputs", "a.csv")["rows"], 1);
    assert_eq!(lineage_dataset(complete, "inputs", "b.csv")["rows"], 1);
    // a's 2.5 passes the filter, b's -1 doesn't (filtered out, not a
    // failure: nothing dead-lettered); `all` has both.
    assert_eq!(
        lineage_dataset(complete, "outputs", "good.parquet")["rows"],
        1
    );
    assert_eq!(
        lineage_dataset(complete, "outputs", "bad.ndjson")["rows"],
        0
    );
    assert_eq!(lineage_dataset(complete, "outputs", "all.csv")["rows"], 2);
    let bad = lineage_dataset(start, "outputs", "bad.ndjson");
    assert!(
        bad["columns"]
            .as_array()
            .unwrap()
            .contains(&"_error".into()),
        "{bad}"
    );
}

#[test]
fn lineage_of_a_stream_sends_running_events_with_rising_counts() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [pipeline]
        lineage = { file = "events.ndjson", namespace = "team-a", job = "orders_stream", running_interval_ms = 200 }

        [sources.gen]
        type = "generate"
        rate = 50000

        [sinks.out]
        type = "blackhole"
        inputs = ["gen"]
        "#,
    );
    let child = start(&manifest, &[]);
    let file = scratch.path("events.ndjson");
    eventually(Duration::from_secs(60), "four RUNNING events", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.matches("\"RUNNING\"").count() >= 4)
    });
    interrupt(&child);
    finish(child, Duration::from_secs(60));
    let events = lineage_events(&file);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"START"), "{types:?}");
    assert_eq!(types.last(), Some(&"COMPLETE"), "{types:?}");
    let running: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "RUNNING")
        .map(|e| e["outputs"][0]["rows"].as_u64().unwrap())
        .collect();
    assert!(running.len() >= 3, "{types:?}");
    assert!(running.windows(2).all(|w| w[0] <= w[1]), "{running:?}");
    assert!(running.last() > running.first(), "{running:?}");
    assert_eq!(
        events[0]["job"],
        serde_json::json!(["team-a", "orders_stream"])
    );
    let last = events.last().unwrap();
    assert_eq!(last["inputs"][0]["rows"], last["outputs"][0]["rows"]);
}

/// Accepts HTTP requests on loopback and keeps each POST's body; answers
/// 201 as an OpenLineage endpoint (Marquez) does.
fn lineage_endpoint() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = tx.send(String::from_utf8(body).unwrap());
            let _ = (&stream).write_all(
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, rx)
}

#[test]
fn lineage_of_a_failed_run_posts_fail_with_the_error() {
    let scratch = Scratch::new();
    let manifest = failing_csv(&scratch);
    let (port, bodies) = lineage_endpoint();
    let out = weir()
        .args([
            "run",
            "--lineage",
            &format!("http://127.0.0.1:{port}/api/v1/lineage"),
        ])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let posted: Vec<String> = (0..2)
        .map(|_| {
            bodies
                .recv_timeout(Duration::from_secs(10))
                .expect("a POST")
        })
        .collect();
    let file = scratch.write("posted.ndjson", posted.join("\n") + "\n");
    let events = lineage_events(&file);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["START", "FAIL"]);
    let error = events[1]["error"].as_str().unwrap();
    assert!(
        error.contains("orders.csv") && error.contains("oops"),
        "{error}"
    );
}

#[test]
fn the_live_view_in_chromium_shows_every_node_with_rising_rows_and_a_hot_swap() {
    let scratch = Scratch::new();
    let filter = std::fs::read(plugins::FILTER).unwrap();
    let plugin = scratch.write("filter.wasm", &filter);
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            checkpoint = {{ dir = "checkpoints", interval_ms = 300 }}

            [sources.gen]
            type = "generate"
            rate = 20000

            [transforms.keep]
            plugin = {plugin}
            inputs = ["gen"]
            config = {{ predicate = "value > 0.5" }}

            [sinks.out]
            type = "blackhole"
            inputs = ["keep"]
            "#,
            plugin = toml_path(&plugin)
        ),
    );
    let port = free_port();
    let child = start(
        &manifest,
        &["--watch", "--ui", &format!("127.0.0.1:{port}")],
    );
    eventually(Duration::from_secs(60), "the live view", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // The browser script creates `swap-now` after its two readings; the
    // plugin is then rebuilt (new bytes, same behaviour) under the run.
    let signal = scratch.path("swap-now");
    let swapper = {
        let (signal, plugin) = (signal.clone(), plugin.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !signal.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            weir_tests::replace(&plugin, &weir_tests::new_version(&filter, "v2"));
        })
    };
    let artifacts = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("live-view.png");
    let url = format!("http://127.0.0.1:{port}/");
    let seen = reference(
        "live_view.py",
        &[url.as_ref(), screenshot.as_os_str(), signal.as_os_str()],
    );
    swapper.join().unwrap();
    interrupt(&child);
    finish(child, Duration::from_secs(60));
    assert!(
        seen.status.success(),
        "the browser script failed:\n{}",
        String::from_utf8_lossy(&seen.stderr)
    );
    let seen: Value = serde_json::from_slice(&seen.stdout).unwrap();
    for node in ["gen", "keep", "out"] {
        let (first, second) = (&seen["first"][node], &seen["second"][node]);
        assert!(
            second.as_u64() > first.as_u64() && first.as_u64() > Some(0),
            "{node}: {first} then {second}"
        );
        let label = seen["labels"][node].as_str().unwrap_or_default();
        assert!(
            label.contains("rows/s"),
            "{node}'s figures in the graph: {label:?}"
        );
    }
    assert_eq!(seen["status"], "live");
    assert!(
        seen["checkpoint"]
            .as_str()
            .unwrap()
            .starts_with("checkpoint #"),
        "{seen}"
    );
    let swaps = seen["swaps"].as_array().unwrap();
    assert_eq!(swaps.len(), 1, "{swaps:?}");
    assert!(swaps[0].as_str().unwrap().contains("keep →"), "{swaps:?}");
    assert!(screenshot.metadata().unwrap().len() > 10_000);
}
