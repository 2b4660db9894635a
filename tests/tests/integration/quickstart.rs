//! The quickstart job, checked row by row against pandas.

use std::process::Command;

use arrow::array::{Array, AsArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::TimestampMicrosecondType;
use weir_tests::{plugins, read_parquet, repo, Scratch};

/// The example manifest with plugin paths pointing at this build's plugins.
fn example_manifest(scratch: &Scratch) -> String {
    let text = std::fs::read_to_string(repo().join("examples/quickstart/pipeline.toml")).unwrap();
    let csv = repo()
        .join("examples/quickstart/orders.csv")
        .canonicalize()
        .unwrap();
    text.replace("../../target/plugins/dedupe.wasm", plugins::DEDUPE)
        .replace("../../target/plugins/rename.wasm", plugins::RENAME)
        .replace("../../target/plugins/parse-time.wasm", plugins::PARSE_TIME)
        .replace("../../target/plugins/filter.wasm", plugins::FILTER)
        .replace(
            "path = \"orders.csv\"",
            &format!("path = {:?}", csv.display().to_string()),
        )
        .replace(
            "out/orders.parquet",
            &scratch.path("orders.parquet").display().to_string(),
        )
}

#[test]
fn quickstart_output_matches_pandas_row_for_row() {
    let scratch = Scratch::new();
    let summary = scratch.run(&example_manifest(&scratch)).unwrap();
    let out = read_parquet(&scratch.path("orders.parquet")).unwrap();

    let ids = out
        .column_by_name("order_id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let names = out
        .column_by_name("customer_name")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let amounts = out
        .column_by_name("amount")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    let statuses = out
        .column_by_name("status")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let times = out
        .column_by_name("created_at")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    let ours: Vec<String> = (0..out.num_rows())
        .map(|i| {
            let ts = if times.is_valid(i) {
                times.value(i).to_string()
            } else {
                String::new()
            };
            format!(
                "{}|{}|{:.6}|{}|{ts}",
                ids.value(i),
                names.value(i),
                amounts.value(i),
                statuses.value(i)
            )
        })
        .collect();

    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "pandas reference missing: run `scripts/setup --test`"
    );
    let reference = Command::new(python)
        .arg(repo().join("tests/reference/quickstart.py"))
        .arg(repo().join("examples/quickstart/orders.csv"))
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let theirs: Vec<String> = String::from_utf8(reference.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();

    assert!(
        theirs.len() > 2000,
        "the reference kept {} rows",
        theirs.len()
    );
    assert_eq!(ours.len(), theirs.len(), "row counts differ");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "row {i} differs");
    }
    assert_eq!(summary.node("valid").unwrap().rows_out, theirs.len() as u64);
}

#[test]
fn quickstart_drops_duplicates_bad_amounts_and_keeps_unparseable_times_as_null() {
    let scratch = Scratch::new();
    let summary = scratch.run(&example_manifest(&scratch)).unwrap();
    let unique = summary.node("unique").unwrap();
    assert!(unique.rows_out < unique.rows_in, "dedupe dropped nothing");
    let out = read_parquet(&scratch.path("orders.parquet")).unwrap();
    let amounts = out
        .column_by_name("amount")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert!(amounts.iter().all(|a| a.is_some_and(|a| a > 0.0)));
    let times = out.column_by_name("created_at").unwrap();
    assert!(
        times.null_count() > 0,
        "the sample has unparseable timestamps"
    );
    assert!(times.null_count() < out.num_rows() / 10);
}
