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

use crate::wit::weir::plugin::state as host;
use crate::{Error, Result};

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
