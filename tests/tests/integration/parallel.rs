//! `parallelism = N`: N instances of a stateless plugin process
//! consecutive batches at once; the output keeps the input's order.

use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use weir_tests::{plugins, toml_path, Scratch};

fn stamped(parallelism: usize) -> String {
    format!(
        r#"
        [pipeline]
        batch_size = 500

        [sources.gen]
        type = "generate"
        rows = 200000

        [transforms.stamp]
        plugin = {}
        inputs = ["gen"]
        parallelism = {parallelism}

        [sinks.out]
        type = "ipc"
        inputs = ["stamp"]
        path = "out.arrow"
        "#,
        toml_path(Path::new(plugins::STAMP_A))
    )
}

#[test]
fn parallel_instances_keep_every_row_in_input_order() {
    let scratch = Scratch::new();
    scratch.run(&stamped(2)).unwrap();
    let out = super::reload::batches(&scratch.path("out.arrow"));
    let mut next = 0;
    let mut split_state = false;
    for batch in &out {
        let seq = batch.column(0).as_primitive::<Int64Type>();
        for s in seq.values() {
            assert_eq!(*s, next, "every row once, in order");
            next += 1;
        }
        // Each instance counts only the rows it saw: two instances worked.
        let before = batch
            .column_by_name("rows_before")
            .unwrap()
            .as_primitive::<Int64Type>();
        split_state |= before.value(0) != seq.value(0);
    }
    assert_eq!(next, 200_000);
    assert!(split_state, "all batches ran on one instance");
}

#[test]
fn parallelism_zero_is_a_manifest_error_naming_the_key() {
    let scratch = Scratch::new();
    let err = scratch.run(&stamped(0)).unwrap_err().to_string();
    assert!(
        err.contains("parallelism") && err.contains("at least 1") && err.contains("pipeline.toml:"),
        "{err}"
    );
}
