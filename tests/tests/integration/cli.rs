//! The `weir` command line, run as a user would.

use std::io::Write;
use std::process::Stdio;

use weir_tests::{plugins, repo, toml_path, Scratch};

use crate::process::weir;

/// `weir plugin build DIR --out OUT [extra]` into the shared guest target
/// dir (the SDK's dependencies build once), asserting it succeeds.
fn plugin_build(dir: &std::path::Path, out: &std::path::Path, extra: &[&str]) {
    let build = weir()
        .args(["plugin", "build"])
        .arg(dir)
        .args(extra)
        .arg("--out")
        .arg(out)
        .arg("--target-dir")
        .arg(repo().join("target/guest"))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{} {extra:?}: {}",
        dir.display(),
        String::from_utf8_lossy(&build.stderr)
    );
}

/// `weir run --quiet MANIFEST`, asserting it succeeds (`what` labels the
/// failure).
fn run_ok(manifest: &std::path::Path, what: &str) -> std::process::Output {
    let run = weir()
        .args(["run", "--quiet"])
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    run
}

/// `weir run --quiet MANIFEST` with `input` on stdin; asserts success and
/// returns stdout.
fn run_with_stdin(manifest: &std::path::Path, input: &[u8]) -> String {
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(manifest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn run_reads_csv_from_stdin_and_prints_ndjson_to_stdout() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [sources.in]
            type = "stdin"
            format = "csv"

            [transforms.valid]
            plugin = {}
            inputs = ["in"]
            config = {{ predicate = "amount > 1" }}

            [sinks.out]
            type = "stdout"
            format = "ndjson"
            inputs = ["valid"]
            "#,
            toml_path(plugins::FILTER.as_ref())
        ),
    );
    let stdout = run_with_stdin(&manifest, b"id,amount\n1,0.5\n2,1.5\n3,2.5\n");
    assert_eq!(
        stdout,
        "{\"id\":2,\"amount\":1.5}\n{\"id\":3,\"amount\":2.5}\n"
    );
}

#[test]
fn run_prints_a_summary_with_rows_per_node() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        "[sources.gen]\ntype = \"generate\"\nrows = 1234\n\n[sinks.out]\ntype = \"ndjson\"\ninputs = [\"gen\"]\npath = \"out.ndjson\"\n",
    );
    let out = weir().arg("run").arg(&manifest).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("gen") && stdout.contains("1234"),
        "{stdout}"
    );
    assert!(stdout.contains("rows/s"), "{stdout}");
    let written = std::fs::read_to_string(scratch.path("out.ndjson")).unwrap();
    assert_eq!(written.lines().count(), 1234);
}

#[test]
fn failing_run_exits_nonzero_with_the_error_on_stderr() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        "[sources.in]\ntype = \"csv\"\npath = \"nothing-*.csv\"\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"in\"]\n",
    );
    let out = weir().arg("run").arg(&manifest).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no file matches"), "{stderr}");
}

#[test]
fn check_reports_each_node_schema_without_writing_output() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "Order ID,Amount\n1,2.5\n");
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.names]\nplugin = {}\ninputs = [\"in\"]\n\n[sinks.out]\ntype = \"parquet\"\ninputs = [\"names\"]\npath = \"out/o.parquet\"\n",
            toml_path(plugins::RENAME.as_ref())
        ),
    );
    let out = weir().arg("check").arg(&manifest).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("order_id: Int64, amount: Float64"),
        "{stdout}"
    );
    assert!(
        !scratch.path("out").exists(),
        "check must not create output"
    );
}

#[test]
fn plugin_inspect_lists_exports_and_gives_a_verdict() {
    let out = weir()
        .args(["plugin", "inspect", plugins::DEDUPE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("weir:plugin/transform@0.2.0"), "{stdout}");
    assert!(stdout.contains("func process"), "{stdout}");
    assert!(
        stdout.contains("runs on weir (implements weir:plugin@0.2.0"),
        "{stdout}"
    );
}

/// A plugin on the first contract (C, JavaScript and Python helpers, and
/// every plugin built before 0.2) is still served, and says so.
#[test]
fn plugin_inspect_names_the_contract_a_0_1_plugin_is_served_as() {
    let out = weir()
        .args(["plugin", "inspect", plugins::RAW])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("runs on weir (implements weir:plugin@0.1.0"),
        "{stdout}"
    );
}

#[test]
fn plugin_new_scaffolds_a_crate_that_builds_and_runs_as_is() {
    let scratch = Scratch::new();
    let new = weir()
        .args(["plugin", "new", "my-plugin", "--dir"])
        .arg(scratch.path(""))
        .output()
        .unwrap();
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    plugin_build(&scratch.path("my-plugin"), &scratch.path("built"), &[]);
    let component = scratch.path("built/my-plugin.wasm");
    assert!(component.exists());

    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            "[sources.gen]\ntype = \"generate\"\nrows = 1000\n\n[transforms.mine]\nplugin = {}\ninputs = [\"gen\"]\nconfig = {{ column = \"value\", min = 50.0 }}\n\n[sinks.out]\ntype = \"csv\"\ninputs = [\"mine\"]\npath = \"out.csv\"\n",
            toml_path(&component)
        ),
    );
    run_ok(&manifest, "scaffold");
    let csv = std::fs::read_to_string(scratch.path("out.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("seq,ts,key,value,value_doubled"));
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty() && rows.len() < 500, "{} rows", rows.len());
    for row in rows {
        let cols: Vec<f64> = row.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
        assert!(cols[0] > 50.0 && cols[1] == cols[0] * 2.0, "{row}");
    }
}

#[test]
fn plugin_build_componentizes_wasip1_and_unknown_unknown_core_modules() {
    for target in ["wasm32-wasip1", "wasm32-unknown-unknown"] {
        let scratch = Scratch::new();
        // The raw-bindings plugin: no Arrow to compile for two more targets.
        plugin_build(
            &repo().join("tests/plugins/raw"),
            &scratch.path("built"),
            &["--target", target],
        );
        let component = std::fs::read(scratch.path("built/raw.wasm")).unwrap();
        assert!(
            wasmparser::Parser::is_component(&component),
            "{target}: not a component"
        );

        let manifest = scratch.write(
            "pipeline.toml",
            format!(
                "[sources.gen]\ntype = \"generate\"\nrows = 300\n\n[transforms.t]\nplugin = {}\ninputs = [\"gen\"]\nconfig = {{ mode = \"tag\", tag = \"{target}\" }}\n\n[sinks.out]\ntype = \"csv\"\ninputs = [\"t\"]\npath = \"out.csv\"\n",
                toml_path(&scratch.path("built/raw.wasm"))
            ),
        );
        run_ok(&manifest, target);
        let csv = std::fs::read_to_string(scratch.path("out.csv")).unwrap();
        assert_eq!(csv.lines().count(), 301, "{target}");
        assert!(csv.lines().nth(1).unwrap().ends_with(target), "{target}");
    }
}

#[test]
fn stdin_ndjson_prints_as_a_table_on_stdout() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        "[sources.in]\ntype = \"stdin\"\nformat = \"ndjson\"\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"in\"]\nmax_rows = 2\n",
    );
    let stdout = run_with_stdin(
        &manifest,
        b"{\"city\":\"Oslo\",\"n\":1}\n{\"city\":\"Lima\",\"n\":2}\n{\"city\":\"Pune\",\"n\":3}\n",
    );
    assert!(stdout.contains("| city | n |"), "{stdout}");
    assert!(
        stdout.contains("| Oslo | 1 |") && stdout.contains("| Lima | 2 |"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Pune") && stdout.contains("1 more rows"),
        "{stdout}"
    );
}

#[test]
fn plugin_output_reaches_the_log_only_when_stdio_is_granted() {
    for granted in [false, true] {
        let scratch = Scratch::new();
        let manifest = scratch.write(
            "pipeline.toml",
            format!(
                "[sources.gen]\ntype = \"generate\"\nrows = 3\n\n[transforms.chatty]\nplugin = {}\ninputs = [\"gen\"]\nconfig = {{ mode = \"print\" }}\ngrants = {{ stdio = {granted} }}\n\n[sinks.out]\ntype = \"ndjson\"\ninputs = [\"chatty\"]\npath = \"out.ndjson\"\n",
                toml_path(plugins::HOSTILE.as_ref())
            ),
        );
        let out = weir()
            .args(["run", "--quiet"])
            .arg(&manifest)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = String::from_utf8(out.stderr).unwrap();
        assert_eq!(log.contains("hello on stdout, 3 rows"), granted, "{log}");
        assert_eq!(log.contains("hello on stderr"), granted, "{log}");
        assert!(
            String::from_utf8(out.stdout).unwrap().is_empty(),
            "plugin output never reaches weir's stdout"
        );
    }
}

#[test]
fn recursion_within_max_stack_kb_runs_and_beyond_it_traps() {
    let run = |stack_kb: usize| {
        let scratch = Scratch::new();
        let manifest = scratch.write(
            "pipeline.toml",
            format!(
                "[pipeline]\nmax_stack_kb = {stack_kb}\n\n[sources.gen]\ntype = \"generate\"\nrows = 10\n\n[transforms.deep]\nplugin = {}\ninputs = [\"gen\"]\nconfig = {{ mode = \"deep\", depth = 2000 }}\n\n[sinks.out]\ntype = \"ndjson\"\ninputs = [\"deep\"]\npath = \"out.ndjson\"\n",
                toml_path(plugins::HOSTILE.as_ref())
            ),
        );
        weir()
            .args(["run", "--quiet"])
            .arg(&manifest)
            .output()
            .unwrap()
    };
    let roomy = run(1024);
    assert!(
        roomy.status.success(),
        "{}",
        String::from_utf8_lossy(&roomy.stderr)
    );
    let tight = run(64);
    assert!(!tight.status.success());
    let stderr = String::from_utf8_lossy(&tight.stderr);
    assert!(stderr.contains("stack exhausted"), "{stderr}");
}

#[test]
fn exit_status_is_2_for_a_pipeline_that_cannot_run_as_written_and_1_for_a_failed_run() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "id,amount\n1,2.5\nx,1\n");
    let run = |manifest: &str| {
        let path = scratch.write("pipeline.toml", manifest);
        weir().arg("run").arg(path).output().unwrap().status.code()
    };
    let sink = "\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"in\"]\n";
    assert_eq!(
        run(&format!(
            "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\ndelimitr = \";\"\n{sink}"
        )),
        Some(2),
        "manifest error"
    );
    assert_eq!(
        run(&format!("[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\nschema = [{{ name = \"id\", type = \"int64\" }}]\n{sink}")),
        Some(1),
        "a bad record fails the run"
    );
    assert_eq!(
        run(&format!(
            "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n{sink}"
        )),
        Some(0)
    );
    let usage = weir().args(["run"]).output().unwrap().status.code();
    assert_eq!(usage, Some(2), "usage error");
}

#[test]
fn log_format_json_writes_one_json_object_per_log_line_and_colour_is_for_terminals_unless_asked() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "id\n1\n");
    let manifest = scratch.write(
        "pipeline.toml",
        "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[sinks.out]\ntype = \"csv\"\ninputs = [\"in\"]\npath = \"out.csv\"\n",
    );
    let out = weir()
        .env("RUST_LOG", "info")
        .args(["--log-format", "json", "run", "--quiet"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(!lines.is_empty(), "info lines are logged");
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["fields"]["message"].is_string()));

    let colour = |flag: &[&str]| {
        let out = weir()
            .env("RUST_LOG", "info")
            .args(["run", "--quiet"])
            .args(flag)
            .arg(&manifest)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).contains('\u{1b}')
    };
    assert!(!colour(&[]), "auto: a pipe gets no ANSI escapes");
    assert!(colour(&["--color", "always"]));
}
