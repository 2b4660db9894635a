//! Stamps every row with the crate's name (`stamp-a` or `stamp-b`: two
//! versions of one plugin, for hot-reload tests) and counts rows across
//! batches in state that survives a swap (`export!(.., state = rows)`).

use std::sync::Arc;

use weir_plugin_sdk::prelude::*;

const VERSION: &str = env!("CARGO_PKG_NAME");

struct Stamp {
    rows: u64,
}

impl Transform for Stamp {
    type Config = serde::de::IgnoredAny;

    fn new(_: serde::de::IgnoredAny) -> Result<Self> {
        Ok(Stamp { rows: 0 })
    }

    fn describe(input: &Schema, _: &Self::Config) -> Result<Option<Schema>> {
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("version", DataType::Utf8, true));
        fields.push(Field::new("rows_before", DataType::Int64, true));
        Ok(Some(Schema::new(fields)))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        let n = input.num_rows();
        let version: StringArray = std::iter::repeat_n(Some(VERSION), n).collect();
        let before = Int64Array::from(vec![self.rows as i64; n]);
        self.rows += n as u64;
        Ok(vec![Output::pass()
            .with_column("version", Arc::new(version))
            .with_column("rows_before", Arc::new(before))])
    }
}

// `rows` is handed from each version to the next on hot reload.
weir_plugin_sdk::export!(Stamp, state = rows);
