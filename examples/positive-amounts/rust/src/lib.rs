//! positive-amounts: keeps the rows whose `column` (default `amount`, a
//! float64) is above zero, adds `{column}_cents` as int64 (rounded half
//! away from zero; null when the amount is null or out of range), and
//! counts the rows it saw, logging the count at the end. The count is the
//! state a new version takes over on hot reload.
//!
//! The same transform exists in C, JavaScript and Python beside this
//! directory; all four produce byte-identical output.

use std::sync::Arc;

use weir_plugin_sdk::prelude::*;

/// The node's `config` table in `pipeline.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `column`: the float64 column to test (default `amount`).
    #[serde(default = "default_column")]
    column: String,
}

fn default_column() -> String {
    "amount".into()
}

struct Plugin {
    column: String,
    rows_seen: u64,
}

/// `amount * 100` rounded half away from zero, if it fits an int64.
fn cents(amount: f64) -> Option<i64> {
    let cents = (amount * 100.0).round();
    // 2^63 as f64: anything at or beyond it (or NaN) does not fit.
    (cents.abs() < 9.223_372_036_854_775_808e18).then_some(cents as i64)
}

impl Transform for Plugin {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        Ok(Plugin {
            column: config.column,
            rows_seen: 0,
        })
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        let field = input.field_with_name(&config.column)?;
        if field.data_type() != &DataType::Float64 {
            return Err(Error::msg(format!(
                "column {} is {}, expected float64",
                config.column,
                field.data_type()
            )));
        }
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(
            format!("{}_cents", config.column),
            DataType::Int64,
            true,
        ));
        Ok(Some(Schema::new(fields)))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        let amounts = input.column::<Float64Array>(&self.column)?;
        self.rows_seen += amounts.len() as u64;
        let keep: BooleanArray = amounts
            .iter()
            .map(|a| Some(a.is_some_and(|a| a > 0.0)))
            .collect();
        let cents: Int64Array = amounts.iter().map(|a| a.and_then(cents)).collect();
        Ok(vec![
            Output::keep(&keep).with_column(format!("{}_cents", self.column), Arc::new(cents))
        ])
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        weir_plugin_sdk::log::info(&format!("saw {} rows", self.rows_seen));
        Ok(Vec::new())
    }
}

weir_plugin_sdk::export!(Plugin, state = rows_seen);
