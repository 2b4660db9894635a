//! `config = { copy = true }` fetches every column and returns a new batch
//! built from them (every type crosses both ways); otherwise the input
//! passes untouched. `tag` adds a constant string column.

use std::sync::Arc;

use weir_plugin_sdk::prelude::*;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    copy: bool,
    tag: Option<String>,
}

struct Passthrough(Config);

impl Transform for Passthrough {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        Ok(Passthrough(config))
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        if config.tag.is_some() {
            fields.push(Field::new("tag", DataType::Utf8, true));
        }
        Ok(Some(Schema::new(fields)))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        let mut out = if self.0.copy {
            Output::batch(input.record_batch()?)
        } else {
            Output::pass()
        };
        if let Some(tag) = &self.0.tag {
            let column: StringArray =
                std::iter::repeat_n(Some(tag.as_str()), input.num_rows()).collect();
            out = match out {
                Output::Batch(b) => {
                    let mut fields: Vec<Field> = b
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect();
                    fields.push(Field::new("tag", DataType::Utf8, true));
                    let mut columns = b.columns().to_vec();
                    columns.push(Arc::new(column));
                    Output::batch(RecordBatch::try_new(
                        Arc::new(Schema::new(fields)),
                        columns,
                    )?)
                }
                derived => derived.with_column("tag", Arc::new(column)),
            };
        }
        Ok(vec![out])
    }
}

weir_plugin_sdk::export!(Passthrough);
