//! The C, Python and JavaScript helpers on weir:plugin@0.2.0
//! (`plugin-sdk/{c,python,js}`): every type pyarrow writes decodes to the
//! language's values (checked against pyarrow's own `to_pylist` for C and
//! Python), the types they can write come back exact, and `describe` lets
//! `weir check` see through the node. The plugins are
//! `tests/plugins/{c,python,js}-types`, built by `weir plugin build` like a
//! user's.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::datatypes::DataType;
use weir_tests::{repo, toml_path, Scratch};

use crate::contract_v0_2::{batches, every_type, files, node, run_each};
use crate::languages::cli_build;

fn build(lang: &str) -> PathBuf {
    cli_build(
        &repo().join(format!("tests/plugins/{lang}-types")),
        &repo().join("target/example-plugins"),
    )
}

fn python() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build("python"))
}

fn js() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build("js"))
}

fn c() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build("c"))
}

/// pyarrow's IPC files of the types the helper writes back.
const WRITABLE: &[&str] = &[
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "utf8",
    "large_utf8",
    "binary",
    "large_binary",
    "date32",
    "date64",
    "time32_s",
    "time32_ms",
    "time64_us",
    "time64_ns",
    "timestamp_s",
    "timestamp_ms",
    "timestamp_us",
    "timestamp_ns",
    "timestamp_s_berlin",
    "timestamp_ms_berlin",
    "timestamp_us_berlin",
    "timestamp_ns_berlin",
    "duration_s",
    "duration_ms",
    "duration_us",
    "duration_ns",
    "decimal32",
    "decimal64",
    "decimal128",
    "decimal256",
    "list",
    "large_list",
    "struct",
    "struct_of_lists",
];

/// Each file through `plugin` in `mode` equals it without one.
fn crosses_unchanged(plugin: &Path, files: &[PathBuf], mode: &str) {
    let direct = Scratch::new();
    run_each(&direct, files, None);
    let through = Scratch::new();
    run_each(&through, files, Some((plugin, mode)));
    for file in files {
        let name = format!("out/{}.arrow", node(file));
        let (want, got) = (batches(&direct.path(&name)), batches(&through.path(&name)));
        assert!(!want.is_empty(), "{name}: no rows at all");
        assert_eq!(got, want, "{mode}: {name}");
    }
}

fn writable() -> Vec<PathBuf> {
    WRITABLE
        .iter()
        .map(|name| every_type().join(format!("{name}.arrow")))
        .collect()
}

#[test]
fn a_python_plugin_writes_back_what_it_decoded_bit_for_bit() {
    crosses_unchanged(python(), &writable(), "copy");
}

#[test]
fn a_js_plugin_writes_back_what_it_decoded_bit_for_bit() {
    crosses_unchanged(js(), &writable(), "copy");
}

/// The C helper writes every type (a plugin describes any column in the
/// struct it reads columns in): strings, lists, decimals and dictionary
/// keys rebuilt value by value through the accessors, into the plugin's
/// own arrays.
#[test]
fn a_c_plugin_writes_back_every_type_it_read_bit_for_bit() {
    crosses_unchanged(c(), &files(".arrow"), "copy");
}

/// All 60 files in one pipeline: 60 nodes of the same plugin at once (a
/// CPython instance holds ~17 core instances of the engine's pool).
fn decodes_every_type(plugin: &Path) {
    crosses_unchanged(plugin, &files(".arrow"), "read");
}

#[test]
fn a_python_plugin_decodes_every_type_and_leaves_the_batch_unchanged() {
    decodes_every_type(python());
}

#[test]
fn a_js_plugin_decodes_every_type_and_leaves_the_batch_unchanged() {
    decodes_every_type(js());
}

/// pyarrow's IPC files the helper decodes to the values pyarrow's
/// `to_pylist` gives (temporal types as integers).
const READABLE: &[&str] = &[
    "null",
    "float16",
    "float32",
    "decimal32",
    "decimal256",
    "utf8_view",
    "binary_view",
    "fixed_size_binary",
    "large_utf8",
    "date64",
    "time64_ns",
    "timestamp_ms_berlin",
    "interval_month_day_nano",
    "list",
    "large_list",
    "fixed_size_list",
    "list_view",
    "struct",
    "map",
    "dictionary",
    "dictionary_large",
    "list_struct_map",
    "list_of_dictionary",
    "struct_of_lists",
];

#[test]
fn python_values_decoded_by_the_helper_equal_pyarrows_to_pylist() {
    values_equal_pyarrows(python(), READABLE, "python");
}

/// pyarrow's IPC files of the conformance subset the C helper reads
/// (decimals, lists, structs, maps, dictionaries, large and view strings).
const C_READABLE: &[&str] = &[
    "decimal32",
    "decimal64",
    "decimal128",
    "decimal256",
    "large_utf8",
    "utf8_view",
    "list",
    "large_list",
    "fixed_size_list",
    "list_view",
    "struct",
    "map",
    "dictionary",
    "dictionary_large",
    "list_struct_map",
    "list_of_dictionary",
    "struct_of_lists",
];

#[test]
fn c_values_read_through_the_helper_equal_pyarrows_to_pylist() {
    values_equal_pyarrows(c(), C_READABLE, "c");
}

/// Each file through `plugin` in `show` mode, which adds what the helper
/// read of column `v`; `tests/reference/helper_values.py LANG` compares it
/// with pyarrow's `to_pylist` of `v`.
fn values_equal_pyarrows(plugin: &Path, names: &[&str], lang: &str) {
    let files: Vec<PathBuf> = names
        .iter()
        .map(|name| every_type().join(format!("{name}.arrow")))
        .collect();
    let scratch = Scratch::new();
    run_each(&scratch, &files, Some((plugin, "show")));
    let outputs: Vec<PathBuf> = files
        .iter()
        .map(|f| scratch.path(&format!("out/{}.arrow", node(f))))
        .collect();
    let check = std::process::Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("tests/reference/helper_values.py"))
        .arg(lang)
        .args(&outputs)
        .output()
        .expect("running helper_values.py (scripts/setup --test makes .venv)");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && said.matches("values equal").count() == files.len(),
        "the {lang} helper's values differ from pyarrow's:\n{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A dictionary column asked for as WEIR_UTF8 arrives decoded.
#[test]
fn a_c_plugin_asking_for_utf8_gets_a_dictionary_column_decoded() {
    let file = every_type().join("dictionary.arrow");
    let scratch = Scratch::new();
    run_each(
        &scratch,
        std::slice::from_ref(&file),
        Some((c(), "decoded")),
    );
    for batch in batches(&scratch.path(&format!("out/{}.arrow", node(&file)))) {
        let want =
            arrow::compute::cast(batch.column_by_name("v").unwrap(), &DataType::LargeUtf8).unwrap();
        assert_eq!(batch.column_by_name("v_decoded").unwrap(), &want);
    }
}

#[test]
fn weir_check_sees_through_a_c_plugin_that_describes_its_output() {
    sees_through(c());
}

#[test]
fn weir_check_sees_through_a_python_plugin_that_describes_its_output() {
    sees_through(python());
}

#[test]
fn weir_check_sees_through_a_js_plugin_that_describes_its_output() {
    sees_through(js());
}

fn sees_through(plugin: &Path) {
    let scratch = Scratch::new();
    scratch.write("orders.csv", "id,amount\n1,12.34\n2,-0.5\n3,\n");
    let manifest = format!(
        "[sources.orders]\ntype = \"csv\"\npath = \"orders.csv\"\n\
         schema = [{{ name = \"id\", type = \"int64\" }}, {{ name = \"amount\", type = \"decimal(12,2)\" }}]\n\n\
         [transforms.cents]\nplugin = {}\ninputs = [\"orders\"]\nconfig = {{ mode = \"cents\" }}\n\n\
         [sinks.out]\ntype = \"ipc\"\ninputs = [\"cents\"]\npath = \"out.arrow\"\n",
        toml_path(plugin)
    );
    let prepared = scratch.check(&manifest).unwrap();
    let schema = prepared
        .schemas
        .get("cents")
        .cloned()
        .flatten()
        .expect("the Python node's schema is known before data");
    let types: Vec<(String, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    assert_eq!(
        types,
        [
            ("id".to_string(), DataType::Int64),
            ("amount".to_string(), DataType::Decimal128(12, 2)),
            ("cents".to_string(), DataType::Int64),
        ]
    );
    scratch.run(&manifest).unwrap();
    let out = weir_tests::read_ipc(&scratch.path("out.arrow")).unwrap();
    let cents = out.column_by_name("cents").unwrap();
    let cents = cents
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    assert_eq!(
        cents.iter().collect::<Vec<_>>(),
        [Some(1234), Some(-50), None]
    );
}
