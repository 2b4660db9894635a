//! Every batch a plugin returns is untrusted: a malformed one is that
//! plugin's error, crashes nothing, and leaves no output file behind.

use weir::Error;
use weir_tests::{plugins, toml_path, Scratch};

fn run_mode(mode: &str) -> (Scratch, Error) {
    let scratch = Scratch::new();
    let err = scratch
        .run(&format!(
            r#"
            [sources.gen]
            type = "generate"
            rows = 100

            [transforms.bad]
            plugin = {}
            inputs = ["gen"]
            config = {{ mode = "{mode}" }}

            [sinks.out]
            type = "parquet"
            inputs = ["bad"]
            path = "out/out.parquet"
            "#,
            toml_path(plugins::RAW.as_ref())
        ))
        .err()
        .unwrap_or_else(|| panic!("mode {mode} must fail the run"));
    (scratch, err)
}

fn assert_reported(mode: &str, cause: &str) {
    let (scratch, err) = run_mode(mode);
    let text = err.to_string();
    assert!(
        matches!(&err, Error::Plugin { node, batch, .. } if node == "bad" && batch == "0"),
        "{mode}: {text}"
    );
    assert!(text.contains("malformed"), "{mode}: {text}");
    assert!(text.contains(cause), "{mode}: expected {cause:?} in {text}");
    // The sink aborted: no file, not even a temporary one.
    let out = scratch.path("out");
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{mode}: left {left:?}");
}

#[test]
fn column_shorter_than_the_batch_is_rejected() {
    assert_reported("short-column", "99 values, the batch has 100 rows");
}

#[test]
fn decreasing_string_offsets_are_rejected() {
    assert_reported("bad-offsets", "never decrease");
}

#[test]
fn string_offsets_past_the_data_are_rejected() {
    assert_reported("offsets-past-end", "exceeds length of values");
}

#[test]
fn invalid_utf8_is_rejected() {
    assert_reported("bad-utf8", "UTF-8");
}

#[test]
fn selection_index_out_of_range_is_rejected() {
    assert_reported("bad-selection", "out of range");
}

#[test]
fn unsorted_selection_is_rejected() {
    assert_reported("unsorted-selection", "strictly increase");
}

#[test]
fn values_of_the_wrong_type_are_rejected() {
    assert_reported("wrong-type", "declared type Int64");
}

#[test]
fn validity_bitmap_too_short_is_rejected() {
    assert_reported("short-validity", "validity bitmap");
}

#[test]
fn a_batch_with_rows_but_no_columns_is_the_plugins_failure() {
    assert_reported("no-columns", "100 rows but no columns");
}

#[test]
fn a_timestamp_in_a_zone_that_does_not_exist_is_the_plugins_failure() {
    assert_reported("bad-zone", "\"Mars/Olympus\", which is not a time zone");
}

/// generate (30 rows in batches of 10) → raw(`mode`) as node `node` under
/// `on_error = policy` → IPC `out.arrow`.
fn raw_in_batches(
    scratch: &Scratch,
    node: &str,
    mode: &str,
    policy: &str,
) -> weir::Result<weir::exec::RunSummary> {
    scratch.run(&format!(
        r#"
        [pipeline]
        batch_size = 10

        [sources.gen]
        type = "generate"
        rows = 30

        [transforms.{node}]
        plugin = {}
        inputs = ["gen"]
        config = {{ mode = "{mode}" }}
        on_error = "{policy}"

        [sinks.out]
        type = "ipc"
        inputs = ["{node}"]
        path = "out.arrow"
        "#,
        toml_path(plugins::RAW.as_ref())
    ))
}

/// Under `on_error = "skip"` every malformed shape is that plugin's failed
/// batch, counted, and the run goes on: 3 batches of 10 rows, each one
/// malformed, end with 3 failed batches and no rows at the sink.
#[test]
fn under_skip_every_malformed_shape_costs_only_its_batch() {
    for mode in [
        "short-column",
        "bad-offsets",
        "offsets-past-end",
        "bad-utf8",
        "bad-selection",
        "unsorted-selection",
        "wrong-type",
        "short-validity",
        "no-columns",
        "bad-zone",
    ] {
        let summary = raw_in_batches(&Scratch::new(), "bad", mode, "skip")
            .unwrap_or_else(|e| panic!("{mode} under skip: {e}"));
        let node = summary.node("bad").unwrap();
        assert_eq!((node.failed_batches, node.rows_out), (3, 0), "{mode}");
    }
}

#[test]
fn a_column_type_that_changes_between_batches_is_the_plugins_failure_and_its_policy_applies() {
    let run = |policy: &str| {
        let scratch = Scratch::new();
        let result = raw_in_batches(&scratch, "flip", "type-flip", policy);
        (scratch, result)
    };
    let (_, failed) = run("fail");
    let err = failed
        .expect_err("the second batch changes a type")
        .to_string();
    assert!(
        err.contains("node \"flip\"") && err.contains("batch 1") && err.contains("then it changed"),
        "blamed on the plugin, not the sink: {err}"
    );
    // Under `skip` the plugin's policy applies: the batches that kept the
    // first batch's schema reach the sink.
    let (scratch, skipped) = run("skip");
    let summary = skipped.expect("skip keeps the run going");
    assert_eq!(summary.node("flip").unwrap().failed_batches, 2);
    assert_eq!(
        weir_tests::read_ipc(&scratch.path("out.arrow"))
            .unwrap()
            .num_rows(),
        10
    );
}

#[test]
fn malformed_ipc_files_fail_or_are_skipped_by_policy_never_panic() {
    let corpus = weir_tests::repo().join("tests/corpus/ipc");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        for policy in ["fail", "skip", "dead_letter"] {
            let scratch = Scratch::new();
            let dead_letter = if policy == "dead_letter" {
                "[sinks.dead]\ntype = \"ipc\"\ninputs = [\"in.dead_letter\"]\npath = \"dead.arrow\"\n"
            } else {
                ""
            };
            let result = scratch.run(&format!(
                "[sources.in]\ntype = \"ipc\"\npath = {}\non_bad_record = \"{policy}\"\n\n\
                 [sinks.out]\ntype = \"ipc\"\ninputs = [\"in\"]\npath = \"out.arrow\"\n\n{dead_letter}",
                toml_path(file)
            ));
            let name = file.file_name().unwrap().to_string_lossy();
            match policy {
                "fail" => {
                    let err = result
                        .expect_err("a malformed file fails the run")
                        .to_string();
                    assert!(
                        err.contains("source \"in\"")
                            && err.contains(name.as_ref())
                            && err.contains("malformed data"),
                        "{name}: {err}"
                    );
                }
                _ => {
                    let summary = result.unwrap_or_else(|e| panic!("{name} under {policy}: {e}"));
                    assert_eq!(
                        summary.node("in").unwrap().dead_rows,
                        1,
                        "{name}: the file is one bad record"
                    );
                }
            }
        }
    }
}
