//! Tiered compilation: a hot-reloaded version first runs on Winch's
//! baseline code, sandboxed exactly like optimized code, and its
//! optimized build takes over later with the state handed over.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use weir::manifest::TransformConfig;
use weir::plugin::{EngineConfig, PluginHost, Tier};
use weir::{Error, FailureKind};
use weir_tests::{host, new_version, plugins, replace, Scratch};

use super::reload::{batches, run_watching_with, stamped_pipeline, versions_per_batch};

/// Bytes of `plugin` no run has compiled before (not even into the disk
/// cache of an earlier test run): each call gets a tag of its own.
fn never_compiled(plugin: &str) -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    new_version(&std::fs::read(plugin).unwrap(), &format!("tier-{nanos}"))
}

fn transform(limits: &str) -> TransformConfig {
    toml::from_str(&format!(
        "plugin = \"x\"\ninputs = [\"y\"]\nlimits = {{ {limits} }}"
    ))
    .unwrap()
}

fn batch() -> RecordBatch {
    let schema = Schema::new(vec![Field::new("seq", DataType::Int64, false)]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(Int64Array::from_iter_values(0..100))],
    )
    .unwrap()
}

/// The hostile plugin in `mode`, as a baseline build, run on one batch
/// under `limits`: the failure and how long it took.
fn hostile_on_baseline(mode: &str, limits: &str) -> (FailureKind, String, Duration) {
    let scratch = Scratch::new();
    let path = scratch.write("hostile.wasm", never_compiled(plugins::HOSTILE));
    let plugin = host().load_quick(&path).unwrap();
    assert_eq!(plugin.tier, Tier::Baseline);
    let mut instance = host()
        .instantiate(&plugin, "bad", &transform(limits), &scratch.path(""))
        .unwrap();
    instance.init(&format!(r#"{{"mode":"{mode}"}}"#)).unwrap();
    let started = Instant::now();
    match instance.process(&batch(), 0) {
        Err(Error::Plugin { kind, message, .. }) => (kind, message, started.elapsed()),
        other => panic!("expected a plugin failure, got {other:?}"),
    }
}

#[test]
fn a_baseline_build_is_interrupted_at_the_time_budget() {
    let (kind, message, took) = hostile_on_baseline("loop", "timeout_ms = 300");
    assert_eq!(kind, FailureKind::Limit, "{message}");
    assert!(message.contains("timeout_ms = 300"), "{message}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_baseline_build_is_refused_memory_past_the_cap() {
    let (kind, message, _) = hostile_on_baseline("grow", "memory_mb = 64");
    assert_eq!(kind, FailureKind::Limit, "{message}");
    assert!(
        message.contains("memory limit (limits.memory_mb = 64)"),
        "{message}"
    );
}

#[test]
fn a_version_compiled_before_is_loaded_optimized_at_once() {
    host().load(Path::new(plugins::STAMP_B)).unwrap();
    let plugin = host().load_quick(Path::new(plugins::STAMP_B)).unwrap();
    assert_eq!(plugin.tier, Tier::Optimized);
}

#[test]
fn a_fresh_version_starts_on_the_baseline_and_its_optimized_build_takes_over_with_state() {
    let scratch = Scratch::new();
    let plugin = scratch.write("plugin.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let fresh = never_compiled(plugins::STAMP_B);
    let summary = run_watching_with(
        &scratch,
        &stamped_pipeline(&plugin),
        Default::default(),
        || {
            replace(&plugin, &fresh);
            // The optimizer runs at the lowest priority: on a busy test
            // machine it may take a while.
            let deadline = Instant::now() + Duration::from_secs(180);
            while host().load_quick(&plugin).unwrap().tier != Tier::Optimized {
                assert!(Instant::now() < deadline, "no optimized build in 180 s");
                std::thread::sleep(Duration::from_millis(50));
            }
            // It takes over at a batch boundary (40 batches a second).
            std::thread::sleep(Duration::from_millis(500));
        },
    )
    .unwrap();
    // Every row once, in order, each batch on one version, the state (rows
    // seen) carried through both swaps.
    let versions = versions_per_batch(&batches(&scratch.path("out.arrow")));
    let first_b = versions.iter().position(|v| v == "stamp-b").unwrap();
    assert!(versions[..first_b].iter().all(|v| v == "stamp-a"));
    assert!(versions[first_b..].iter().all(|v| v == "stamp-b"));
    assert_eq!(
        summary.node("stamp").unwrap().swaps,
        2,
        "one swap to the baseline build, one to the optimized build"
    );
}

#[test]
fn an_edited_version_loads_optimized_at_once_reusing_the_code_of_the_version_before() {
    // A host of its own: the reuse counters are the process's, and other
    // tests compile on the shared host meanwhile.
    let host = PluginHost::new(&EngineConfig {
        cache_dir: None,
        ..EngineConfig::default()
    })
    .unwrap();
    let scratch = Scratch::new();
    let path = scratch.path("stamp.wasm");
    let write = |plugin: &str| std::fs::write(&path, never_compiled(plugin)).unwrap();

    write(plugins::STAMP_A);
    let baseline = host.load_quick(&path).unwrap();
    assert_eq!(baseline.tier, Tier::Baseline, "the file's first version");
    let before = host.code_reuse().unwrap();
    let optimized = host.optimize(&baseline).unwrap().unwrap();
    assert_eq!(optimized.tier, Tier::Optimized);
    let first = host.code_reuse().unwrap().since(before);

    // stamp-b is stamp-a's source with another version string: an edit.
    write(plugins::STAMP_B);
    let before = host.code_reuse().unwrap();
    let edited = host.load_quick(&path).unwrap();
    assert_eq!(
        edited.tier,
        Tier::Optimized,
        "an edit's code was nearly all compiled before: no baseline build"
    );
    let edited = host.code_reuse().unwrap().since(before);
    // The first build already reuses functions whose code is identical
    // (~400 of ~1,050); the edited one recompiles the few whose IR the
    // edit changed (~66: moved data addresses), a tenth of the first.
    assert!(first.compiled > 500, "{first:?}");
    assert!(
        edited.compiled * 5 < first.compiled
            && edited.reused * 10 >= (edited.reused + edited.compiled) * 9,
        "first {first:?}, edited {edited:?}"
    );

    // Another plugin in the same file is mostly new code: baseline first.
    write(plugins::HOSTILE);
    assert_eq!(host.load_quick(&path).unwrap().tier, Tier::Baseline);
}
