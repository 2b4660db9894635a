//! `select`: keep only the listed columns, in the listed order.
//!
//! ```toml
//! [transforms.pick]
//! plugin = "plugins/select.wasm"
//! inputs = ["orders"]
//! config = { columns = ["id", "amount"] }
//! ```

use weir_plugin_sdk::prelude::*;

/// The `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Output columns, in order. Each must exist in the input.
    columns: Vec<String>,
}

struct Select {
    columns: Vec<String>,
}

fn project(input: &Schema, columns: &[String]) -> Result<Vec<usize>> {
    columns
        .iter()
        .map(|c| {
            input
                .index_of(c)
                .map_err(|_| Error::msg(format!("select: no column {c:?} in the input")))
        })
        .collect()
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
        Ok(Some(input.project(&project(input, &config.columns)?)?))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        project(&input.schema(), &self.columns)?;
        // Only names cross the boundary: the host reorders the input's columns.
        Ok(vec![Output::pass().project(self.columns.clone())])
    }
}

weir_plugin_sdk::export!(Select);
