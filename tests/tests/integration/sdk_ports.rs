//! Named ports in the C, Python and JavaScript helpers: a plugin declares
//! input ports `a` and `b` and output ports `kept` and `negative`
//! (`tests/plugins/{c,python,js}-ports`, built by `weir plugin build` like a
//! user's), reads which port each batch came by and when each ended, and
//! routes rows to a second output port. `weir check` sees each output
//! port's schema through `describe`.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use weir_tests::{read_ipc, repo, toml_path, Scratch};

use crate::languages::cli_build;

fn build(lang: &str) -> PathBuf {
    cli_build(
        &repo().join(format!("tests/plugins/{lang}-ports")),
        &repo().join("target/example-plugins"),
    )
}

fn manifest(plugin: &Path) -> String {
    format!(
        r#"
        [pipeline]
        batch_size = 16

        [sources.first]
        type = "csv"
        path = "a.csv"
        schema = [{{ name = "id", type = "int64" }}, {{ name = "n", type = "int64" }}]

        [sources.second]
        type = "csv"
        path = "b.csv"
        schema = [{{ name = "id", type = "int64" }}, {{ name = "n", type = "int64" }}]

        [transforms.split]
        plugin = {}
        inputs = {{ a = "first", b = "second" }}

        [sinks.kept]
        type = "ipc"
        inputs = ["split"]
        path = "kept.arrow"

        [sinks.negative]
        type = "ipc"
        inputs = ["split.negative"]
        path = "negative.arrow"
        "#,
        toml_path(plugin)
    )
}

/// `(from, n)` of every row, sorted: the two inputs interleave at random.
fn rows(batch: &RecordBatch) -> Vec<(String, Option<i64>)> {
    let from = batch.column_by_name("from").unwrap().as_string::<i32>();
    let n = batch
        .column_by_name("n")
        .unwrap()
        .as_primitive::<Int64Type>();
    let mut rows: Vec<_> = (0..batch.num_rows())
        .map(|i| (from.value(i).to_string(), n.is_valid(i).then(|| n.value(i))))
        .collect();
    rows.sort();
    rows
}

fn routes_rows_by_named_ports(lang: &str) {
    let plugin = build(lang);
    let scratch = Scratch::new();
    // 100 rows on `a`, 60 on `b`: several batches each; every fifth null.
    let values = |count: i64, shift: i64| -> Vec<Option<i64>> {
        (0..count)
            .map(|i| (i % 5 != 4).then_some(i - shift))
            .collect()
    };
    let (a, b) = (values(100, 30), values(60, 45));
    let csv = |values: &[Option<i64>]| -> String {
        // An `id` beside `n`: a line with nothing on it is no record.
        std::iter::once("id,n\n".to_string())
            .chain(values.iter().enumerate().map(|(id, v)| match v {
                Some(v) => format!("{id},{v}\n"),
                None => format!("{id},\n"),
            }))
            .collect()
    };
    scratch.write("a.csv", csv(&a));
    scratch.write("b.csv", csv(&b));

    let prepared = scratch.check(&manifest(&plugin)).unwrap();
    let split = &prepared.transforms["split"];
    for (port, schema) in split.ports.outputs.iter().zip(&split.outputs) {
        let schema = schema
            .as_ref()
            .unwrap_or_else(|| panic!("{lang}: `{port}` undescribed"));
        assert!(
            schema.field_with_name("from").is_ok(),
            "{lang}: {port}: {schema:?}"
        );
    }
    drop(prepared);

    scratch.run(&manifest(&plugin)).unwrap();
    let tagged = |port: &str, values: &[Option<i64>], keep: bool| {
        values
            .iter()
            .filter(|v| matches!(v, Some(v) if *v >= 0) == keep)
            .map(|v| (port.to_string(), *v))
            .collect::<Vec<_>>()
    };
    let mut kept = [tagged("a", &a, true), tagged("b", &b, true)].concat();
    let mut negative = [tagged("a", &a, false), tagged("b", &b, false)].concat();
    kept.sort();
    negative.sort();
    assert_eq!(
        rows(&read_ipc(&scratch.path("kept.arrow")).unwrap()),
        kept,
        "{lang}"
    );
    assert_eq!(
        rows(&read_ipc(&scratch.path("negative.arrow")).unwrap()),
        negative,
        "{lang}: negative and null rows"
    );
}

#[test]
fn a_c_plugin_reads_two_named_inputs_and_routes_rows_to_two_outputs() {
    routes_rows_by_named_ports("c");
}

#[test]
fn a_python_plugin_reads_two_named_inputs_and_routes_rows_to_two_outputs() {
    routes_rows_by_named_ports("python");
}

#[test]
fn a_js_plugin_reads_two_named_inputs_and_routes_rows_to_two_outputs() {
    routes_rows_by_named_ports("js");
}
