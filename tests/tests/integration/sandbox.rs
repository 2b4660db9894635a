//! Untrusted plugins: each hostile behaviour costs only that plugin's batch,
//! with a report naming the cause. Limits are tested as obeyed/violated
//! pairs; the runtime (this test process) survives every case.

use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::Int64Type;
use weir::exec::RunSummary;
use weir::{Error, FailureKind};
use weir_tests::{plugins, read_ipc, toml_path, Scratch};

/// generate (`rows` in one batch each of `batch`) → hostile(`config`) → ipc,
/// with `extra` keys on the transform.
fn hostile(
    scratch: &Scratch,
    rows: u64,
    batch: u64,
    config: &str,
    extra: &str,
) -> weir::Result<RunSummary> {
    scratch.run(&format!(
        r#"
        [pipeline]
        batch_size = {batch}

        [sources.gen]
        type = "generate"
        rows = {rows}

        [transforms.bad]
        plugin = {}
        inputs = ["gen"]
        config = {config}
        {extra}

        [sinks.out]
        type = "ipc"
        inputs = ["bad"]
        path = "out.arrow"
        "#,
        toml_path(plugins::HOSTILE.as_ref())
    ))
}

/// Runs a hostile mode under default limits and `on_error = "fail"`;
/// returns the failure, asserting it came within 5 s.
fn fails(config: &str, extra: &str) -> (FailureKind, String) {
    let scratch = Scratch::new();
    let started = Instant::now();
    let err = hostile(&scratch, 100, 100, config, extra)
        .expect_err("the hostile plugin must fail the run");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        !scratch.path("out.arrow").exists(),
        "no output after a failed run"
    );
    match err {
        Error::Plugin {
            node,
            kind,
            message,
            ..
        } => {
            assert_eq!(node, "bad");
            (kind, message)
        }
        other => panic!("expected a plugin error, got {other}"),
    }
}

#[test]
fn infinite_loop_is_interrupted_at_the_time_budget() {
    let (kind, message) = fails(r#"{ mode = "loop" }"#, "");
    assert_eq!(kind, FailureKind::Limit);
    assert!(
        message.contains("time budget (limits.timeout_ms = 2000 ms"),
        "{message}"
    );
}

#[test]
fn slow_plugin_within_its_budget_finishes_and_past_it_is_interrupted() {
    let scratch = Scratch::new();
    hostile(
        &scratch,
        100,
        100,
        r#"{ mode = "slow", ms = 50 }"#,
        "limits = { timeout_ms = 1000 }",
    )
    .unwrap();
    assert_eq!(
        read_ipc(&scratch.path("out.arrow")).unwrap().num_rows(),
        100
    );
    let (kind, message) = fails(
        r#"{ mode = "slow", ms = 1500 }"#,
        "limits = { timeout_ms = 300 }",
    );
    assert_eq!(kind, FailureKind::Limit);
    assert!(message.contains("timeout_ms = 300"), "{message}");
}

#[test]
fn memory_growth_is_refused_at_the_cap() {
    let (kind, message) = fails(r#"{ mode = "grow" }"#, "limits = { memory_mb = 64 }");
    assert_eq!(kind, FailureKind::Limit, "{message}");
    assert!(
        message.contains("memory limit (limits.memory_mb = 64)"),
        "{message}"
    );
}

#[test]
fn plugin_within_its_memory_cap_runs() {
    let scratch = Scratch::new();
    hostile(
        &scratch,
        5000,
        1000,
        r#"{ mode = "pass" }"#,
        "limits = { memory_mb = 64 }",
    )
    .unwrap();
    assert_eq!(
        read_ipc(&scratch.path("out.arrow")).unwrap().num_rows(),
        5000
    );
}

#[test]
fn unbounded_recursion_exhausts_the_stack_as_a_trap() {
    let (kind, message) = fails(r#"{ mode = "recurse" }"#, "");
    assert_eq!(kind, FailureKind::Trap);
    assert!(message.contains("stack exhausted"), "{message}");
}

#[test]
fn four_gib_allocation_fails_as_that_plugins_error() {
    let (kind, message) = fails(r#"{ mode = "alloc-4g" }"#, "");
    assert_eq!(kind, FailureKind::Trap);
    assert!(message.contains("capacity overflow"), "{message}");
}

#[test]
fn panic_is_reported_with_its_message() {
    let (kind, message) = fails(r#"{ mode = "panic" }"#, "");
    assert_eq!(kind, FailureKind::Trap);
    assert!(
        message.contains("panicked") && message.contains("on purpose"),
        "{message}"
    );
}

#[test]
fn host_files_are_unreachable_unless_a_directory_is_granted() {
    let (kind, message) = fails(r#"{ mode = "open-file" }"#, "");
    assert_eq!(kind, FailureKind::Error);
    assert!(message.starts_with("open /etc/passwd"), "{message}");
    // Granted read-only, the same plugin reads it (and reports having done so).
    let (_, message) = fails(
        r#"{ mode = "open-file" }"#,
        r#"grants = { dirs = ["/etc"] }"#,
    );
    assert!(message.starts_with("read a host file!"), "{message}");
}

#[test]
fn environment_is_empty_unless_a_variable_is_granted() {
    std::env::set_var("WEIR_TEST_SECRET", "granted");
    let (_, message) = fails(r#"{ mode = "env", var = "WEIR_TEST_SECRET" }"#, "");
    assert!(
        message.contains("not found") || message.contains("NotPresent"),
        "{message}"
    );
    let (_, message) = fails(
        r#"{ mode = "env", var = "WEIR_TEST_SECRET" }"#,
        r#"grants = { env = ["WEIR_TEST_SECRET"] }"#,
    );
    assert!(message.contains("read the host env! granted"), "{message}");
}

#[test]
fn plugin_opening_a_socket_is_denied_at_every_call() {
    let scratch = Scratch::new();
    let pipeline = format!(
        "[sources.gen]\ntype = \"generate\"\nrows = 1\n\n[transforms.net]\nplugin = {}\ninputs = [\"gen\"]\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"net\"]\n",
        toml_path(plugins::NETCLIENT.as_ref())
    );
    // Linked (language runtimes import it), so the check passes...
    scratch.check(&pipeline).expect("wasi:sockets is linked");
    // ...and the connect fails inside the plugin, before any packet.
    let text = scratch.run(&pipeline).expect_err("must fail").to_string();
    assert!(text.contains("connect:"), "{text}");
    assert!(!text.contains("opened a socket"), "{text}");
}

#[test]
fn skip_drops_failing_batches_counts_them_and_keeps_the_rest() {
    let scratch = Scratch::new();
    let summary = hostile(
        &scratch,
        1000,
        100,
        r#"{ mode = "trap-rows", seqs = [150, 420] }"#,
        r#"on_error = "skip""#,
    )
    .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    assert_eq!(out.num_rows(), 800, "batches 1 and 4 are dropped whole");
    let seq = out.column(0).as_primitive::<Int64Type>();
    assert!(!seq.values().contains(&150) && !seq.values().contains(&199));
    assert!(seq.values().windows(2).all(|w| w[0] < w[1]));
    assert_eq!(summary.node("bad").unwrap().failed_batches, 2);
}

#[test]
fn dead_letter_isolates_exactly_the_poison_rows_of_a_batch() {
    let scratch = Scratch::new();
    let summary = scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 8192

            [sources.gen]
            type = "generate"
            rows = 8192

            [transforms.bad]
            plugin = {}
            inputs = ["gen"]
            config = {{ mode = "trap-rows", seqs = [3, 4096, 8191] }}
            on_error = "dead_letter"

            [sinks.out]
            type = "ipc"
            inputs = ["bad"]
            path = "out.arrow"

            [sinks.dlq]
            type = "ipc"
            inputs = ["bad.dead_letter"]
            path = "dead.arrow"
            "#,
            toml_path(plugins::HOSTILE.as_ref())
        ))
        .unwrap();
    let dead = read_ipc(&scratch.path("dead.arrow")).unwrap();
    assert_eq!(
        dead.column(0).as_primitive::<Int64Type>().values(),
        &[3, 4096, 8191]
    );
    let errors = dead
        .column_by_name("_error")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert!(
        errors
            .iter()
            .all(|e| e.is_some_and(|e| e.contains("poison row"))),
        "{errors:?}"
    );
    let nodes = dead
        .column_by_name("_node")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert!(nodes.iter().all(|n| n == Some("bad")));
    assert_eq!(dead.column_by_name("_failed_at").unwrap().null_count(), 0);

    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let seq = out.column(0).as_primitive::<Int64Type>().values().to_vec();
    let expected: Vec<i64> = (0..8192).filter(|s| ![3, 4096, 8191].contains(s)).collect();
    assert_eq!(seq, expected, "every other row, in order");
    assert_eq!(summary.node("bad").unwrap().dead_rows, 3);
}

#[test]
fn a_hostile_branch_leaves_the_other_branch_complete() {
    let scratch = Scratch::new();
    let summary = scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 250

            [sources.gen]
            type = "generate"
            rows = 2000

            [transforms.bad]
            plugin = {hostile}
            inputs = ["gen"]
            config = {{ mode = "panic" }}
            on_error = "skip"

            [transforms.good]
            plugin = {pass}
            inputs = ["gen"]

            [sinks.bad_out]
            type = "ipc"
            inputs = ["bad"]
            path = "bad.arrow"

            [sinks.good_out]
            type = "ipc"
            inputs = ["good"]
            path = "good.arrow"
            "#,
            hostile = toml_path(plugins::HOSTILE.as_ref()),
            pass = toml_path(plugins::PASSTHROUGH.as_ref()),
        ))
        .unwrap();
    let good = read_ipc(&scratch.path("good.arrow")).unwrap();
    let seq = good.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(seq, (0..2000).collect::<Vec<i64>>());
    assert_eq!(summary.node("bad").unwrap().failed_batches, 8);
    assert_eq!(summary.node("bad").unwrap().rows_out, 0);
}

#[test]
fn repeated_failures_past_the_threshold_stop_the_node() {
    let scratch = Scratch::new();
    let err = hostile(
        &scratch,
        1000,
        100,
        r#"{ mode = "panic" }"#,
        "on_error = \"skip\"\nmax_failures = 2",
    )
    .expect_err("the node must stop");
    let text = err.to_string();
    assert!(
        text.contains("stopped after 3 consecutive failed batches (max_failures = 2)"),
        "{text}"
    );
    assert!(!scratch.path("out.arrow").exists());
}

#[test]
fn dead_letter_needs_a_sink_reading_it() {
    let scratch = Scratch::new();
    let err = hostile(
        &scratch,
        10,
        10,
        r#"{ mode = "pass" }"#,
        r#"on_error = "dead_letter""#,
    )
    .expect_err("must be rejected");
    let text = err.to_string();
    assert!(text.contains("no sink reads \"bad.dead_letter\""), "{text}");
    assert!(text.contains("pipeline.toml:"), "{text}");
}

#[test]
fn every_hostile_behaviour_under_skip_costs_only_its_own_batch() {
    let modes = [
        r#"{ mode = "loop" }"#,
        r#"{ mode = "grow" }"#,
        r#"{ mode = "recurse" }"#,
        r#"{ mode = "alloc-4g" }"#,
        r#"{ mode = "panic" }"#,
        r#"{ mode = "open-file" }"#,
        r#"{ mode = "env" }"#,
        r#"{ mode = "slow", ms = 3000 }"#,
    ];
    for config in modes {
        let scratch = Scratch::new();
        let started = Instant::now();
        let summary = scratch
            .run(&format!(
                r#"
                [pipeline]
                batch_size = 100

                [sources.gen]
                type = "generate"
                rows = 100

                [transforms.bad]
                plugin = {}
                inputs = ["gen"]
                config = {config}
                on_error = "skip"
                limits = {{ memory_mb = 128 }}

                [sinks.bad_out]
                type = "ipc"
                inputs = ["bad"]
                path = "bad.arrow"

                [sinks.direct]
                type = "ipc"
                inputs = ["gen"]
                path = "direct.arrow"
                "#,
                toml_path(plugins::HOSTILE.as_ref())
            ))
            .unwrap_or_else(|e| panic!("{config}: the run must survive: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{config}: took {:?}",
            started.elapsed()
        );
        assert_eq!(summary.node("bad").unwrap().failed_batches, 1, "{config}");
        assert_eq!(summary.node("bad").unwrap().rows_out, 0, "{config}");
        assert_eq!(
            read_ipc(&scratch.path("direct.arrow")).unwrap().num_rows(),
            100,
            "{config}"
        );
    }
}

/// `init`, `describe`, `process` and `finish`, each struck by an error, a
/// panic, an endless loop and unbounded memory growth: the run fails
/// within the time budget, writes nothing, and the error names the node
/// and the phase. Before the run (`describe`, `init`) that is an error at
/// the node's `config` line in the manifest; during it, a plugin failure
/// of the right kind, on the batch or in `finish`.
#[test]
fn a_plugin_misbehaving_in_any_phase_fails_naming_node_and_phase() {
    for phase in ["init", "describe", "process", "finish"] {
        for mode in ["error", "panic", "loop", "grow"] {
            let scratch = Scratch::new();
            let started = Instant::now();
            let err = hostile(
                &scratch,
                100,
                100,
                &format!(r#"{{ mode = "{mode}", phase = "{phase}" }}"#),
                "limits = { timeout_ms = 300, memory_mb = 64 }",
            )
            .expect_err("the hostile plugin must fail the run");
            let text = err.to_string();
            let case = format!("{mode} in {phase}: {text}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{case}: took {:?}",
                started.elapsed()
            );
            assert!(
                !scratch.path("out.arrow").exists(),
                "{case}: no output after a failed run"
            );
            let cause = match mode {
                "error" => "failed on purpose",
                "panic" => "panicked on purpose",
                "loop" => "exceeded its time budget",
                _ => "exceeded its memory limit",
            };
            assert!(text.contains(cause), "{case}");
            match phase {
                "init" | "describe" => {
                    assert!(text.contains("pipeline.toml:"), "{case}");
                    assert!(text.contains("bad"), "{case}");
                    assert!(text.contains(phase), "{case}");
                }
                _ => {
                    let Error::Plugin { node, kind, .. } = err else {
                        panic!("{case}: expected a plugin error");
                    };
                    assert_eq!(node, "bad", "{case}");
                    let expected_kind = match mode {
                        "error" => FailureKind::Error,
                        "panic" => FailureKind::Trap,
                        _ => FailureKind::Limit,
                    };
                    assert_eq!(kind, expected_kind, "{case}");
                    let at = match phase {
                        "process" => "on batch 0".to_string(),
                        _ => format!("in {phase}"),
                    };
                    assert!(
                        text.contains(&format!("node \"bad\": plugin failed {at}:")),
                        "{case}"
                    );
                }
            }
        }
    }
}

/// Under `on_error = "skip"` a failing `process` or `finish` costs only
/// what that call would have returned; `init` and `describe` can't be
/// skipped (the node can't run at all) and still fail the run, by name.
#[test]
fn under_skip_a_failing_finish_costs_its_output_and_a_failing_init_still_fails() {
    for mode in ["error", "panic", "loop"] {
        let scratch = Scratch::new();
        let summary = hostile(
            &scratch,
            100,
            50,
            &format!(r#"{{ mode = "{mode}", phase = "finish" }}"#),
            "on_error = \"skip\"\nlimits = { timeout_ms = 300 }",
        )
        .unwrap_or_else(|e| panic!("{mode} in finish under skip: {e}"));
        let node = summary.node("bad").unwrap();
        assert_eq!((node.rows_out, node.failed_batches), (100, 1), "{mode}");
        assert_eq!(
            read_ipc(&scratch.path("out.arrow")).unwrap().num_rows(),
            100
        );

        for phase in ["init", "describe"] {
            let scratch = Scratch::new();
            let err = hostile(
                &scratch,
                100,
                50,
                &format!(r#"{{ mode = "{mode}", phase = "{phase}" }}"#),
                "on_error = \"skip\"\nlimits = { timeout_ms = 300 }",
            )
            .expect_err("a node that can't start fails the run")
            .to_string();
            assert!(
                err.contains("pipeline.toml:") && err.contains("bad"),
                "{mode}: {err}"
            );
            assert!(err.contains(phase), "{mode} in {phase}: {err}");
        }
    }
}

/// `weir run` of generate (100 rows) → hostile(`config`) → blackhole, with
/// plugin logs shown (`RUST_LOG=info`); returns its exit code and stderr.
fn run_hostile_process(config: &str, extra: &str) -> (Option<i32>, String) {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [sources.gen]
            type = "generate"
            rows = 100

            [transforms.bad]
            plugin = {}
            inputs = ["gen"]
            config = {config}
            {extra}

            [sinks.out]
            type = "blackhole"
            inputs = ["bad"]
            "#,
            toml_path(plugins::HOSTILE.as_ref())
        ),
    );
    let out = crate::process::weir()
        .env("RUST_LOG", "info")
        .args(["run", "--progress", "0"])
        .arg(manifest)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A million 1 KiB log lines from one `process` call (1 GiB of text) reach
/// stderr as a burst and a count; the run itself succeeds.
#[test]
fn a_plugin_logging_a_million_lines_leaves_a_burst_and_a_count_on_stderr() {
    let started = Instant::now();
    let (code, stderr) = run_hostile_process(
        r#"{ mode = "log-flood" }"#,
        "limits = { timeout_ms = 120000 }",
    );
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(code, Some(0), "{}", &stderr[..stderr.len().min(4000)]);
    // The burst of 200, then 100 a second for as long as the flood lasted.
    let shown = stderr.matches("flood ").count();
    let allowed = 200 + (100.0 * secs).ceil() as usize;
    assert!(
        (200..=allowed).contains(&shown),
        "{shown} lines shown in {secs:.1} s (at most {allowed})"
    );
    assert!(
        stderr.contains("log lines suppressed"),
        "{}",
        &stderr[stderr.len().saturating_sub(4000)..]
    );
    assert!(
        stderr.len() < (allowed + 100) * 1200,
        "stderr is {} bytes for {shown} lines shown",
        stderr.len()
    );
}

/// A 64 MiB error string is cut to a few KiB in the run's error, saying how
/// much was left out.
#[test]
fn a_plugins_64_mib_error_is_cut_to_a_few_kib_saying_how_much_is_left_out() {
    let (code, stderr) = run_hostile_process(r#"{ mode = "huge-error" }"#, "");
    assert_eq!(code, Some(1), "{}", &stderr[..stderr.len().min(4000)]);
    assert!(
        stderr.contains("hostile plugin's huge error: yyy") && stderr.contains("more bytes)"),
        "{}",
        &stderr[..stderr.len().min(4000)]
    );
    assert!(stderr.len() < 64 << 10, "stderr is {} bytes", stderr.len());
}
