//! `rename`: normalise column names.
//!
//! ```toml
//! [transforms.names]
//! plugin = "plugins/rename.wasm"
//! inputs = ["orders"]
//! # "snake" (default): "Order ID" -> "order_id", "Amount (USD)" -> "amount_usd";
//! # "lower": lower-case only; "none": only the explicit map.
//! config = { case = "snake", map = { "Cust. Name" = "customer" } }
//! ```
//!
//! Names in `map` win over `case`. Only names cross the boundary: the data
//! stays in the host.

use std::collections::{BTreeMap, HashSet};

use weir_plugin_sdk::prelude::*;

/// How to change names not in `map`.
#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    /// Lower-case; runs of anything but letters and digits become one `_`;
    /// no leading or trailing `_`.
    #[default]
    Snake,
    /// Lower-case only.
    Lower,
    /// Leave names alone (only `map` applies).
    None,
}

/// The `config` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `case`: `"snake"` (default), `"lower"` or `"none"`.
    #[serde(default)]
    case: Case,
    /// `map`: explicit renames, old name → new name.
    #[serde(default)]
    map: BTreeMap<String, String>,
}

/// `name` in snake case: `"Order ID"` → `"order_id"`.
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

fn new_name(config: &Config, name: &str) -> String {
    if let Some(to) = config.map.get(name) {
        return to.clone();
    }
    match config.case {
        Case::Snake => snake(name),
        Case::Lower => name.to_lowercase(),
        Case::None => name.to_string(),
    }
}

/// (old, new) for every column that changes; an error if two columns
/// would end up with one name.
fn plan(config: &Config, input: &Schema) -> Result<Vec<(String, String)>> {
    let mut seen = HashSet::new();
    let mut renames = Vec::new();
    for field in input.fields() {
        let to = new_name(config, field.name());
        if to.is_empty() {
            return Err(Error::msg(format!(
                "rename: column {:?} would get an empty name",
                field.name()
            )));
        }
        if !seen.insert(to.clone()) {
            return Err(Error::msg(format!(
                "rename: two columns would both be called {to:?}; add one of them to `map`"
            )));
        }
        if &to != field.name() {
            renames.push((field.name().clone(), to));
        }
    }
    Ok(renames)
}

struct Rename {
    config: Config,
}

impl Transform for Rename {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        Ok(Rename { config })
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        for from in config.map.keys() {
            if input.index_of(from).is_err() {
                return Err(Error::msg(format!(
                    "rename: `map` names column {from:?}, which the input doesn't have"
                )));
            }
        }
        let renames = plan(config, input)?;
        let fields: Vec<Field> = input
            .fields()
            .iter()
            .map(|f| {
                let to = renames
                    .iter()
                    .find(|(from, _)| from == f.name())
                    .map(|(_, to)| to.clone());
                let field = f.as_ref().clone();
                match to {
                    Some(to) => field.with_name(to),
                    None => field,
                }
            })
            .collect();
        Ok(Some(Schema::new(fields)))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        let out = plan(&self.config, &input.schema())?
            .into_iter()
            .fold(Output::pass(), |out, (from, to)| {
                out.rename_column(from, to)
            });
        Ok(vec![out])
    }
}

weir_plugin_sdk::export!(Rename);
