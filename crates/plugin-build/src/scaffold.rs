//! `weir plugin new NAME [--lang LANG]`: a plugin that builds as is.
//!
//! Rust gets a crate on the SDK (a filter that adds `{column}_doubled`);
//! C, JavaScript and Python get the `positive-amounts` example of
//! `examples/`, the same transform in every language.

use std::path::{Path, PathBuf};

use crate::{Error, Language, Result};

/// The non-Rust scaffolds: `examples/positive-amounts/<lang>/plugin.<ext>`.
const PLUGIN_C: &str = include_str!("../../../examples/positive-amounts/c/plugin.c");
const PLUGIN_JS: &str = include_str!("../../../examples/positive-amounts/js/plugin.js");
const PLUGIN_PY: &str = include_str!("../../../examples/positive-amounts/python/plugin.py");

/// The SDK this weir was built from.
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugin-sdk");

const LIB_RS: &str = r#"//! A weir transform plugin: keeps rows whose `column` is above `min` and
//! adds `{column}_doubled`.

use std::sync::Arc;

use weir_plugin_sdk::prelude::*;

/// The node's `config` table in `pipeline.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// A float64 column to test.
    column: String,
    /// Rows with `column` above this are kept.
    #[serde(default)]
    min: f64,
}

struct Plugin {
    config: Config,
    rows_seen: u64,
}

impl Transform for Plugin {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        Ok(Plugin { config, rows_seen: 0 })
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        let field = input.field_with_name(&config.column)?;
        if field.data_type() != &DataType::Float64 {
            return Err(Error::msg(format!("{} must be float64", config.column)));
        }
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(format!("{}_doubled", config.column), DataType::Float64, true));
        Ok(Some(Schema::new(fields)))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        let values = input.column::<Float64Array>(&self.config.column)?;
        self.rows_seen += values.len() as u64;
        let keep: BooleanArray = values.iter().map(|v| Some(v.is_some_and(|v| v > self.config.min))).collect();
        let doubled: Float64Array = values.iter().map(|v| v.map(|v| v * 2.0)).collect();
        Ok(vec![Output::keep(&keep).with_column(
            format!("{}_doubled", self.config.column),
            Arc::new(doubled),
        )])
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        weir_plugin_sdk::log::info(&format!("saw {} rows", self.rows_seen));
        Ok(Vec::new())
    }
}

weir_plugin_sdk::export!(Plugin);
"#;

/// Creates the plugin `dir/name` in `language`; returns its path.
pub fn new_plugin(
    name: &str,
    dir: &Path,
    sdk: Option<&Path>,
    language: Language,
) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !valid {
        return Err(Error::Scaffold(format!(
            "plugin name {name:?}: use letters, digits, '-' and '_', starting with a letter"
        )));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(Error::Scaffold(format!(
            "{} already exists",
            root.display()
        )));
    }
    let (file, text) = match language {
        Language::Rust => return new_crate(name, &root, sdk),
        Language::C => ("plugin.c", PLUGIN_C),
        Language::JavaScript => ("plugin.js", PLUGIN_JS),
        Language::Python => ("plugin.py", PLUGIN_PY),
    };
    // The example's names become the plugin's own.
    let text = text
        .replace("PositiveAmounts", &camel_case(name))
        .replace("positive-amounts", name);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    write(&root.join(file), &text)?;
    write(&root.join(".gitignore"), "/target\n")?;
    Ok(root.to_path_buf())
}

/// `order-totals` / `order_totals` as `OrderTotals` (a class name).
fn camel_case(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A Rust crate at `root` with a Cargo.toml and src/lib.rs.
fn new_crate(name: &str, root: &Path, sdk: Option<&Path>) -> Result<PathBuf> {
    let sdk = match sdk {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(SDK_DIR),
    };
    let sdk = sdk.canonicalize().map_err(|e| {
        Error::Scaffold(format!(
            "weir's plugin-sdk not found at {} ({e}); pass --sdk PATH",
            sdk.display()
        ))
    })?;
    let cargo_toml = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
weir-plugin-sdk = {{ path = {sdk:?} }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"

# A plugin crate is built on its own, not as part of an enclosing workspace.
[workspace]
"#,
        sdk = sdk.display().to_string()
    );
    std::fs::create_dir_all(root.join("src")).map_err(|e| Error::io(root, e))?;
    write(&root.join("Cargo.toml"), &cargo_toml)?;
    write(&root.join("src/lib.rs"), LIB_RS)?;
    write(&root.join(".gitignore"), "/target\n")?;
    Ok(root.to_path_buf())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}
