//! What a newcomer hits in the first hour, each as it should be: messages
//! that say what is wrong and what to do, defaults that match the tools
//! they come from.

use weir_tests::{plugins, read_ipc, toml_path, Scratch};

use crate::process::weir;

fn check_error(scratch: &Scratch, manifest: &str) -> String {
    scratch
        .check(manifest)
        .err()
        .expect("the manifest must be rejected")
        .to_string()
}

fn with_plugin(plugin: &std::path::Path) -> String {
    format!(
        "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = {}\ninputs = [\"in\"]\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n",
        toml_path(plugin)
    )
}

#[test]
fn a_plugin_path_that_is_a_folder_of_sources_says_so_and_how_to_build_it() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "id\n1\n");
    scratch.write("mine/plugin.py", "import weir\n");
    let text = check_error(&scratch, &with_plugin(&scratch.path("mine")));
    assert!(
        text.contains("a folder holding a python plugin's sources")
            && text.contains(&format!(
                "weir plugin build {}",
                scratch.path("mine").display()
            )),
        "{text}"
    );
    assert!(
        !text.contains("not found") && !text.contains("no such file"),
        "{text}"
    );
}

#[test]
fn a_plugin_path_that_is_a_source_file_says_so_and_how_to_build_it() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "id\n1\n");
    scratch.write("mine/src/lib.rs", "// a plugin\n");
    let text = check_error(&scratch, &with_plugin(&scratch.path("mine/src/lib.rs")));
    assert!(
        text.contains("a Rust source file, not a WebAssembly component")
            && text.contains(&format!(
                "weir plugin build {}",
                scratch.path("mine").display()
            )),
        "{text}"
    );
}

#[test]
fn ndjson_sources_keep_the_column_order_of_the_records() {
    let scratch = Scratch::new();
    scratch.write(
        "in.ndjson",
        "{\"zone\": \"eu\", \"id\": 1, \"amount\": 2.5}\n{\"zone\": \"us\", \"id\": 2, \"amount\": 1.0, \"note\": \"x\"}\n",
    );
    scratch
        .run(
            r#"
            [sources.in]
            type = "ndjson"
            path = "in.ndjson"

            [sinks.out]
            type = "ipc"
            inputs = ["in"]
            path = "out.arrow"
            "#,
        )
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let names: Vec<String> = out
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["zone", "id", "amount", "note"],
        "as pandas and DuckDB read it"
    );
}

#[test]
fn check_refuses_a_column_the_sink_cannot_hold_naming_it_and_the_sink_line() {
    let scratch = Scratch::new();
    let durations = crate::contract_v0_2::every_type().join("duration_s.arrow");
    let manifest = format!(
        "[sources.in]\ntype = \"ipc\"\npath = {}\n\n[sinks.db]\ntype = \"sqlite\"\ninputs = [\"in\"]\npath = \"out.db\"\ntable = \"orders\"\n",
        toml_path(&durations)
    );
    let text = check_error(&scratch, &manifest);
    assert!(
        text.contains("pipeline.toml:7")
            && text.contains("[sinks.db]")
            && text.contains("column \"v\" is Duration")
            && text.contains("SQLite can't hold"),
        "{text}"
    );
    assert!(!scratch.path("out.db").exists(), "nothing was written");
}

#[test]
fn a_nested_json_object_lands_in_sqlite_as_json_its_json_functions_read() {
    let scratch = Scratch::new();
    scratch.write(
        "in.ndjson",
        "{\"id\": 1, \"customer\": {\"name\": \"ana\", \"city\": \"Oslo\"}, \"items\": [2, 3]}\n",
    );
    let manifest = "[sources.in]\ntype = \"ndjson\"\npath = \"in.ndjson\"\n\n[sinks.db]\ntype = \"sqlite\"\ninputs = [\"in\"]\npath = \"out.db\"\ntable = \"orders\"\n";
    scratch
        .run(manifest)
        .expect("SQLite holds a struct as JSON text");
    let db = rusqlite::Connection::open(scratch.path("out.db")).unwrap();
    let (city, second): (String, i64) = db
        .query_row(
            "SELECT json_extract(customer, '$.city'), json_extract(items, '$[1]') FROM orders",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((city.as_str(), second), ("Oslo", 3));
}

#[test]
fn filter_messages_show_values_as_the_user_wrote_them() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "status,amount\n200,1.5\n");
    let manifest = format!(
        "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = {}\ninputs = [\"in\"]\nconfig = {{ predicate = \"amount > '500'\" }}\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n",
        toml_path(plugins::FILTER.as_ref())
    );
    let text = check_error(&scratch, &manifest);
    assert!(
        text.contains("with '500'") && !text.contains("Str("),
        "{text}"
    );
}

#[test]
fn version_names_the_wit_world_wasmtime_and_arrow() {
    let out = weir().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(env!("CARGO_PKG_VERSION"))
            && text.contains("weir:plugin@0.1.0")
            && text.contains("wasmtime 48.0.8")
            && text.contains("arrow 60.1.0"),
        "{text}"
    );
}
