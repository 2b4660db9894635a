//! `dedupe`: keeps the first row of each key, across all batches.
//!
//! ```toml
//! [transforms.unique]
//! plugin = "plugins/dedupe.wasm"
//! inputs = ["orders"]
//! config = { key = ["id"] }   # one or more columns; nulls compare equal
//! ```
//!
//! Only the key columns cross the boundary; the answer is a selection.
//! The set of seen keys is the plugin's state: it is handed to a successor
//! version on hot reload (`snapshot` / `restore`).

use arrow_row::{RowConverter, SortField};
// FxHash: std's SipHash guards against hash flooding, at several times
// the cost per key; a plugin's key set is bounded by its memory limit.
use rustc_hash::FxHashSet as HashSet;
use weir_plugin_sdk::arrow_array::cast::AsArray;
use weir_plugin_sdk::arrow_array::types::Int64Type;
use weir_plugin_sdk::arrow_buffer::BooleanBuffer;
use weir_plugin_sdk::prelude::*;
use weir_plugin_sdk::serde_json;

/// The `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `key`: the columns that identify a row.
    key: Vec<String>,
}

/// Seen keys: a fast path for one int64 column, row-encoded bytes otherwise.
enum Seen {
    Int(HashSet<Option<i64>>),
    Rows(HashSet<Box<[u8]>>),
}

struct Dedupe {
    key: Vec<String>,
    seen: Seen,
    converter: Option<RowConverter>,
    dropped: u64,
}

fn check_keys(input: &Schema, key: &[String]) -> Result<()> {
    for k in key {
        input
            .index_of(k)
            .map_err(|_| Error::msg(format!("dedupe: key column {k:?} is not in the input")))?;
    }
    Ok(())
}

impl Dedupe {
    fn keep_mask(&mut self, input: &Batch<'_>) -> Result<BooleanArray> {
        let columns = self
            .key
            .iter()
            .map(|k| input.array(k))
            .collect::<Result<Vec<_>>>()?;
        if let ([column], Seen::Int(seen)) = (columns.as_slice(), &mut self.seen) {
            if column.data_type() == &DataType::Int64 {
                let values = column.as_primitive::<Int64Type>();
                seen.reserve(values.len());
                // A bitmap straight from the set's answers: no per-row
                // Option to build the mask from.
                let keep = match values.nulls() {
                    None => BooleanBuffer::collect_bool(values.len(), |i| {
                        seen.insert(Some(values.value(i)))
                    }),
                    Some(nulls) => BooleanBuffer::collect_bool(values.len(), |i| {
                        seen.insert(nulls.is_valid(i).then(|| values.value(i)))
                    }),
                };
                return Ok(BooleanArray::new(keep, None));
            }
        }
        // General case: switch (once) to row-encoded keys.
        if let Seen::Int(ints) = &self.seen {
            if !ints.is_empty() {
                return Err(Error::msg("dedupe: the key column changed type mid-stream"));
            }
            self.seen = Seen::Rows(HashSet::default());
        }
        let converter = match &mut self.converter {
            Some(c) => c,
            None => self.converter.insert(RowConverter::new(
                columns
                    .iter()
                    .map(|c| SortField::new(c.data_type().clone()))
                    .collect(),
            )?),
        };
        let rows = converter.convert_columns(&columns)?;
        let Seen::Rows(seen) = &mut self.seen else {
            return Err(Error::msg("dedupe: internal state mismatch"));
        };
        Ok(rows
            .iter()
            .map(|r| Some(seen.insert(r.as_ref().into())))
            .collect())
    }
}

impl Transform for Dedupe {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        if config.key.is_empty() {
            return Err(Error::msg("dedupe: `key` must name at least one column"));
        }
        Ok(Dedupe {
            key: config.key,
            seen: Seen::Int(HashSet::default()),
            converter: None,
            dropped: 0,
        })
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        check_keys(input, &config.key)?;
        Ok(Some(input.clone()))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        check_keys(&input.schema(), &self.key)?;
        let keep = self.keep_mask(input)?;
        let kept = keep.true_count();
        self.dropped += (keep.len() - kept) as u64;
        if kept == keep.len() {
            return Ok(vec![Output::pass()]);
        }
        Ok(vec![Output::keep(&keep)])
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        let dropped = self.dropped.to_string();
        weir_plugin_sdk::log::log(
            weir_plugin_sdk::log::Level::Info,
            "dropped duplicate rows",
            &[("count", dropped.as_str())],
        );
        Ok(Vec::new())
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        let state = match &self.seen {
            Seen::Int(set) => serde_json::json!({ "int": set.iter().collect::<Vec<_>>() }),
            // Row bytes depend only on the key types, which a successor with
            // the same config shares.
            Seen::Rows(set) => {
                serde_json::json!({ "rows": set.iter().map(|r| r.to_vec()).collect::<Vec<_>>() })
            }
        };
        Ok(Some(serde_json::to_vec(&state)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum State {
            Int(Vec<Option<i64>>),
            Rows(Vec<Vec<u8>>),
        }
        self.seen = match serde_json::from_slice::<State>(state)? {
            State::Int(v) => Seen::Int(v.into_iter().collect()),
            State::Rows(v) => Seen::Rows(v.into_iter().map(Vec::into_boxed_slice).collect()),
        };
        Ok(())
    }
}

weir_plugin_sdk::export!(Dedupe);
