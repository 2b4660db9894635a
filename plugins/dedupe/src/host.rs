//! `store = "host"`: the seen keys live in the host's state store rather
//! than the plugin's memory. The node's memory stays within its budget
//! however many keys there are (the store spills to disk), a checkpoint
//! writes only the keys seen since the one before, and a restart opens
//! the store instead of reading every key back. Each batch's keys cross
//! in one `insert-new` call, which answers which of them are new.
//!
//! Keys: a single int64 column's value as 8 big-endian bytes (a null as
//! the empty key); any other key, the Arrow row encoding of its columns
//! (never empty), as the memory store keeps them.

use std::time::Duration;

use arrow_row::RowConverter;
use weir_plugin_sdk::arrow_array::types::Int64Type;
use weir_plugin_sdk::arrow_array::ArrayRef;
use weir_plugin_sdk::prelude::*;
use weir_plugin_sdk::state::{self, Keys};

use crate::ttl::Generations;
use crate::Seen;

/// Keys handed to the store per call when moving an old state in.
const CHUNK: usize = 1 << 16;

pub(crate) struct HostSeen {
    keys: Keys,
    ttl: Option<Duration>,
    converter: Option<RowConverter>,
}

impl HostSeen {
    pub(crate) fn new(ttl_ms: Option<u64>) -> HostSeen {
        HostSeen {
            keys: Keys::default(),
            ttl: ttl_ms.map(Duration::from_millis),
            converter: None,
        }
    }

    /// Which rows have a key not seen before (now stored).
    pub(crate) fn keep_mask(&mut self, columns: &[ArrayRef]) -> Result<BooleanArray> {
        self.keys.clear();
        match columns {
            [column] if column.data_type() == &DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>();
                for (i, v) in values.values().iter().enumerate() {
                    match values.is_null(i) {
                        true => self.keys.push(&[])?,
                        false => self.keys.push(&v.to_be_bytes())?,
                    }
                }
            }
            _ => {
                for row in crate::row_keys(&mut self.converter, columns)?.iter() {
                    self.keys.push(row.as_ref())?;
                }
            }
        }
        state::insert_new(&self.keys, self.ttl)
    }

    /// Moves the keys of a state the plugin kept in its own memory (an
    /// earlier version, or `store = "memory"`) into the store. Keys with
    /// a TTL start their clock again here.
    pub(crate) fn take_in(&mut self, old: &Generations) -> Result<u64> {
        let mut moved = 0;
        let mut batch = Keys::with_capacity(CHUNK, 8);
        for seen in old.sets() {
            let mut push = |key: &[u8]| -> Result<()> {
                batch.push(key)?;
                if batch.len() == CHUNK {
                    moved += batch.len() as u64;
                    state::insert_new(&batch, self.ttl)?;
                    batch.clear();
                }
                Ok(())
            };
            match seen {
                Seen::Int(set) => {
                    for v in set.values() {
                        push(&v.to_be_bytes())?;
                    }
                    if set.has_null() {
                        push(&[])?;
                    }
                }
                Seen::Rows(set) => {
                    for row in set {
                        push(row)?;
                    }
                }
            }
        }
        moved += batch.len() as u64;
        state::insert_new(&batch, self.ttl)?;
        Ok(moved)
    }
}

/// Whether the host store holds keys (a `store = "host"` version ran
/// before): a memory-store version would miss them.
pub(crate) fn store_has_keys() -> Result<bool> {
    Ok(!state::scan(&[], 1).is_empty())
}
