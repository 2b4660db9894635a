//! `select`: keep only the listed columns, in the listed order.
//!
//! ```toml
//! [transforms.pick]
//! plugin = "plugins/select.wasm"
//! inputs = ["orders"]
//! config = { columns = ["id", "amount", "customer.country", "customer.id as customer_id"] }
//! ```
//!
//! A struct's field is picked by path (`customer.country`) and named by
//! its own name (`country`) or by `as`. Plain columns move no data: the
//! host reorders them; a picked field crosses back as a new column.

use weir_plugin_sdk::arrow_schema::FieldRef;
use weir_plugin_sdk::path;
use weir_plugin_sdk::prelude::*;

/// The `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Output columns, in order: input columns, or struct fields by path,
    /// each optionally `… as name`.
    columns: Vec<String>,
}

/// One output column: where it comes from, what it is called.
struct Pick {
    source: String,
    name: String,
    field: FieldRef,
    /// An input column (moves no data), not a struct field.
    column: bool,
}

struct Select {
    columns: Vec<String>,
}

/// `"customer.id as id"` → ("customer.id", Some("id")).
fn split_as(spec: &str) -> (&str, Option<&str>) {
    let lower = spec.to_ascii_lowercase();
    match lower.rfind(" as ") {
        Some(i) => (spec[..i].trim(), Some(spec[i + 4..].trim())),
        None => (spec.trim(), None),
    }
}

fn plan(input: &Schema, columns: &[String]) -> Result<Vec<Pick>> {
    let mut picks: Vec<Pick> = Vec::new();
    for spec in columns {
        let (source, alias) = split_as(spec);
        let field = path::field(input, source)
            .ok_or_else(|| Error::msg(format!("select: no column {source:?} in the input")))?;
        let name = alias.unwrap_or(field.name()).to_string();
        if picks.iter().any(|p| p.name == name) {
            return Err(Error::msg(format!(
                "select: two picked columns would both be called {name:?}; name one with `… as other`"
            )));
        }
        picks.push(Pick {
            source: source.to_string(),
            name,
            field,
            column: input.index_of(source).is_ok(),
        });
    }
    Ok(picks)
}

impl Transform for Select {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        if config.columns.is_empty() {
            return Err(Error::msg(
                "select: `columns` must name at least one column",
            ));
        }
        Ok(Select {
            columns: config.columns,
        })
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        let fields: Vec<Field> = plan(input, &config.columns)?
            .into_iter()
            .map(|p| p.field.as_ref().clone().with_name(p.name))
            .collect();
        Ok(Some(Schema::new(fields)))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        let picks = plan(&input.schema(), &self.columns)?;
        let mut out = Output::pass();
        for pick in &picks {
            if !pick.column {
                out = out.with_column(&pick.name, input.array_by_path(&pick.source)?);
            } else if pick.name != pick.source {
                out = out.rename_column(&pick.source, &pick.name);
            }
        }
        // Only names cross the boundary for input columns: the host
        // reorders them.
        Ok(vec![
            out.project(picks.into_iter().map(|p| p.name).collect())
        ])
    }
}

weir_plugin_sdk::export!(Select);
