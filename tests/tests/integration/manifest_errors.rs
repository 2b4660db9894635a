//! Every bad manifest fails before any data moves, naming file, line and key.

use weir::Error;
use weir_tests::{plugins, toml_path, Scratch};

/// Runs `check` on `manifest` and returns the error text.
fn error_of(scratch: &Scratch, manifest: &str) -> String {
    let err = scratch
        .check(manifest)
        .err()
        .expect("the manifest must be rejected");
    err.to_string()
}

/// 1-based line of the first line containing `needle`.
fn line_of(manifest: &str, needle: &str) -> usize {
    manifest
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

fn assert_located(text: &str, manifest: &str, needle: &str) {
    let at = format!("pipeline.toml:{}", line_of(manifest, needle));
    assert!(text.contains(&at), "expected {at} in: {text}");
}

const CSV: &str = "id,amount\n1,2.0\n";

#[test]
fn unknown_key_in_a_source_names_its_line_and_the_valid_keys() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\ndelimitr = \";\"\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"in\"]\n";
    let text = error_of(&scratch, m);
    assert_located(&text, m, "delimitr");
    assert!(
        text.contains("`delimitr`") && text.contains("delimiter"),
        "{text}"
    );
}

#[test]
fn unknown_key_in_a_transform_is_rejected() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = format!(
        "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = {}\ninputs = [\"in\"]\nconfg = {{}}\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n",
        toml_path(plugins::SELECT.as_ref())
    );
    let text = error_of(&scratch, &m);
    assert_located(&text, &m, "confg");
}

#[test]
fn unknown_source_type_lists_the_known_ones() {
    let scratch = Scratch::new();
    let m = "[sources.in]\ntype = \"xlsx\"\npath = \"in.xlsx\"\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"in\"]\n";
    let text = error_of(&scratch, m);
    assert_located(&text, m, "xlsx");
    assert!(text.contains("csv") && text.contains("parquet"), "{text}");
}

#[test]
fn input_naming_no_node_is_an_error_at_the_inputs_line() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"nope\"]\n";
    let text = error_of(&scratch, m);
    assert_located(&text, m, "inputs");
    assert!(
        text.contains("\"nope\"") && text.contains("known: in"),
        "{text}"
    );
}

#[test]
fn sink_without_inputs_says_how_to_fix_it() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[sinks.out]\ntype = \"stdout\"\n";
    let text = error_of(&scratch, m);
    assert_located(&text, m, "[sinks.out]");
    assert!(text.contains("inputs"), "{text}");
}

#[test]
fn cycle_between_transforms_is_rejected() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let p = toml_path(plugins::SELECT.as_ref());
    let m = format!(
        "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.a]\nplugin = {p}\ninputs = [\"in\", \"b\"]\n\n[transforms.b]\nplugin = {p}\ninputs = [\"a\"]\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"b\"]\n"
    );
    let text = error_of(&scratch, &m);
    assert!(text.contains("cycle") && text.contains("a, b"), "{text}");
    assert!(text.contains("pipeline.toml:"), "{text}");
}

#[test]
fn missing_plugin_file_names_the_plugin_line() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = \"missing.wasm\"\ninputs = [\"in\"]\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n";
    let text = error_of(&scratch, m);
    assert_located(&text, m, "missing.wasm");
    assert!(text.contains("not found"), "{text}");
}

#[test]
fn core_module_is_rejected_as_not_a_component() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    scratch.write("core.wasm", b"\0asm\x01\0\0\0");
    let m = "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = \"core.wasm\"\ninputs = [\"in\"]\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n";
    let text = error_of(&scratch, m);
    assert_located(&text, m, "core.wasm");
    assert!(text.contains("not a component"), "{text}");
}

#[test]
fn component_without_the_weir_exports_is_rejected() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    // The smallest valid component: no imports, no exports.
    scratch.write("empty.wasm", b"\0asm\x0d\0\x01\0");
    let m = "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = \"empty.wasm\"\ninputs = [\"in\"]\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n";
    let text = error_of(&scratch, m);
    assert_located(&text, m, "empty.wasm");
    assert!(
        text.contains("exports no weir:plugin transform")
            && text.contains("weir:plugin@0.2.0 or @0.1.0"),
        "{text}"
    );
}

#[test]
fn config_the_plugin_rejects_names_the_config_line() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = format!(
        "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = {}\ninputs = [\"in\"]\nconfig = {{ keys = [\"id\"] }}\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n",
        toml_path(plugins::DEDUPE.as_ref())
    );
    let text = error_of(&scratch, &m);
    assert!(text.contains("unknown field `keys`"), "{text}");
    assert!(text.contains("pipeline.toml:"), "{text}");
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    let scratch = Scratch::new();
    let m = "[sources.in]\ntype = \"csv\"\npath = in.csv\n";
    let text = error_of(&scratch, m);
    assert!(text.contains("pipeline.toml:3:"), "{text}");
}

#[test]
fn node_names_must_be_unique_across_sections() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = "[sources.x]\ntype = \"csv\"\npath = \"in.csv\"\n\n[sinks.x]\ntype = \"stdout\"\ninputs = [\"x\"]\n";
    let text = error_of(&scratch, m);
    assert!(text.contains("unique"), "{text}");
}

#[test]
fn reading_from_a_sink_is_rejected() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[sinks.a]\ntype = \"stdout\"\ninputs = [\"in\"]\n\n[sinks.b]\ntype = \"stdout\"\ninputs = [\"a\"]\n";
    let text = error_of(&scratch, m);
    assert!(text.contains("is a sink"), "{text}");
}

#[test]
fn manifest_errors_are_typed_as_manifest_errors() {
    let scratch = Scratch::new();
    let err = scratch.check("[nonsense]\n").err().expect("rejected");
    assert!(matches!(err, Error::Manifest(_)), "{err}");
}

#[test]
fn an_unknown_policy_value_names_the_key_that_holds_it_and_its_line() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let m = format!(
        "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = {}\ninputs = [\"in\"]\nconfig = {{ columns = [\"id\"] }}\non_error = \"ignore\"\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n",
        toml_path(plugins::SELECT.as_ref())
    );
    let text = error_of(&scratch, &m);
    assert_located(&text, &m, "on_error");
    assert!(
        text.contains("key `on_error`") && !text.contains("key `type`"),
        "{text}"
    );
}

#[test]
fn a_plugin_config_error_names_the_config_key_and_its_manifest_line() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "id,at\n1,2024-01-01 05:37:46\n");
    let m = format!(
        "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[transforms.t]\nplugin = {}\ninputs = [\"in\"]\nconfig = {{ columns = [\"at\"],\n           timezone = \"Europe/Pariss\" }}\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"t\"]\n",
        toml_path(plugins::PARSE_TIME.as_ref())
    );
    let text = error_of(&scratch, &m);
    assert_located(&text, &m, "Europe/Pariss");
    assert!(
        text.contains("key `config.timezone`")
            && text.contains("unknown time zone \"Europe/Pariss\"")
            && !text.contains("column"),
        "{text}"
    );
}

#[test]
fn a_declared_timestamp_zone_that_does_not_exist_is_a_manifest_error() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "id,at\n1,2024-01-01T05:37:46\n");
    let m = "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\nschema = [{ name = \"at\", type = 'Timestamp(Microsecond, Some(\"Europe/Pariss\"))' }]\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"in\"]\n";
    let text = error_of(&scratch, m);
    assert_located(&text, m, "schema");
    assert!(text.contains("unknown time zone"), "{text}");
}
