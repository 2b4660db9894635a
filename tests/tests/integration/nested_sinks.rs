//! Nested, decimal and dictionary columns into the sinks whose format has
//! no such type — CSV, NDJSON, SQLite, PostgreSQL — checked against
//! pyarrow's reading of the same source by a Python reader of each output
//! (`tests/reference/check_sinks.py`: the csv module, json, sqlite3, psql).

use weir_tests::{postgres_url, repo, toml_path, unique_table, Scratch};

use crate::contract_v0_2::every_type;

/// pyarrow's every-type files these sinks can't write natively.
const TYPES: &[&str] = &[
    "decimal128",
    "decimal256",
    "list",
    "large_list",
    "fixed_size_list",
    "struct",
    "map",
    "dictionary",
    "dictionary_large",
    "list_struct_map",
    "struct_of_lists",
    "list_of_dictionary",
];

#[test]
fn nested_decimal_and_dictionary_columns_reach_csv_ndjson_sqlite_and_postgres_as_pyarrow_reads_them(
) {
    let scratch = Scratch::new();
    let prefix = unique_table("sinks");
    let mut manifest = String::new();
    for t in TYPES {
        let source = every_type().join(format!("{t}.arrow"));
        manifest.push_str(&format!(
            "[sources.{t}]\ntype = \"ipc\"\npath = {}\n\n\
             [sinks.{t}_csv]\ntype = \"csv\"\ninputs = [\"{t}\"]\npath = \"out/{t}.csv\"\n\n\
             [sinks.{t}_ndjson]\ntype = \"ndjson\"\ninputs = [\"{t}\"]\npath = \"out/{t}.ndjson\"\n\n\
             [sinks.{t}_sqlite]\ntype = \"sqlite\"\ninputs = [\"{t}\"]\npath = \"out/{t}.sqlite\"\ntable = \"t\"\n\n\
             [sinks.{t}_pg]\ntype = \"postgres\"\ninputs = [\"{t}\"]\nurl = \"{}\"\ntable = \"{prefix}_{t}\"\n\n",
            toml_path(&source),
            postgres_url()
        ));
    }
    scratch.run(&manifest).expect("every sink takes every type");
    let out = std::process::Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("tests/reference/check_sinks.py"))
        .arg(every_type())
        .arg(scratch.path("out"))
        .arg(postgres_url())
        .arg(&prefix)
        .args(TYPES)
        .output()
        .expect("running check_sinks.py (scripts/setup --test makes .venv)");
    assert!(
        out.status.success(),
        "what the sinks wrote differs from pyarrow's reading:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
