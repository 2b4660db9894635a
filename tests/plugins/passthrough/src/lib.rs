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
        let tag: Option<StringArray> = self
            .0
            .tag
            .as_deref()
            .map(|tag| std::iter::repeat_n(Some(tag), input.num_rows()).collect());
        let out = match (self.0.copy, tag) {
            (true, Some(column)) => {
                let b = input.record_batch()?;
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
            (true, None) => Output::batch(input.record_batch()?),
            (false, Some(column)) => Output::pass().with_column("tag", Arc::new(column)),
            (false, None) => Output::pass(),
        };
        Ok(vec![out])
    }
}

weir_plugin_sdk::export!(Passthrough);
