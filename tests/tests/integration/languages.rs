//! Plugins in every language weir builds: the `positive-amounts` example
//! (examples/positive-amounts/{rust,c,js,python}) built from source by
//! `weir plugin build`, and each language's scaffold from `weir plugin new`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
use weir_plugin_build::{self as build, Language};
use weir_tests::{read_parquet, repo, toml_path, Scratch};

/// The four languages, with the example's directory under
/// examples/positive-amounts.
const LANGUAGES: [(&str, Language); 4] = [
    ("rust", Language::Rust),
    ("c", Language::C),
    ("js", Language::JavaScript),
    ("python", Language::Python),
];

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir-under-test"))
}

/// Builds the plugin at `dir` into `out` with `weir plugin build` (the
/// shared guest target dir keeps Rust's SDK dependencies built once);
/// returns the component.
pub(crate) fn cli_build(dir: &Path, out: &Path) -> PathBuf {
    let built = weir()
        .args(["plugin", "build"])
        .arg(dir)
        .arg("--out")
        .arg(out)
        .arg("--target-dir")
        .arg(repo().join("target/guest"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(
        built.status.success(),
        "building {}: {}{stdout}",
        dir.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let path = last.split(" (").next().unwrap().trim();
    PathBuf::from(path)
}

/// The example in `lang`, built once per test binary.
fn example(lang: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    // Held across the build: two tests must not build into one staging dir.
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    built
        .entry(lang.to_string())
        .or_insert_with(|| {
            cli_build(
                &repo().join("examples/positive-amounts").join(lang),
                &repo().join("target/example-plugins"),
            )
        })
        .clone()
}

/// Orders with the amounts that break naive ports: halves (Python's
/// round() is half-to-even, JavaScript's Math.round half-up), negative
/// zero, values beyond int64 cents, the largest representable near-half,
/// and nulls.
fn orders_csv() -> String {
    let special = [
        "0.125",
        "2.675",
        "0.005",
        "-0.005",
        "1.005",
        "0",
        "-0",
        "1e300",
        "-1e300",
        "92233720368547758.07",
        "0.0049999999999999999",
        "1e-300",
        "",
        "12.5",
    ];
    let mut csv = String::from("id,amount\n");
    let mut x: u64 = 42;
    for i in 0..20_000 {
        let amount = match special.get(i) {
            Some(s) => s.to_string(),
            None => {
                // A fixed pseudo-random walk: amounts in [-50, 450), 1 in 50 null.
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if (x >> 33).is_multiple_of(50) {
                    String::new()
                } else {
                    format!("{:.3}", ((x >> 11) % 500_000) as f64 / 1000.0 - 50.0)
                }
            }
        };
        csv.push_str(&format!("{i},{amount}\n"));
    }
    csv
}

fn pipeline(plugin: &Path, config: &str) -> String {
    format!(
        r#"
        [pipeline]
        batch_size = 3000

        [sources.orders]
        type = "csv"
        path = "orders.csv"

        [transforms.positive]
        plugin = {}
        inputs = ["orders"]
        config = {config}

        [sinks.out]
        type = "parquet"
        inputs = ["positive"]
        path = "out.parquet"
        "#,
        toml_path(plugin)
    )
}

#[test]
fn a_mistyped_column_in_a_host_evaluated_predicate_is_named_in_js_and_python() {
    for lang in ["js", "python"] {
        let scratch = Scratch::new();
        scratch.write("orders.csv", orders_csv());
        let err = scratch
            .run(&pipeline(&example(lang), r#"{ column = "amout" }"#))
            .expect_err(lang)
            .to_string();
        assert!(
            err.contains(r#"no column named "amout" (the batch has id, amount)"#),
            "{lang}: {err}"
        );
    }
}

#[test]
fn positive_amounts_writes_byte_identical_parquet_in_rust_c_js_and_python() {
    let mut outputs = Vec::new();
    for (lang, _) in LANGUAGES {
        let scratch = Scratch::new();
        scratch.write("orders.csv", orders_csv());
        scratch
            .run(&pipeline(&example(lang), "{}"))
            .unwrap_or_else(|e| panic!("{lang}: {e}"));
        outputs.push((lang, std::fs::read(scratch.path("out.parquet")).unwrap()));
        if lang == "rust" {
            // The reference itself is right: rows with amount > 0, in
            // order, and cents rounded half away from zero.
            let out = read_parquet(&scratch.path("out.parquet")).unwrap();
            let amount = out
                .column_by_name("amount")
                .unwrap()
                .as_primitive::<Float64Type>();
            let cents = out
                .column_by_name("amount_cents")
                .unwrap()
                .as_primitive::<Int64Type>();
            assert!(amount.iter().all(|a| a.is_some_and(|a| a > 0.0)));
            let expected = orders_csv()
                .lines()
                .skip(1)
                .filter(|l| {
                    l.split(',')
                        .nth(1)
                        .unwrap()
                        .parse::<f64>()
                        .is_ok_and(|a| a > 0.0)
                })
                .count();
            assert_eq!(out.num_rows(), expected);
            assert_eq!((amount.value(0), cents.value(0)), (0.125, 13));
            assert_eq!((amount.value(1), cents.value(1)), (2.675, 268));
            let huge = (0..out.num_rows())
                .find(|&i| amount.value(i) == 1e300)
                .unwrap();
            assert!(cents.is_null(huge), "out of int64 range is null");
        }
    }
    let (_, reference) = &outputs[0];
    for (lang, bytes) in &outputs[1..] {
        assert!(
            bytes == reference,
            "{lang}'s Parquet differs from Rust's ({} vs {} bytes)",
            bytes.len(),
            reference.len()
        );
    }
}

#[test]
fn every_language_logs_the_rows_it_saw_at_finish() {
    for (lang, _) in LANGUAGES {
        let scratch = Scratch::new();
        scratch.write("orders.csv", orders_csv());
        let manifest = scratch.write("pipeline.toml", pipeline(&example(lang), "{}"));
        let run = weir()
            .arg("run")
            .arg(&manifest)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{lang}: {stderr}");
        // State kept across the 7 batches, reported through the host's log.
        assert!(stderr.contains("saw 20000 rows"), "{lang}: {stderr}");
    }
}

/// Runs the example in every language with `config`; each run must fail
/// with an error containing `named`.
fn fails_in_every_language_naming(config: &str, named: &str) {
    for (lang, _) in LANGUAGES {
        let scratch = Scratch::new();
        scratch.write("orders.csv", orders_csv());
        let err = scratch
            .run(&pipeline(&example(lang), config))
            .expect_err(lang)
            .to_string();
        assert!(err.contains(named), "{lang}: {err}");
    }
}

#[test]
fn every_language_rejects_an_unknown_config_key_naming_it() {
    fails_in_every_language_naming(r#"{ colum = "amount" }"#, "colum");
}

#[test]
fn every_language_fails_the_batch_naming_a_missing_column() {
    fails_in_every_language_naming(r#"{ column = "price" }"#, "price");
}

/// `weir plugin new x --lang LANG`, then `weir plugin build`, then a run.
fn scaffold_builds_and_runs(lang: Language) {
    let scratch = Scratch::new();
    let new = weir()
        .args(["plugin", "new", "mine", "--lang", lang.name(), "--dir"])
        .arg(scratch.path(""))
        .output()
        .unwrap();
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    assert_eq!(Language::detect(&scratch.path("mine")).unwrap(), lang);
    let component = cli_build(&scratch.path("mine"), &scratch.path("built"));
    assert_eq!(component, scratch.path("built/mine.wasm"));
    scratch.write("orders.csv", "id,amount\n1,2.5\n2,-1\n3,\n4,0.01\n");
    scratch.run(&pipeline(&component, "{}")).unwrap();
    let out = read_parquet(&scratch.path("out.parquet")).unwrap();
    let cents = out
        .column_by_name("amount_cents")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(cents.values().to_vec(), vec![250, 1]);
    assert_eq!(cents.null_count(), 0);
}

#[test]
fn plugin_new_names_the_python_js_and_c_scaffolds_after_the_plugin() {
    let scratch = Scratch::new();
    for (lang, file) in [
        (Language::Python, "plugin.py"),
        (Language::JavaScript, "plugin.js"),
        (Language::C, "plugin.c"),
    ] {
        let dir = format!("{}-dir", lang.name());
        let new = weir()
            .args([
                "plugin",
                "new",
                "order-totals",
                "--lang",
                lang.name(),
                "--dir",
            ])
            .arg(scratch.path(&dir))
            .output()
            .unwrap();
        assert!(
            new.status.success(),
            "{}",
            String::from_utf8_lossy(&new.stderr)
        );
        let text =
            std::fs::read_to_string(scratch.path(&format!("{dir}/order-totals/{file}"))).unwrap();
        assert!(
            text.contains("order-totals") && !text.to_lowercase().contains("positive"),
            "{}: {text}",
            lang.name()
        );
        if lang == Language::Python {
            assert!(text.contains("class OrderTotals"), "{text}");
        }
    }
}

#[test]
fn a_python_plugin_error_names_the_exception_file_and_line() {
    let scratch = Scratch::new();
    let source = std::fs::read_to_string(repo().join("examples/positive-amounts/python/plugin.py"))
        .unwrap()
        .replace(
            "self.rows_seen += batch.num_rows",
            "self.rows_seen += batch.num_rowz",
        );
    let line = source.lines().position(|l| l.contains("num_rowz")).unwrap() + 1;
    scratch.write("typo/plugin.py", source);
    let component = cli_build(&scratch.path("typo"), &scratch.path("built"));
    scratch.write("orders.csv", orders_csv());
    let err = scratch
        .run(&pipeline(&component, "{}"))
        .expect_err("the typo fails the batch")
        .to_string();
    assert!(
        err.contains("AttributeError") && err.contains(&format!("plugin.py:{line} in process")),
        "{err}"
    );
}

#[test]
fn c_scaffold_builds_and_runs_as_is() {
    scaffold_builds_and_runs(Language::C);
}

#[test]
fn js_scaffold_builds_and_runs_as_is() {
    scaffold_builds_and_runs(Language::JavaScript);
}

#[test]
fn python_scaffold_builds_and_runs_as_is() {
    scaffold_builds_and_runs(Language::Python);
}

#[test]
fn a_compile_error_in_c_is_reported_with_the_compilers_message() {
    let scratch = Scratch::new();
    scratch.write("broken/plugin.c", "#include \"weir.h\"\nint oops( {\n");
    let out = scratch.path("built");
    let err = build::build_quietly(&scratch.path("broken"), &out, None)
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("plugin.c:2"), "{err}");
    assert!(!out.join("broken.wasm").exists());
}

#[test]
fn a_python_version_takes_over_the_rust_versions_row_count_mid_stream() {
    // Both keep their count as decimal text, so state crosses languages.
    let rust = std::fs::read(example("rust")).unwrap();
    let python = example("python");
    // Compiled ahead (into the shared disk cache the CLI reads), so the
    // swap doesn't wait for Cranelift.
    weir_tests::host().load(&python).unwrap();
    let scratch = Scratch::new();
    let plugin = scratch.write("plugin.wasm", &rust);
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            r#"
            [pipeline]
            batch_size = 100

            [sources.gen]
            type = "generate"
            rows = 8000
            # 8 s of input: room for the swap (cached Python component,
            # state handed over) to land even on a loaded machine.
            rate = 1000.0

            [transforms.positive]
            plugin = {}
            inputs = ["gen"]
            config = {{ column = "value" }}

            [sinks.out]
            type = "ipc"
            inputs = ["positive"]
            path = "out.arrow"
            "#,
            toml_path(&plugin)
        ),
    );
    let child = weir()
        .args(["run", "--watch"])
        .arg(&manifest)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Replace the plugin only once weir watches it: loading the Rust
    // version can take seconds on a loaded machine, and a change made
    // before the watcher starts is never seen.
    let mut child = child;
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !log.lock().unwrap().contains("watching for changes")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    weir_tests::replace(&plugin, &std::fs::read(&python).unwrap());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stderr = log.lock().unwrap().clone();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("swapped in the new version"), "{stderr}");
    // The Python version's finish counts every row, the Rust version's too.
    assert!(stderr.contains("saw 8000 rows"), "{stderr}");
}

#[test]
fn weir_check_sees_through_the_c_python_and_js_examples_by_their_describe() {
    for lang in ["c", "python", "js"] {
        let scratch = Scratch::new();
        scratch.write("orders.csv", orders_csv());
        let prepared = scratch
            .check(&pipeline(&example(lang), r#"{ column = "amount" }"#))
            .unwrap();
        let schema = prepared
            .schemas
            .get("positive")
            .cloned()
            .flatten()
            .unwrap_or_else(|| panic!("{lang}: the node's schema is known before data"));
        let cents = schema.field_with_name("amount_cents").unwrap();
        assert_eq!(
            cents.data_type(),
            &arrow::datatypes::DataType::Int64,
            "{lang}"
        );
    }
}
