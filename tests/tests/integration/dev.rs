//! `weir dev`: edit a local plugin crate's source and the running pipeline
//! rebuilds it, replays recent batches through it, and swaps it in; a
//! compile error is shown and the running version stays.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type};
use weir_tests::{repo, Scratch};

/// Waits until `log` contains `text` (rebuilds take a while on a cold
/// machine); panics with the log after `limit`.
fn wait_for(log: &Path, text: &str, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        let seen = std::fs::read_to_string(log).unwrap_or_default();
        if seen.contains(text) {
            return seen;
        }
        assert!(
            started.elapsed() < limit,
            "no {text:?} after {limit:?}:\n{seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// `weir plugin new NAME` in `scratch` (a Rust crate that builds as is).
fn new_plugin(scratch: &Scratch, name: &str) {
    let new = Command::new(env!("CARGO_BIN_EXE_weir-under-test"))
        .args(["plugin", "new", name, "--dir"])
        .arg(scratch.path(""))
        .output()
        .unwrap();
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
}

/// `weir dev MANIFEST` from `dir`, logging to `log`.
fn start_dev(dir: &Path, manifest: &Path, log: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_weir-under-test"))
        .arg("dev")
        .arg(manifest)
        .arg("--target-dir")
        .arg(repo().join("target/guest"))
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn dev_rebuilds_an_edited_plugin_replays_recent_batches_and_swaps_it_in() {
    let scratch = Scratch::new();
    new_plugin(&scratch, "scaled");
    let manifest = scratch.write(
        "pipeline.toml",
        r#"
        [pipeline]
        batch_size = 50

        [sources.gen]
        type = "generate"
        rate = 2000.0

        [transforms.mine]
        plugin = "scaled/target/weir/scaled.wasm"
        build = "scaled"
        inputs = ["gen"]
        config = { column = "value", min = 0.0 }

        [sinks.out]
        type = "ipc"
        inputs = ["mine"]
        path = "out.arrow"
        "#,
    );
    let log = scratch.path("dev.log");
    let mut child = start_dev(&scratch.path(""), &manifest, &log);
    let lib = scratch.path("scaled/src/lib.rs");

    wait_for(&log, "watching for changes", Duration::from_secs(600));
    std::thread::sleep(Duration::from_millis(500));
    edit(&lib, "v * 2.0", "v * 3.0");
    let seen = wait_for(&log, "swapped in the new version", Duration::from_secs(300));
    assert!(
        seen.contains("replayed the last 4 batches of mine"),
        "{seen}"
    );
    assert!(seen.contains("4 of 4 batches differ"), "{seen}");

    std::thread::sleep(Duration::from_millis(300));
    edit(&lib, "v * 3.0", "v * ");
    let seen = wait_for(&log, "the running version stays", Duration::from_secs(300));
    assert!(
        seen.contains("error"),
        "the compiler's error is shown: {seen}"
    );
    std::thread::sleep(Duration::from_millis(300));

    crate::process::interrupt(&child);
    let status = child.wait().unwrap();
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{seen}");
    // One build at start and one per save: reading sources (the compiler)
    // is not a change.
    let builds = seen.matches("building plugin").count();
    assert!(builds <= 4, "{builds} builds for 2 edits:\n{seen}");

    // Every kept row once, in order: doubled before the edit, tripled
    // after it, and still tripled after the failed build.
    let out = super::reload::batches(&scratch.path("out.arrow"));
    let mut factors = Vec::new();
    let mut last_seq = -1;
    for batch in &out {
        let seq = batch
            .column_by_name("seq")
            .unwrap()
            .as_primitive::<Int64Type>();
        let value = batch
            .column_by_name("value")
            .unwrap()
            .as_primitive::<Float64Type>();
        let scaled = batch
            .column_by_name("value_doubled")
            .unwrap()
            .as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            assert!(seq.value(i) > last_seq);
            last_seq = seq.value(i);
            assert!(value.value(i) > 0.0);
            let factor = (scaled.value(i) / value.value(i)).round() as i64;
            if factors.last() != Some(&factor) {
                factors.push(factor);
            }
        }
    }
    assert_eq!(factors, [2, 3], "{seen}");
}

#[test]
fn dev_with_a_relative_manifest_rejects_a_panicking_version_and_takes_the_fix() {
    let scratch = Scratch::new();
    // Its own crate name: the other dev test builds `scaled` into the same
    // shared target dir at the same time.
    new_plugin(&scratch, "relative");
    scratch.write(
        "dev.toml",
        r#"
        [pipeline]
        batch_size = 50

        [sources.gen]
        type = "generate"
        rate = 2000.0

        [transforms.mine]
        plugin = "relative/target/weir/relative.wasm"
        build = "relative"
        inputs = ["gen"]
        config = { column = "value", min = 0.0 }

        [sinks.out]
        type = "blackhole"
        inputs = ["mine"]
        "#,
    );
    let log = scratch.path("dev.log");
    // As a user types it: from the manifest's folder, a relative path.
    let mut child = start_dev(&scratch.path(""), Path::new("dev.toml"), &log);
    let lib = scratch.path("relative/src/lib.rs");
    wait_for(&log, "watching for changes", Duration::from_secs(600));
    std::thread::sleep(Duration::from_millis(500));

    edit(&lib, "v * 2.0", "{ assert!(v < 0.0, \"boom\"); v * 2.0 }");
    let seen = wait_for(&log, "the running version", Duration::from_secs(300));
    assert!(seen.contains("rejected") && seen.contains("boom"), "{seen}");
    assert!(
        !seen.contains("new version ready"),
        "a version that fails its replay is not made ready:\n{seen}"
    );
    let before_fix = seen.len();

    std::thread::sleep(Duration::from_millis(300));
    edit(&lib, "{ assert!(v < 0.0, \"boom\"); v * 2.0 }", "v * 3.0");
    let seen = wait_for(&log, "swapped in the new version", Duration::from_secs(300));
    let after = &seen[before_fix..];
    assert!(
        after.contains("4 of 4 batches differ"),
        "compared with the running (good) version:\n{after}"
    );
    assert!(
        !after.contains("boom"),
        "the fix is not blamed for the old failure:\n{after}"
    );

    crate::process::interrupt(&child);
    assert!(
        child.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
}
