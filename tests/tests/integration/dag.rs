//! Fan-out and fan-in, and schema propagation through the graph.

use arrow::array::{Array, AsArray, Int64Array};
use arrow::datatypes::{Float64Type, Int64Type};
use weir::Error;
use weir_tests::{plugins, read_ipc, toml_path, Scratch};

#[test]
fn fan_out_feeds_every_branch_the_same_batches() {
    let scratch = Scratch::new();
    let summary = scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 500

            [sources.gen]
            type = "generate"
            rows = 4000

            [transforms.positive]
            plugin = {filter}
            inputs = ["gen"]
            config = {{ predicate = "value > 0" }}

            [transforms.rest]
            plugin = {filter}
            inputs = ["gen"]
            config = {{ predicate = "not (value > 0)" }}

            [sinks.pos]
            type = "ipc"
            inputs = ["positive"]
            path = "pos.arrow"

            [sinks.others]
            type = "ipc"
            inputs = ["rest"]
            path = "rest.arrow"

            [sinks.all]
            type = "ipc"
            inputs = ["gen"]
            path = "all.arrow"
            "#,
            filter = toml_path(plugins::FILTER.as_ref())
        ))
        .unwrap();
    let pos = read_ipc(&scratch.path("pos.arrow")).unwrap();
    let rest = read_ipc(&scratch.path("rest.arrow")).unwrap();
    let all = read_ipc(&scratch.path("all.arrow")).unwrap();
    assert_eq!(all.num_rows(), 4000);
    assert_eq!(pos.num_rows() + rest.num_rows(), 4000);
    assert!(pos.num_rows() > 1000 && rest.num_rows() > 1000);
    assert!(pos
        .column(3)
        .as_primitive::<Float64Type>()
        .values()
        .iter()
        .all(|v| *v > 0.0));
    assert!(rest
        .column(3)
        .as_primitive::<Float64Type>()
        .values()
        .iter()
        .all(|v| *v <= 0.0));
    assert_eq!(summary.node("positive").unwrap().rows_in, 4000);
    assert_eq!(summary.node("rest").unwrap().rows_in, 4000);
}

#[test]
fn fan_in_merges_every_input_into_one_stream() {
    let scratch = Scratch::new();
    scratch.write("a.csv", "id,v\n1,1.0\n2,2.0\n");
    scratch.write("b.csv", "id,v\n10,1.5\n20,2.5\n30,3.5\n");
    scratch
        .run(&format!(
            r#"
            [sources.a]
            type = "csv"
            path = "a.csv"

            [sources.b]
            type = "csv"
            path = "b.csv"

            [transforms.both]
            plugin = {}
            inputs = ["a", "b"]
            config = {{ tag = "merged" }}

            [sinks.out]
            type = "ipc"
            inputs = ["both"]
            path = "out.arrow"
            "#,
            toml_path(plugins::PASSTHROUGH.as_ref())
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let mut ids: Vec<i64> = out.column(0).as_primitive::<Int64Type>().values().to_vec();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 10, 20, 30]);
    assert_eq!(out.schema().field(2).name(), "tag");
}

#[test]
fn fan_in_of_clashing_schemas_fails_before_any_data_moves() {
    let scratch = Scratch::new();
    scratch.write("a.csv", "id,v\n1,1.0\n");
    scratch.write("b.csv", "id,v\n1,hello\n");
    let err = scratch
        .check(
            r#"
            [sources.a]
            type = "csv"
            path = "a.csv"

            [sources.b]
            type = "csv"
            path = "b.csv"

            [sinks.out]
            type = "ipc"
            inputs = ["a", "b"]
            path = "out.arrow"
            "#,
        )
        .err()
        .expect("clash must fail");
    let text = err.to_string();
    assert!(matches!(err, Error::Schema { .. }), "{text}");
    assert!(
        text.contains("\"v\"") && text.contains("Float64") && text.contains("Utf8"),
        "{text}"
    );
    assert!(!scratch.path("out.arrow").exists());
}

#[test]
fn check_propagates_schemas_and_names_a_column_no_upstream_produces() {
    let scratch = Scratch::new();
    scratch.write("orders.csv", "Order ID,Amount\n1,2.5\n");
    let manifest = |predicate: &str| {
        format!(
            r#"
            [sources.orders]
            type = "csv"
            path = "orders.csv"

            [transforms.names]
            plugin = {rename}
            inputs = ["orders"]

            [transforms.valid]
            plugin = {filter}
            inputs = ["names"]
            config = {{ predicate = "{predicate}" }}

            [sinks.out]
            type = "ipc"
            inputs = ["valid"]
            path = "out.arrow"
            "#,
            rename = toml_path(plugins::RENAME.as_ref()),
            filter = toml_path(plugins::FILTER.as_ref()),
        )
    };
    // After rename the column is `amount`, not `Amount`.
    let err = scratch
        .check(&manifest("Amount > 0"))
        .err()
        .expect("must fail");
    let text = err.to_string();
    assert!(
        matches!(err, Error::Schema { ref node, .. } if node == "valid"),
        "{text}"
    );
    assert!(text.contains("\"Amount\""), "{text}");
    assert!(
        text.contains("pipeline.toml:"),
        "names the manifest line: {text}"
    );

    let prepared = scratch.check(&manifest("amount > 0")).unwrap();
    let schema = prepared.schemas["out"].clone().expect("known schema");
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["order_id", "amount"]);
}

#[test]
fn dedupe_keeps_the_first_row_of_each_key_across_batches() {
    let scratch = Scratch::new();
    scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 64

            [sources.gen]
            type = "generate"
            rows = 1000
            keys = 10

            [transforms.unique]
            plugin = {}
            inputs = ["gen"]
            config = {{ key = ["key"] }}

            [sinks.out]
            type = "ipc"
            inputs = ["unique"]
            path = "out.arrow"
            "#,
            toml_path(plugins::DEDUPE.as_ref())
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    assert_eq!(out.num_rows(), 10);
    // First occurrences come in input order.
    let seq = out.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert!(seq.values().windows(2).all(|w| w[0] < w[1]));
    assert_eq!(out.column(2).null_count(), 0);
}
