//! Hot reload: a plugin swaps live at a batch boundary; every row is
//! processed exactly once, in order; a broken version never takes over.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use weir::exec::{self, Control, RunSummary};
use weir::graph::Graph;
use weir::manifest::Manifest;
use weir::reload::{Controller, Options};
use weir_tests::{host, new_version, plugins, replace, Scratch};

/// Runs `manifest` with a reload controller while `edits` runs, then stops
/// the (unbounded) source and returns the summary.
fn run_watching(scratch: &Scratch, manifest: &str, edits: impl FnOnce()) -> RunSummary {
    run_watching_with(scratch, manifest, Options::default(), edits).unwrap()
}

/// [`run_watching`] with controller `options`; the run's own result.
pub(crate) fn run_watching_with(
    scratch: &Scratch,
    manifest: &str,
    options: Options,
    edits: impl FnOnce(),
) -> weir::Result<RunSummary> {
    let path = scratch.write("pipeline.toml", manifest);
    let graph = Graph::new(Manifest::load(&path).unwrap()).unwrap();
    let prepared = graph.prepare(host()).unwrap();
    let control = Arc::new(Control::default());
    let controller =
        Controller::start(&graph, &prepared, host().clone(), control.clone(), options).unwrap();
    let stopper = control.clone();
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(exec::run(&graph, prepared, stopper))
    });
    std::thread::sleep(Duration::from_millis(200));
    edits();
    std::thread::sleep(Duration::from_millis(300));
    control.request_stop();
    let summary = runner.join().unwrap();
    drop(controller);
    summary
}

pub(crate) fn stamped_pipeline(plugin: &Path) -> String {
    format!(
        r#"
        [pipeline]
        batch_size = 50

        [sources.gen]
        type = "generate"
        rate = 2000.0

        [transforms.stamp]
        plugin = {:?}
        inputs = ["gen"]

        [sinks.out]
        type = "ipc"
        inputs = ["stamp"]
        path = "out.arrow"
        "#,
        plugin.display().to_string()
    )
}

pub(crate) fn batches(path: &Path) -> Vec<RecordBatch> {
    let reader =
        arrow::ipc::reader::FileReader::try_new(std::fs::File::open(path).unwrap(), None).unwrap();
    reader.collect::<Result<Vec<_>, _>>().unwrap()
}

/// Checks every row arrived once in order, each batch carries one version
/// and the state (rows seen) was handed over; returns the version per batch.
pub(crate) fn versions_per_batch(out: &[RecordBatch]) -> Vec<String> {
    let mut next_seq = 0;
    let mut versions = Vec::new();
    for batch in out {
        let seq = batch.column(0).as_primitive::<Int64Type>();
        for s in seq.values() {
            assert_eq!(*s, next_seq, "rows must arrive exactly once, in order");
            next_seq += 1;
        }
        let version = batch
            .column_by_name("version")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let first = version.value(0).to_string();
        assert!(
            version.iter().all(|v| v == Some(first.as_str())),
            "a batch is processed by one version"
        );
        let before = batch
            .column_by_name("rows_before")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(
            before.value(0),
            seq.value(0),
            "state (rows seen) survives every swap"
        );
        versions.push(first);
    }
    assert!(next_seq > 0);
    versions
}

#[test]
fn reload_keeps_every_row_when_plugin_swaps_at_least_twenty_times_mid_stream() {
    let scratch = Scratch::new();
    let a = std::fs::read(plugins::STAMP_A).unwrap();
    let b = std::fs::read(plugins::STAMP_B).unwrap();
    // Warm the compiled-component cache: swapping is then near-instant.
    host().load(Path::new(plugins::STAMP_B)).unwrap();
    let plugin = scratch.write("plugin.wasm", &a);
    run_watching(&scratch, &stamped_pipeline(&plugin), || {
        for i in 0..24 {
            replace(&plugin, if i % 2 == 0 { &b } else { &a });
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let versions = versions_per_batch(&batches(&scratch.path("out.arrow")));
    let switches = versions.windows(2).filter(|w| w[0] != w[1]).count();
    // One switch per swap, each at a batch boundary; a loaded machine may
    // fold two quick edits into one swap, never invent one.
    assert!(
        (20..=24).contains(&switches),
        "{switches} switches: {versions:?}"
    );
    assert_eq!(versions[0], "stamp-a");
}

#[test]
fn broken_new_versions_are_rejected_and_the_next_change_is_tried() {
    let empty_component: &[u8] = b"\0asm\x0d\0\x01\0";
    let cases: [(&str, Vec<u8>); 4] = [
        ("not a component", b"this is not wasm".to_vec()),
        ("wrong exports", empty_component.to_vec()),
        ("init fails", std::fs::read(plugins::SELECT).unwrap()),
        (
            "traps on its first batch",
            std::fs::read(plugins::HOSTILE).unwrap(),
        ),
    ];
    // Warm the cache so B is ready within the test's waits.
    host().load(Path::new(plugins::STAMP_B)).unwrap();
    for (case, broken) in cases {
        let scratch = Scratch::new();
        let plugin = scratch.write("plugin.wasm", std::fs::read(plugins::STAMP_A).unwrap());
        let b = std::fs::read(plugins::STAMP_B).unwrap();
        run_watching(&scratch, &stamped_pipeline(&plugin), || {
            replace(&plugin, &broken);
            std::thread::sleep(Duration::from_millis(1000));
            replace(&plugin, &b);
            std::thread::sleep(Duration::from_millis(700));
        });
        let versions = versions_per_batch(&batches(&scratch.path("out.arrow")));
        let first_b = versions
            .iter()
            .position(|v| v == "stamp-b")
            .unwrap_or_else(|| panic!("{case}: B never took over"));
        assert!(first_b > 0, "{case}");
        assert!(
            versions[..first_b].iter().all(|v| v == "stamp-a"),
            "{case}: {versions:?}"
        );
        assert!(
            versions[first_b..].iter().all(|v| v == "stamp-b"),
            "{case}: {versions:?}"
        );
    }
}

#[test]
fn dedupe_state_survives_a_swap_so_no_duplicate_slips_through() {
    let scratch = Scratch::new();
    let v1 = std::fs::read(plugins::DEDUPE).unwrap();
    let plugin = scratch.write("dedupe.wasm", &v1);
    let manifest = format!(
        r#"
        [pipeline]
        batch_size = 20

        [sources.gen]
        type = "generate"
        rate = 2000.0
        keys = 50

        [transforms.unique]
        plugin = {:?}
        inputs = ["gen"]
        config = {{ key = ["key"] }}

        [sinks.out]
        type = "ipc"
        inputs = ["unique"]
        path = "out.arrow"
        "#,
        plugin.display().to_string()
    );
    let summary = run_watching(&scratch, &manifest, || {
        for i in 0..3 {
            replace(&plugin, &new_version(&v1, &format!("v{i}")));
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let out = weir_tests::read_ipc(&scratch.path("out.arrow")).unwrap();
    let keys = out
        .column(2)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(
        distinct.len(),
        out.num_rows(),
        "a key appeared twice after a swap"
    );
    assert_eq!(out.num_rows(), 50);
    assert!(summary.node("gen").unwrap().rows_out > 1000);
}
