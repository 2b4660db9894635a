//! The node's key-value store, kept by the host: for state too large to
//! snapshot whole (a dedupe's seen keys, a join's table). weir checkpoints
//! it with the node and hands it to the next version on hot reload, so a
//! plugin keeping its state here needs no `snapshot` / `restore` at all.
//! It is bounded by the node's `limits.memory_mb`.
//!
//! A call that fails (returns an error, traps, or returns outputs the host
//! refuses) leaves the store as it found it: its writes are undone. A
//! failed batch that `on_error` skips, or bisects and retries in halves,
//! is then counted once, like its rows in the output. State kept in the
//! plugin's own memory has no such guarantee.

use std::time::Duration;

use arrow_array::BooleanArray;
use arrow_buffer::{BooleanBuffer, Buffer};

use crate::wit::weir::plugin::state as host;
use crate::{Error, Result};

/// Where a plugin keeps its large keyed state: the `store` key of the
/// config of plugins that offer both (`dedupe`, `aggregate`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// The plugin's own memory, snapshotted whole at every checkpoint:
    /// the fastest while the state fits.
    #[default]
    Memory,
    /// This store: bounded memory (it spills to disk), and a checkpoint
    /// writes only what changed since the one before.
    Host,
}

/// The value under `key`, if any (and not expired).
pub fn get(key: &[u8]) -> Option<Vec<u8>> {
    host::get(key)
}

/// Stores `value` under `key`; an error when the node's store is full.
pub fn put(key: &[u8], value: &[u8]) -> Result<()> {
    host::put(key, value).map_err(Error::msg)
}

/// Like [`put`], but the entry expires once the event-time watermark has
/// moved `ttl` past where it was at the put.
pub fn put_with_ttl(key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    host::put_with_ttl(key, value, ms).map_err(Error::msg)
}

/// Removes `key`.
pub fn delete(key: &[u8]) {
    host::delete(key)
}

/// Up to `limit` entries with keys `>= start`, in byte order.
pub fn scan(start: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    host::scan(start, limit)
}

/// A batch of keys for [`insert_new`], laid out like an Arrow binary
/// column: the bytes of every key back to back, and where each ends.
#[derive(Debug, Default, Clone)]
pub struct Keys {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl Keys {
    /// Room for `keys` keys of about `width` bytes.
    pub fn with_capacity(keys: usize, width: usize) -> Keys {
        Keys {
            bytes: Vec::with_capacity(keys * width),
            ends: Vec::with_capacity(keys),
        }
    }

    /// Appends a key; an error past 4 GiB of keys in one batch.
    pub fn push(&mut self, key: &[u8]) -> Result<()> {
        self.bytes.extend_from_slice(key);
        let end = u32::try_from(self.bytes.len())
            .map_err(|_| Error::msg("more than 4 GiB of keys in one insert_new"))?;
        self.ends.push(end);
        Ok(())
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// The keys, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.bytes[start as usize..end as usize])
    }
}

/// Stores every key of `keys` that is not stored yet (or has expired),
/// with an empty value, in one call for the whole batch: which ones were
/// new, in order (a key repeated in the batch is new the first time
/// only) — a set of seen keys, as `dedupe` keeps, ready for
/// [`Output::keep`](crate::Output::keep). With `ttl`, each stored key
/// expires like [`put_with_ttl`]'s. An error, storing nothing, when the
/// node's budget is spent.
pub fn insert_new(keys: &Keys, ttl: Option<Duration>) -> Result<BooleanArray> {
    let ms = ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    let bits = host::insert_new(&keys.bytes, &keys.ends, ms).map_err(Error::msg)?;
    if bits.len() * 8 < keys.len() {
        return Err(Error::msg(
            "the host answered insert_new for fewer keys than asked",
        ));
    }
    let new = BooleanBuffer::new(Buffer::from_vec(bits), 0, keys.len());
    Ok(BooleanArray::new(new, None))
}
