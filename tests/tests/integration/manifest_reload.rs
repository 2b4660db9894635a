//! Manifest reload: an edited `pipeline.toml` is diffed against the running
//! graph and applied at a batch boundary — only changed nodes rebuilt,
//! sources keeping their position — or rejected as a whole.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use weir::exec::{self, Control};
use weir::graph::Graph;
use weir::manifest::Manifest;
use weir::reload::Options;
use weir_tests::{host, plugins, toml_path, Scratch};

use super::reload::{batches, run_watching_with, stamped_pipeline, versions_per_batch};

/// `stamped_pipeline`, plus a sink writing the source's rows untouched.
fn pipeline_with_raw_copy(stamp: &Path) -> String {
    stamped_pipeline(stamp)
        + r#"
        [sinks.raw]
        type = "ipc"
        inputs = [ "gen" ]
        path = "raw.arrow"
        "#
}

/// Inserts a filter keeping `value >= 0` between `stamp` and `out`.
fn with_filter(manifest: &str) -> String {
    manifest.replace(r#"inputs = ["stamp"]"#, r#"inputs = ["keep"]"#)
        + &format!(
            r#"
        [transforms.keep]
        plugin = {}
        inputs = ["stamp"]
        config = {{ predicate = "value >= 0" }}
        "#,
            toml_path(Path::new(plugins::FILTER))
        )
}

/// (seq, value) of every row.
fn rows(batches: &[RecordBatch]) -> Vec<(i64, f64)> {
    batches
        .iter()
        .flat_map(|b| {
            let seq = b.column_by_name("seq").unwrap().as_primitive::<Int64Type>();
            let value = b
                .column_by_name("value")
                .unwrap()
                .as_primitive::<Float64Type>();
            seq.values()
                .iter()
                .copied()
                .zip(value.values().iter().copied())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Edits the manifest in place, as an editor saves it.
fn edit(scratch: &Scratch, manifest: &str) {
    std::thread::sleep(Duration::from_millis(300));
    scratch.write("pipeline.toml", manifest);
    std::thread::sleep(Duration::from_millis(600));
}

#[test]
fn manifest_edit_adds_a_filter_node_live_without_losing_or_repeating_a_row() {
    let scratch = Scratch::new();
    let stamp = scratch.write("stamp.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let before = pipeline_with_raw_copy(&stamp);
    run_watching_with(&scratch, &before, Options::default(), || {
        edit(&scratch, &with_filter(&before))
    })
    .unwrap();

    let raw = rows(&batches(&scratch.path("raw.arrow")));
    let out = rows(&batches(&scratch.path("out.arrow")));
    // The raw copy (a sink the edit left alone, one file across the reload)
    // holds every generated row once, in order: the source kept its place.
    assert!(raw.iter().enumerate().all(|(i, (seq, _))| *seq == i as i64));
    // The output is the raw rows, all of them until the filter took over at
    // some row, then exactly those with value >= 0.
    let from = raw
        .iter()
        .zip(&out)
        .position(|(r, o)| r != o)
        .expect("the filter never took effect");
    assert!(
        raw[from].1 < 0.0,
        "the first missing row is one the filter drops"
    );
    let kept: Vec<(i64, f64)> = raw[from..]
        .iter()
        .copied()
        .filter(|(_, v)| *v >= 0.0)
        .collect();
    assert_eq!(
        out[from..],
        kept[..],
        "after the edit, exactly the rows with value >= 0"
    );
    assert!(
        kept.len() > 100,
        "the filter ran on a stretch of rows: {}",
        kept.len()
    );
}

#[test]
fn invalid_manifest_edit_is_rejected_and_the_pipeline_runs_on() {
    let scratch = Scratch::new();
    let stamp = scratch.write("stamp.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let before = stamped_pipeline(&stamp);
    let broken = with_filter(&before).replace(r#"inputs = ["stamp"]"#, r#"inputs = ["nope"]"#);
    run_watching_with(&scratch, &before, Options::default(), || {
        edit(&scratch, "[sources.gen\n");
        edit(&scratch, &broken);
    })
    .unwrap();
    // Every row once, in order, never filtered.
    let versions = versions_per_batch(&batches(&scratch.path("out.arrow")));
    assert!(versions.len() > 20);
}

#[test]
fn changing_a_source_live_is_refused_and_nothing_of_the_edit_applies() {
    let scratch = Scratch::new();
    let stamp = scratch.write("stamp.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let before = stamped_pipeline(&stamp);
    let edited = with_filter(&before).replace("rate = 2000.0", "rate = 3000.0");
    run_watching_with(&scratch, &before, Options::default(), || {
        edit(&scratch, &edited)
    })
    .unwrap();
    // The filter in the same edit was not applied either: all rows arrive.
    versions_per_batch(&batches(&scratch.path("out.arrow")));
}

#[test]
fn sink_path_change_commits_the_old_file_and_continues_in_the_new_one() {
    let scratch = Scratch::new();
    let stamp = scratch.write("stamp.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let before = stamped_pipeline(&stamp);
    let moved = before.replace(r#"path = "out.arrow""#, r#"path = "out-2.arrow""#);
    run_watching_with(&scratch, &before, Options::default(), || {
        edit(&scratch, &moved)
    })
    .unwrap();
    let first = batches(&scratch.path("out.arrow"));
    let second = batches(&scratch.path("out-2.arrow"));
    assert!(!first.is_empty() && !second.is_empty());
    // Together: every row once, in order, state carried on (the stamp node
    // was not rebuilt).
    versions_per_batch(&[first, second].concat());
}

#[test]
fn rewriting_a_file_sink_in_place_is_refused() {
    let scratch = Scratch::new();
    let stamp = scratch.write("stamp.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let before = pipeline_with_raw_copy(&stamp);
    // The raw sink would now get the stamp's wider schema on the same file.
    let edited = before.replace(r#"inputs = [ "gen" ]"#, r#"inputs = ["stamp"]"#);
    run_watching_with(&scratch, &before, Options::default(), || {
        edit(&scratch, &edited)
    })
    .unwrap();
    let raw = batches(&scratch.path("raw.arrow"));
    assert!(
        raw.iter().all(|b| b.num_columns() == 4),
        "raw kept its schema"
    );
    assert_eq!(
        raw.iter().map(RecordBatch::num_rows).sum::<usize>(),
        batches(&scratch.path("out.arrow"))
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>()
    );
}

#[test]
fn a_node_nobody_reads_yet_keeps_consuming_while_an_edit_is_half_done() {
    let scratch = Scratch::new();
    let stamp = scratch.write("stamp.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let before = stamped_pipeline(&stamp);
    let done = with_filter(&before);
    // First save: the filter exists but nothing reads it yet.
    let half = done.replace(r#"inputs = ["keep"]"#, r#"inputs = ["stamp"]"#);
    let summary = run_watching_with(&scratch, &before, Options::default(), || {
        edit(&scratch, &half);
        edit(&scratch, &done);
    })
    .unwrap();
    let stamp_in = summary.node("stamp").unwrap().rows_in;
    assert_eq!(
        summary.node("gen").unwrap().rows_out,
        stamp_in,
        "no batch lost"
    );
    assert!(
        stamp_in > 3000,
        "the pipeline ran on to the stop: {stamp_in} rows"
    );
    let out = rows(&batches(&scratch.path("out.arrow")));
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(out.last().is_some_and(|(_, v)| *v >= 0.0));
}

#[test]
fn a_plan_handed_over_after_the_run_ended_is_answered_not_applied() {
    let scratch = Scratch::new();
    let stamp = scratch.write("stamp.wasm", std::fs::read(plugins::STAMP_A).unwrap());
    let manifest = stamped_pipeline(&stamp).replace("rate = 2000.0", "rows = 500");
    let path = scratch.write("pipeline.toml", &manifest);
    let graph = Graph::new(Manifest::load(&path).unwrap()).unwrap();
    let prepared = graph.prepare(host()).unwrap();
    let schemas = prepared.schemas.clone();
    let control = Arc::new(Control::default());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(exec::run(&graph, prepared, control.clone()))
        .unwrap();

    // An edit that lands just after the pipeline finished.
    scratch.write("pipeline.toml", with_filter(&manifest));
    let edited = Graph::new(Manifest::load(&path).unwrap()).unwrap();
    let plan = weir::reload::plan(&graph, &schemas, edited, host())
        .unwrap()
        .expect("a change");
    let (answer, answered) = std::sync::mpsc::channel();
    std::thread::spawn(move || answer.send(control.reconfigure(plan)));
    assert_eq!(
        answered.recv_timeout(Duration::from_secs(10)),
        Ok(false),
        "the controller must not wait for a pipeline that ended"
    );
}

/// A node added by an edit is opened by the same code as at start, with
/// the same checks: a watermark on a column that is no timestamp is
/// refused by the planner (it used to slip through it).
#[test]
fn a_node_added_live_gets_the_checks_it_gets_at_start() {
    let scratch = Scratch::new();
    let before = "[sources.gen]\ntype = \"generate\"\nrows = 10\n\n\
                  [sinks.out]\ntype = \"blackhole\"\ninputs = [\"gen\"]\n";
    let path = scratch.write("pipeline.toml", before);
    let old = Graph::new(Manifest::load(&path).unwrap()).unwrap();
    let schemas = old.prepare(host()).unwrap().schemas;
    let added = format!(
        "{before}\n[sources.more]\ntype = \"generate\"\nrows = 10\n\
         watermark = {{ column = \"seq\", delay_ms = 10 }}\n\n\
         [sinks.more_out]\ntype = \"blackhole\"\ninputs = [\"more\"]\n"
    );
    let path = scratch.write("pipeline.toml", &added);
    let new = Graph::new(Manifest::load(&path).unwrap()).unwrap();
    let err = match weir::reload::plan(&old, &schemas, new, host()) {
        Ok(_) => panic!("the planner accepted a watermark on an int64 column"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("watermark.column \"seq\" must be a timestamp column"),
        "{err}"
    );
}

/// generate → join (table `tiers`: k0…k99 → `tier`) → out.arrow.
fn joined_pipeline(table: &str) -> String {
    format!(
        r#"
        [pipeline]
        batch_size = 50

        [sources.gen]
        type = "generate"
        rate = 2000.0

        [sources.{table}]
        type = "csv"
        path = "{table}.csv"

        [transforms.enriched]
        plugin = {}
        inputs = {{ stream = "gen", table = "{table}" }}
        config = {{ on = ["key"] }}

        [sinks.out]
        type = "ipc"
        inputs = ["enriched"]
        path = "out.arrow"
        "#,
        toml_path(Path::new(plugins::JOIN))
    )
}

#[test]
fn a_join_rewired_to_a_new_table_swaps_it_at_a_batch_boundary_without_losing_a_row() {
    let scratch = Scratch::new();
    for (file, tier) in [("tiers_v1", "old"), ("tiers_v2", "new")] {
        let rows: String = (0..100).map(|k| format!("k{k},{tier}\n")).collect();
        scratch.write(&format!("{file}.csv"), format!("key,tier\n{rows}"));
    }
    run_watching_with(
        &scratch,
        &joined_pipeline("tiers_v1"),
        Options::default(),
        || edit(&scratch, &joined_pipeline("tiers_v2")),
    )
    .unwrap();
    let out = batches(&scratch.path("out.arrow"));
    let seq: Vec<i64> = out
        .iter()
        .flat_map(|b| {
            b.column_by_name("seq")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    let tiers: Vec<String> = out
        .iter()
        .flat_map(|b| {
            let t = b.column_by_name("tier").unwrap().as_string::<i32>();
            (0..b.num_rows())
                .map(|i| t.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        seq,
        (0..seq.len() as i64).collect::<Vec<_>>(),
        "every row once, in order"
    );
    // Old table up to one batch boundary, the new one from there on.
    let swap = tiers
        .iter()
        .position(|t| t == "new")
        .expect("the new table took over");
    assert!(swap > 0, "the old table joined the first rows");
    assert!(tiers[..swap].iter().all(|t| t == "old"));
    assert!(
        tiers[swap..].iter().all(|t| t == "new"),
        "no row joined the old table after the swap"
    );
}
