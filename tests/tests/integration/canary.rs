//! `--canary N`: a new plugin version runs in shadow beside the running
//! one on N live batches; weir reports the difference and promotes it only
//! if it never failed.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir::reload::Options;
use weir_tests::{host, plugins, replace, Scratch};

use super::reload::{batches, run_watching_with, stamped_pipeline, versions_per_batch};

/// Controller options with a canary of `n` batches, and the reports made.
fn canary(n: u32) -> (Options, Arc<Mutex<Vec<String>>>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let options = Options {
        canary: n,
        report: Arc::new(move |text: &str| sink.lock().unwrap().push(text.to_string())),
        ..Options::default()
    };
    (options, reports)
}

/// Waits until the canary has reported (a verdict), at most a minute: a
/// loaded machine compiles and runs the shadow version late, and a fixed
/// sleep would read that as "no verdict".
fn wait_for_report(reports: &Mutex<Vec<String>>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while reports.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn canary_runs_the_new_version_in_shadow_then_promotes_it() {
    let scratch = Scratch::new();
    host().load(Path::new(plugins::STAMP_B)).unwrap();
    let plugin = scratch.write("plugin.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let (options, reports) = canary(5);
    run_watching_with(&scratch, &stamped_pipeline(&plugin), options, || {
        replace(&plugin, &std::fs::read(plugins::STAMP_B).unwrap());
        wait_for_report(&reports);
    })
    .unwrap();
    // Every row once, in order; the promoted version's state (rows seen)
    // kept pace with the old one's while in shadow.
    let versions = versions_per_batch(&batches(&scratch.path("out.arrow")));
    let first_b = versions
        .iter()
        .position(|v| v == "stamp-b")
        .expect("promoted");
    assert!(versions[first_b..].iter().all(|v| v == "stamp-b"));
    assert!(
        first_b >= 5,
        "B output nothing while in shadow: {versions:?}"
    );
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert!(report.contains("promoted"), "{report}");
    assert!(report.contains("5 batches, 250 rows in"), "{report}");
    assert!(report.contains("5 of 5 batches differ"), "{report}");
    assert!(
        report.contains("new only: seq=") && report.contains("version=stamp-b"),
        "{report}"
    );
}

#[test]
fn canary_that_fails_in_shadow_is_never_promoted() {
    let scratch = Scratch::new();
    host().load(Path::new(plugins::HOSTILE)).unwrap();
    let plugin = scratch.write("plugin.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let (options, reports) = canary(5);
    run_watching_with(&scratch, &stamped_pipeline(&plugin), options, || {
        replace(&plugin, &std::fs::read(plugins::HOSTILE).unwrap());
        wait_for_report(&reports);
    })
    .unwrap();
    let versions = versions_per_batch(&batches(&scratch.path("out.arrow")));
    assert!(versions.iter().all(|v| v == "stamp-a"), "{versions:?}");
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("rejected"), "{}", reports[0]);
}

#[test]
fn canary_of_a_node_with_two_output_ports_compares_both_and_promotes_it() {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, Int64Type};
    let scratch = Scratch::new();
    let filter = std::fs::read(plugins::FILTER).unwrap();
    let next = weir_tests::new_version(&filter, "v2");
    let plugin = scratch.write("filter.wasm", &filter);
    let manifest = format!(
        r#"
        [pipeline]
        batch_size = 50

        [sources.gen]
        type = "generate"
        rate = 2000.0

        [transforms.valid]
        plugin = {plugin:?}
        inputs = ["gen"]
        config = {{ predicate = "value >= 0" }}

        [sinks.out]
        type = "ipc"
        inputs = ["valid"]
        path = "out.arrow"

        [sinks.rejected]
        type = "ipc"
        inputs = ["valid.rejected"]
        path = "rejected.arrow"
        "#
    );
    let (options, reports) = canary(5);
    run_watching_with(&scratch, &manifest, options, || {
        replace(&plugin, &next);
        wait_for_report(&reports);
    })
    .unwrap();
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].contains("promoted") && reports[0].contains("identical output"),
        "{}",
        reports[0]
    );
    // Every row in exactly one of the two ports, on the right side.
    let mut seqs = Vec::new();
    for (file, kept) in [("out.arrow", true), ("rejected.arrow", false)] {
        for b in batches(&scratch.path(file)) {
            let seq = b.column_by_name("seq").unwrap().as_primitive::<Int64Type>();
            let value = b
                .column_by_name("value")
                .unwrap()
                .as_primitive::<Float64Type>();
            assert!(value.values().iter().all(|v| (*v >= 0.0) == kept), "{file}");
            seqs.extend(seq.values().iter().copied());
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..seqs.len() as i64).collect::<Vec<_>>());
}
