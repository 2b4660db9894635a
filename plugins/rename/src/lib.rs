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
//! stays in the host — but for `flatten = true`, which replaces each struct
//! column by its fields (`customer: {country}` → `customer_country`, to
//! any depth; `map` may name a field by path, `"customer.country" =
//! "country"`), the fields crossing back as columns.

use std::collections::{BTreeMap, HashSet};

use weir_plugin_sdk::arrow_schema::FieldRef;
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
    /// `flatten`: replace struct columns by their fields (default false).
    #[serde(default)]
    flatten: bool,
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

/// One output column.
struct Column {
    /// The input column, or a struct field's path (`customer.country`).
    from: String,
    to: String,
    field: FieldRef,
    /// A struct's field, brought up by `flatten`.
    flattened: bool,
}

/// Every output column, in order; an error if two would share a name.
fn plan(config: &Config, input: &Schema) -> Result<Vec<Column>> {
    let mut columns = Vec::new();
    for field in input.fields() {
        flatten_into(
            config,
            field,
            field.name(),
            field.name(),
            false,
            &mut columns,
        );
    }
    let mut seen = HashSet::new();
    for c in &columns {
        if c.to.is_empty() {
            return Err(Error::msg(format!(
                "rename: column {:?} would get an empty name",
                c.from
            )));
        }
        if !seen.insert(c.to.clone()) {
            return Err(Error::msg(format!(
                "rename: two columns would both be called {:?}; add one of them to `map`",
                c.to
            )));
        }
    }
    Ok(columns)
}

/// `field` (at `path`, its flat name so far `flat`) as output columns: its
/// leaves when flattening a struct, itself otherwise.
fn flatten_into(
    config: &Config,
    field: &FieldRef,
    path: &str,
    flat: &str,
    flattened: bool,
    out: &mut Vec<Column>,
) {
    if let (true, DataType::Struct(children)) = (config.flatten, field.data_type()) {
        for child in children {
            let path = format!("{path}.{}", child.name());
            let flat = format!("{flat}_{}", child.name());
            flatten_into(config, child, &path, &flat, true, out);
        }
        return;
    }
    let to = match config.map.get(path) {
        Some(to) => to.clone(),
        None => new_name(config, flat),
    };
    out.push(Column {
        from: path.to_string(),
        to,
        field: field.clone(),
        flattened,
    });
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
            if weir_plugin_sdk::path::field(input, from).is_none() {
                return Err(Error::msg(format!(
                    "rename: `map` names column {from:?}, which the input doesn't have"
                )));
            }
            if input.index_of(from).is_err() && !config.flatten {
                return Err(Error::msg(format!(
                    "rename: `map` names struct field {from:?}; set `flatten = true` to bring \
                     fields up as columns"
                )));
            }
        }
        let fields: Vec<Field> = plan(config, input)?
            .into_iter()
            .map(|c| c.field.as_ref().clone().with_name(c.to))
            .collect();
        Ok(Some(Schema::new(fields)))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        let columns = plan(&self.config, &input.schema())?;
        let mut out = Output::pass();
        for c in &columns {
            if c.flattened {
                out = out.with_column(&c.to, input.array_by_path(&c.from)?);
            } else if c.to != c.from {
                out = out.rename_column(&c.from, &c.to);
            }
        }
        if columns.iter().any(|c| c.flattened) {
            // The struct columns go; their fields take their place.
            out = out.project(columns.into_iter().map(|c| c.to).collect());
        }
        Ok(vec![out])
    }
}

weir_plugin_sdk::export!(Rename);
