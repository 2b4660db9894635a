//! Plugins built against weir:plugin@0.2.0: every Arrow type pyarrow
//! writes crosses the boundary both ways unchanged, the host's state store
//! survives a checkpoint and resume, and 0.1 plugins keep running beside
//! them — refusing, by name, the columns 0.1 can't carry.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use weir_tests::{plugins, read_ipc, read_parquet, repo, toml_path, write_ipc, Scratch};

use crate::process::{interrupt, weir};

/// pyarrow's every-type files (IPC, and Parquet under every codec),
/// written once per test process.
pub(crate) fn every_type() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("weir-v0_2-types-{}", std::process::id()));
        let status = std::process::Command::new(repo().join(".venv/bin/python"))
            .arg(repo().join("tests/reference/every_type.py"))
            .arg(&out)
            .status()
            .expect("running every_type.py (scripts/setup --test makes .venv)");
        assert!(status.success(), "every_type.py failed");
        out
    })
}

/// The files ending in `suffix`, sorted.
pub(crate) fn files(suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(every_type())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    assert!(files.len() > 30, "{} files ending in {suffix}", files.len());
    files
}

/// A node name for a file: letters, digits and `_`.
pub(crate) fn node(file: &Path) -> String {
    file.file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// One run with a pipeline per file: source → (`plugin` in `mode`, or
/// nothing) → IPC sink `out/NODE.arrow`. A `mode` in braces is the whole
/// config table instead.
pub(crate) fn run_each(scratch: &Scratch, files: &[PathBuf], plugin: Option<(&Path, &str)>) {
    let mut manifest = String::new();
    for file in files {
        let name = node(file);
        let kind = if file.extension().is_some_and(|e| e == "arrow") {
            "ipc"
        } else {
            "parquet"
        };
        manifest.push_str(&format!(
            "[sources.s_{name}]\ntype = \"{kind}\"\npath = {}\n\n",
            toml_path(file)
        ));
        let upstream = match plugin {
            Some((plugin, mode)) => {
                let config = match mode.starts_with('{') {
                    true => mode.to_string(),
                    false => format!("{{ mode = \"{mode}\" }}"),
                };
                manifest.push_str(&format!(
                    "[transforms.t_{name}]\nplugin = {}\ninputs = [\"s_{name}\"]\n\
                     config = {config}\n\n",
                    toml_path(plugin)
                ));
                format!("t_{name}")
            }
            None => format!("s_{name}"),
        };
        manifest.push_str(&format!(
            "[sinks.o_{name}]\ntype = \"ipc\"\ninputs = [\"{upstream}\"]\npath = \"out/{name}.arrow\"\n\n"
        ));
    }
    scratch
        .run(&manifest)
        .unwrap_or_else(|e| panic!("{plugin:?}: {e}"));
}

/// Every non-empty batch of an IPC file.
pub(crate) fn batches(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    arrow::ipc::reader::FileReader::try_new(file, None)
        .unwrap()
        .map(|b| b.unwrap())
        .filter(|b| b.num_rows() > 0)
        .collect()
}

/// Each file through each mode equals the same file without a plugin:
/// schema (types, nullability, metadata) and every value.
fn crosses_unchanged(suffix: &str) {
    let files = files(suffix);
    let direct = Scratch::new();
    run_each(&direct, &files, None);
    for mode in ["copy", "pass", "stage"] {
        let through = Scratch::new();
        run_each(
            &through,
            &files,
            Some((plugins::CONTRACT_V2.as_ref(), mode)),
        );
        for file in &files {
            let name = format!("out/{}.arrow", node(file));
            let (want, got) = (batches(&direct.path(&name)), batches(&through.path(&name)));
            assert!(!want.is_empty(), "{name}: no rows at all");
            assert_eq!(got, want, "{mode}: {name}");
        }
    }
}

#[test]
fn every_type_in_pyarrows_ipc_files_crosses_a_0_2_plugin_both_ways_unchanged() {
    crosses_unchanged(".arrow");
}

#[test]
fn every_type_in_pyarrows_parquet_files_crosses_a_0_2_plugin_both_ways_unchanged() {
    crosses_unchanged(".zstd.parquet");
}

/// Every pyarrow IPC file grown to 10,000 rows or more, through the Rust
/// SDK's passthrough returning every column it fetched: each column with
/// buffers now holds more than the 1 KiB from which the SDK stages it
/// (`stage.column`, the host copying its buffers out of the plugin's
/// memory) rather than copying it into the returned lists. Equal to the
/// file without a plugin.
#[test]
fn every_type_crosses_an_sdk_plugin_in_staged_columns_unchanged() {
    let grown = Scratch::new();
    let files: Vec<PathBuf> = files(".arrow")
        .iter()
        .map(|file| {
            let batch = read_ipc(file).unwrap();
            let copies = 10_000usize.div_ceil(batch.num_rows().max(1));
            let many = vec![batch.clone(); copies];
            let batch = arrow::compute::concat_batches(&batch.schema(), &many).unwrap();
            let path = grown.path(&format!("{}.arrow", node(file)));
            write_ipc(&path, &batch);
            path
        })
        .collect();
    let direct = Scratch::new();
    run_each(&direct, &files, None);
    let through = Scratch::new();
    let plugin = plugins::PASSTHROUGH.as_ref();
    run_each(&through, &files, Some((plugin, "{ copy = true }")));
    for file in &files {
        let name = format!("out/{}.arrow", node(file));
        let (want, got) = (batches(&direct.path(&name)), batches(&through.path(&name)));
        assert!(want.iter().map(RecordBatch::num_rows).sum::<usize>() >= 10_000);
        assert_eq!(got, want, "{name}");
    }
}

/// A 0.2 plugin returning a column that names a staged number the call
/// never staged fails as a malformed batch naming node, column and number;
/// one staging past four times the node's memory limit fails with the
/// host's refusal.
#[test]
fn a_column_naming_a_number_never_staged_or_staged_past_the_limit_fails_the_batch() {
    let text = refused("stage-unknown", &every_type().join("utf8.arrow"), "");
    assert!(
        text.contains("names staged column 7, but the call staged 1"),
        "{text}"
    );
    // A 2 MiB column staged again and again: refused at 64 MiB, 4 × 16.
    let scratch = Scratch::new();
    let big = scratch.path("big.arrow");
    let values =
        arrow::array::StringArray::from_iter_values((0..100_000).map(|i| format!("{i:020}")));
    write_ipc(
        &big,
        &weir_tests::batch(vec![("v", weir_tests::arc(values))]),
    );
    let text = refused("stage-flood", &big, "limits = { memory_mb = 16 }");
    assert!(
        text.contains("passes the 67108864 bytes one call may stage"),
        "{text}"
    );
}

/// A 0.1 plugin (`raw`, on the 0.1 bindings) fed a decimal column: the
/// run doesn't start, and the message names the column and says to rebuild.
#[test]
fn a_0_1_plugin_fed_a_column_0_1_cant_carry_is_told_to_rebuild_against_0_2() {
    let scratch = Scratch::new();
    let decimal = every_type().join("decimal128.arrow");
    let err = scratch
        .check(&format!(
            r#"
            [sources.s]
            type = "ipc"
            path = {}

            [transforms.old]
            plugin = {}
            inputs = ["s"]
            config = {{ mode = "ipc-echo" }}

            [sinks.o]
            type = "blackhole"
            inputs = ["old"]
            "#,
            toml_path(&decimal),
            toml_path(plugins::RAW.as_ref())
        ))
        .err()
        .expect("a 0.1 plugin can't take a decimal column");
    let text = err.to_string();
    assert!(
        text.contains("\"v\"") && text.contains("rebuild it against weir:plugin@0.2.0"),
        "{text}"
    );
}

#[test]
fn a_0_2_plugin_with_two_output_ports_feeds_the_readers_of_each() {
    let scratch = Scratch::new();
    let summary = scratch
        .run(&format!(
            r#"
            [sources.gen]
            type = "generate"
            rows = 10

            [transforms.split]
            plugin = {}
            inputs = ["gen"]
            config = {{ mode = "two-outputs" }}

            [sinks.first]
            type = "ipc"
            inputs = ["split"]
            path = "a.arrow"

            [sinks.named]
            type = "ipc"
            inputs = ["split.a"]
            path = "a2.arrow"

            [sinks.second]
            type = "ipc"
            inputs = ["split.b"]
            path = "b.arrow"
            "#,
            toml_path(plugins::CONTRACT_V2.as_ref())
        ))
        .unwrap();
    // `split` is its first port, `a`; `split.b` the second.
    for file in ["a.arrow", "a2.arrow", "b.arrow"] {
        let got = read_ipc(&scratch.path(file)).unwrap();
        assert_eq!(got.num_rows(), 10, "{file}");
    }
    let split = summary.nodes.iter().find(|n| n.name == "split").unwrap();
    assert_eq!(split.rows_out, 20, "10 rows through each port");
}

/// The `count` mode keeps its running total only in the host's state
/// store. Stopped after a checkpoint and resumed, the total carries on from
/// the checkpoint: the largest total written equals the rows written.
#[test]
fn a_0_2_plugins_state_store_is_checkpointed_and_restored_on_resume() {
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 100
            checkpoint = {{ dir = "checkpoints", interval_ms = 50 }}

            [sources.gen]
            type = "generate"
            rate = 5000.0

            [transforms.count]
            plugin = {}
            inputs = ["gen"]
            config = {{ mode = "count" }}

            [sinks.out]
            type = "parquet"
            inputs = ["count"]
            path = "out/rows.parquet"
            "#,
            toml_path(plugins::CONTRACT_V2.as_ref())
        ),
    );
    for _ in 0..2 {
        let child = weir()
            .args(["run", "--progress", "0"])
            .arg(&manifest)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(800) {
            std::thread::sleep(Duration::from_millis(20));
        }
        interrupt(&child);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut rows = 0;
    let mut largest = 0;
    for part in std::fs::read_dir(scratch.path("out")).unwrap() {
        let path = part.unwrap().path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let batch = read_parquet(&path).unwrap();
        rows += batch.num_rows() as i64;
        let totals = batch.column_by_name("total").unwrap();
        let max = totals.as_primitive::<Int64Type>().values().iter().max();
        largest = largest.max(max.copied().unwrap_or(0));
    }
    assert!(rows > 0);
    assert_eq!(largest, rows, "the running total carried across the resume");
}

/// Runs 1,000 generated rows in batches of 100 through `count-or-fail`
/// (every third call counts its rows in the host state store, then fails)
/// under `policy`; the rows written, the largest running total, and the
/// node's failed batches.
fn count_or_fail(policy: &str) -> (usize, i64, u64) {
    let scratch = Scratch::new();
    let summary = scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 100

            [sources.gen]
            type = "generate"
            rows = 1000

            [transforms.count]
            plugin = {}
            inputs = ["gen"]
            config = {{ mode = "count-or-fail" }}
            on_error = "{policy}"

            [sinks.out]
            type = "ipc"
            inputs = ["count"]
            path = "out.arrow"
            {dead}
            "#,
            toml_path(plugins::CONTRACT_V2.as_ref()),
            dead = if policy == "dead_letter" {
                "[sinks.dead]\ntype = \"ipc\"\ninputs = [\"count.dead_letter\"]\npath = \"dead.arrow\""
            } else {
                ""
            },
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let totals = out
        .column_by_name("total")
        .unwrap()
        .as_primitive::<Int64Type>();
    let largest = totals.values().iter().copied().max().unwrap_or(0);
    let count = summary.nodes.iter().find(|n| n.name == "count").unwrap();
    (out.num_rows(), largest, count.failed_batches)
}

/// A skipped batch's writes to the host state store are undone: calls 3, 6
/// and 9 count their rows, fail, and are dropped, and the running total
/// counts only the 700 rows written.
#[test]
fn a_skipped_batchs_state_store_writes_are_undone() {
    assert_eq!(count_or_fail("skip"), (700, 700, 3));
}

/// Bisection re-runs a failed batch in halves: the failed call's writes are
/// undone, so the halves count each row once, and the total is the 1,000
/// rows written (every failing call had more than one row, so its halves
/// went through).
#[test]
fn a_bisected_batchs_rows_are_counted_once_in_the_state_store() {
    let (rows, largest, failed) = count_or_fail("dead_letter");
    assert_eq!((rows, largest), (1000, 1000));
    assert!(failed > 0, "no call failed");
}

/// `tests/fixtures/passthrough-0.1.0.wasm`, built by the SDK when it still
/// targeted 0.1 and committed as built: it runs, copying every column it
/// can carry across the boundary and back, and adds its tag.
#[test]
fn a_plugin_built_against_0_1_0_before_0_2_existed_still_runs() {
    let fixture = repo().join("tests/fixtures/passthrough-0.1.0.wasm");
    let loaded = weir_tests::host().load(&fixture).unwrap();
    assert_eq!(loaded.contract(), "0.1.0");
    let scratch = Scratch::new();
    scratch.write(
        "in.csv",
        "id,name,at\n1,a,2026-01-02T03:04:05Z\n2,,\n3,c,2026-12-02T00:00:00Z\n",
    );
    scratch
        .run(&format!(
            r#"
            [sources.in]
            type = "csv"
            path = "in.csv"

            [transforms.old]
            plugin = {}
            inputs = ["in"]
            config = {{ copy = true, tag = "0.1" }}

            [sinks.out]
            type = "ipc"
            inputs = ["old"]
            path = "out.arrow"

            [sinks.direct]
            type = "ipc"
            inputs = ["in"]
            path = "direct.arrow"
            "#,
            toml_path(&fixture)
        ))
        .unwrap();
    let out = weir_tests::read_ipc(&scratch.path("out.arrow")).unwrap();
    let direct = weir_tests::read_ipc(&scratch.path("direct.arrow")).unwrap();
    for (i, field) in direct.schema().fields().iter().enumerate() {
        assert_eq!(out.column(i), direct.column(i), "{}", field.name());
    }
    let tags = out.column_by_name("tag").unwrap();
    assert_eq!(
        tags.as_string::<i32>().iter().flatten().collect::<Vec<_>>(),
        ["0.1"; 3]
    );
}

/// A 0.2 plugin returning malformed nested output — a struct child shorter
/// than the struct, list offsets past the child, dictionary keys out of
/// range, decimals past their precision — fails at the boundary as that
/// plugin's malformed batch, naming node and column, before any sink.
#[test]
fn malformed_nested_output_from_a_0_2_plugin_is_refused_naming_node_and_column() {
    for (mode, file, cause) in [
        ("child-length", "struct.arrow", "child"),
        ("offsets-past-child", "list.arrow", "offset"),
        ("dictionary-key", "dictionary.arrow", "out of bounds"),
        ("decimal-precision", "decimal128.arrow", "precision"),
    ] {
        let text = refused(mode, &every_type().join(file), "");
        assert!(
            text.contains("malformed")
                && text.contains("column \"v\"")
                && text.to_lowercase().contains(cause),
            "{mode}: {text}"
        );
    }
}

/// The error of a run of the IPC file `file` through `contract-v2` in
/// `mode` (node `t`, with `extra` lines in its table), checked to name the
/// node and to have written nothing.
fn refused(mode: &str, file: &Path, extra: &str) -> String {
    let scratch = Scratch::new();
    let err = scratch
        .run(&format!(
            r#"
            [sources.s]
            type = "ipc"
            path = {}

            [transforms.t]
            plugin = {}
            inputs = ["s"]
            config = {{ mode = "{mode}" }}
            {extra}

            [sinks.o]
            type = "ipc"
            inputs = ["t"]
            path = "out.arrow"
            "#,
            toml_path(file),
            toml_path(plugins::CONTRACT_V2.as_ref())
        ))
        .expect_err(mode);
    let text = err.to_string();
    assert!(text.contains("node \"t\""), "{mode}: {text}");
    assert!(!scratch.path("out.arrow").exists(), "{mode}");
    text
}
