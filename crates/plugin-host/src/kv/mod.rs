//! The host side of `weir:plugin/state@0.2.0`: a key-value store per
//! instance with event-time expiry, carried in the node's snapshot (so
//! checkpoints and hot reload keep it), larger than memory.
//!
//! It is a small log-structured store. Writes land in an in-memory
//! [`table`] (an arena with a hash index); when that table passes its share
//! of the node's memory budget it is frozen and written out as an immutable
//! sorted [`run`] on disk, on a thread of its own ([`frozen`]). The budget
//! bounds what the store allocates: the tables a quarter, the runs'
//! indexes and filters half, the rest is room for buffers.
//!
//! A snapshot is the list of runs, then the table's [`log`]s: a checkpoint
//! writes a log of what the table took since the one before, nothing else,
//! and restoring one opens the runs' indexes and filters without reading
//! their entries, and replays the logs. (A successor's snapshot writes the
//! table out as a run first.) After a flush, runs of a size are merged four
//! at a time, so there are few of them (size-tiered, as Cassandra's and
//! RocksDB's universal style).
//!
//! A store with no directory and a small state stays in memory, and its
//! snapshot is the whole state as before (`weirkv02`).

mod compact;
mod frozen;
mod index;
mod log;
mod run;
mod snapshot;
mod table;
#[cfg(test)]
mod tests;

use std::hash::Hasher;
use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use frozen::Written;
use run::{Run, SpillDir};
pub use snapshot::{collect_garbage, snapshot_runs, unwrap, wrap};
use table::Table;

/// When an entry stops being visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Never,
    /// `ttl` ms after the first watermark (none had arrived at the put).
    AfterFirstWatermark(u64),
    /// Once the watermark passes this event time (µs since the epoch).
    At(i64),
}

/// A value, or a tombstone (`None`) hiding the key in older runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: Option<Vec<u8>>,
    expiry: Expiry,
}

/// A write of the current plugin call, to undo if the call fails.
#[derive(Debug, Clone, Copy)]
enum Write {
    /// An entry appended at `at`, replacing the one at `replaced`.
    Put { at: u32, replaced: Option<u32> },
    /// The entry at this place removed.
    Removed(u32),
}

/// A key and its value, as `scan` returns them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One node instance's state store.
#[derive(Debug, Default)]
pub struct KvStore {
    /// Writes since the last flush, tombstones included: hashed, since
    /// point reads and writes are the hot path (a dedupe's every key);
    /// order is made when needed, by sorting.
    map: Table,
    /// The table's entries in key order, for `scan`, until the next write.
    sorted: OnceLock<Vec<u32>>,
    budget: usize,
    /// The table may hold entries that expire (else a moving watermark
    /// has nothing to drop there: no pass over it per batch).
    expiring: bool,
    watermark: Option<i64>,
    first_watermark: Option<i64>,
    /// While a plugin call runs: its writes, so a failed call leaves the
    /// store as it found it. (The table is flushed only between calls.)
    undo: Option<Vec<Write>>,
    /// On disk, oldest first.
    runs: Vec<Arc<Run>>,
    /// Where new runs go (`None`: nowhere yet; a temporary directory is
    /// made when the table first outgrows its share).
    dir: Option<Arc<SpillDir>>,
    /// A merge running on its own thread, if any.
    merging: Option<compact::Merging>,
    /// The table as the last snapshot froze it, being written out as a
    /// run on its own thread: newer than the runs, older than the table.
    frozen: Option<frozen::Frozen>,
    /// The table's logs, when checkpoints log it (see [`log`]).
    log: Option<log::Log>,
}

impl Clone for KvStore {
    /// The same entries and runs; a merge in flight stays the original's.
    fn clone(&self) -> Self {
        KvStore {
            map: self.map.clone(),
            sorted: OnceLock::new(),
            budget: self.budget,
            expiring: self.expiring,
            watermark: self.watermark,
            first_watermark: self.first_watermark,
            undo: self.undo.clone(),
            runs: self.runs.clone(),
            dir: self.dir.clone(),
            merging: None,
            frozen: self.frozen.clone(),
            log: self.log.clone(),
        }
    }
}

impl PartialEq for KvStore {
    fn eq(&self, other: &Self) -> bool {
        let names = |s: &KvStore| {
            s.runs
                .iter()
                .map(|r| r.name().to_string())
                .collect::<Vec<_>>()
        };
        self.map == other.map
            && self.watermark == other.watermark
            && self.first_watermark == other.first_watermark
            && names(self) == names(other)
    }
}

impl KvStore {
    /// An empty store whose memory is bounded by `budget` bytes.
    pub fn new(budget: usize) -> Self {
        KvStore {
            map: Table::new(Table::chunk_for(budget / 4)),
            budget,
            ..KvStore::default()
        }
    }

    /// Keeps this store's runs in `dir` (a checkpointed node's state
    /// directory) rather than a temporary one.
    pub fn set_dir(&mut self, dir: &Path) {
        self.dir = Some(SpillDir::durable(dir));
    }

    /// Whether nothing is stored (nor ever spilled).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.runs.is_empty() && self.frozen.is_none()
    }

    /// The memory bound.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes the in-memory table holds (allocated: its arena and index).
    pub fn bytes(&self) -> usize {
        self.map.bytes()
    }

    /// Memory held besides the table: a frozen table being written out,
    /// and the runs' indexes and filters.
    pub fn resident(&self) -> usize {
        self.frozen.as_ref().map_or(0, frozen::Frozen::bytes)
            + self.runs.iter().map(|r| r.resident()).sum::<usize>()
    }

    /// Runs on disk, and the entries they hold (shadowed ones included).
    pub fn runs(&self) -> (usize, u64) {
        (self.runs.len(), self.runs.iter().map(|r| r.entries()).sum())
    }

    /// The table's share of the budget (with a frozen one, and what each
    /// takes to sort): past it, it is flushed to disk. The runs' indexes
    /// and filters take at most half (see `filter_bits`); the last quarter
    /// is room for the rest (a merge's and a write's buffers, a compaction
    /// of the table, the allocator's own).
    fn spill_at(&self) -> usize {
        self.budget / 4
    }

    /// The value under `key`, unless absent or expired; an error when a
    /// run can't be read.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .entry(key)?
            .filter(|e| self.live(e.expiry))
            .and_then(|e| e.value))
    }

    fn entry(&self, key: &[u8]) -> Result<Option<Entry>, String> {
        if let Some(e) = self.map.get(key) {
            return Ok(Some(e.to_entry()));
        }
        if let Some(e) = self.frozen.as_ref().and_then(|f| f.get(key)) {
            return Ok(Some(e.to_entry()));
        }
        let hash = run::hash(key);
        for run in self.runs.iter().rev() {
            if let Some(e) = run.get(key, hash)? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Stores `value` under `key`; an error when one call has written
    /// more than the whole budget (the store is unchanged then).
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.insert(&key, Some(&value), Expiry::Never)
    }

    /// Like [`put`](Self::put); the entry expires once the watermark has
    /// moved `ttl_ms` of event time past where it was at the put.
    pub fn put_with_ttl(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<(), String> {
        let expiry = match self.watermark {
            Some(w) => Expiry::At(w.saturating_add(ttl_micros(ttl_ms))),
            None => Expiry::AfterFirstWatermark(ttl_ms),
        };
        self.insert(&key, Some(&value), expiry)
    }

    fn insert(&mut self, key: &[u8], value: Option<&[u8]>, expiry: Expiry) -> Result<(), String> {
        let after = self.map.bytes_after(key, value, expiry);
        if after > self.budget {
            return Err(self.full(after));
        }
        self.store_entry(key, value, expiry)
    }

    fn full(&self, after: usize) -> String {
        format!(
            "the node's state store is full: {after} bytes written since the last flush \
             would exceed its {} bytes (limits.memory_mb); the store spills to disk between \
             calls, so write less in one call",
            self.budget
        )
    }

    /// Puts an entry in the table, whatever the budget; an error only
    /// when the table can't address it (4 GiB written in one call).
    fn store_entry(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        expiry: Expiry,
    ) -> Result<(), String> {
        let Some((at, replaced)) = self.map.put(key, value, expiry) else {
            return Err(self.full(self.map.bytes_after(key, value, expiry)));
        };
        self.expiring |= expiry != Expiry::Never;
        self.sorted.take();
        if let Some(undo) = &mut self.undo {
            undo.push(Write::Put { at, replaced });
        }
        Ok(())
    }

    /// Stores each key of `keys` (key `i` ends at `ends[i]`) that is
    /// absent or expired, with an empty value; the answer has bit `i` set
    /// for each one stored. An error, with nothing stored, when the keys
    /// are out of order or the call's writes pass the budget.
    pub fn insert_new(
        &mut self,
        keys: &[u8],
        ends: &[u32],
        ttl_ms: Option<u64>,
    ) -> Result<Vec<u8>, String> {
        let mut bits = vec![0u8; ends.len().div_ceil(8)];
        let expiry = match (ttl_ms, self.watermark) {
            (None, _) => Expiry::Never,
            (Some(ttl), Some(w)) => Expiry::At(w.saturating_add(ttl_micros(ttl))),
            (Some(ttl), None) => Expiry::AfterFirstWatermark(ttl),
        };
        let writes = self.undo.as_ref().map_or(0, Vec::len);
        let mut start = 0usize;
        for (i, &end) in ends.iter().enumerate() {
            let end = end as usize;
            let Some(key) = keys.get(start..end) else {
                self.undo_last(writes);
                return Err(format!(
                    "key {i} ends at byte {end}, before its start ({start}) or past the {} \
                     bytes given",
                    keys.len()
                ));
            };
            start = end;
            let seen = match self.map.get(key) {
                Some(e) => e.value.is_some() && self.live(e.expiry),
                None => self.in_runs(key)?,
            };
            if seen {
                continue;
            }
            if let Err(e) = self.insert(key, Some(&[]), expiry) {
                self.undo_last(writes);
                return Err(e);
            }
            bits[i / 8] |= 1 << (i % 8);
        }
        Ok(bits)
    }

    /// Whether a run (or the frozen table) holds a live value under
    /// `key` (the table doesn't).
    fn in_runs(&self, key: &[u8]) -> Result<bool, String> {
        if let Some(e) = self.frozen.as_ref().and_then(|f| f.get(key)) {
            return Ok(e.value.is_some() && self.live(e.expiry));
        }
        if self.runs.is_empty() {
            return Ok(false);
        }
        let hash = run::hash(key);
        for run in self.runs.iter().rev() {
            if let Some(e) = run.get(key, hash)? {
                return Ok(e.value.is_some() && self.live(e.expiry));
            }
        }
        Ok(false)
    }

    /// Undoes this call's writes after the first `keep` (a failed
    /// `insert_new` stores nothing).
    fn undo_last(&mut self, keep: usize) {
        let Some(undo) = self.undo.as_mut() else {
            return;
        };
        let tail = undo.split_off(keep.min(undo.len()));
        self.sorted.take();
        // Newest first; then the arena is cut back to the oldest undone
        // entry (appends are in call order).
        let mut oldest = None;
        for write in tail.into_iter().rev() {
            match write {
                Write::Put { at, replaced } => {
                    self.map.restore(at, replaced);
                    oldest = Some(at);
                }
                Write::Removed(at) => self.map.restore(at, Some(at)),
            }
        }
        if let Some(at) = oldest {
            self.map.cut(at);
        }
    }

    /// Removes `key` (a no-op when absent). An error only when the table
    /// can't address the tombstone (4 GiB written in one call).
    pub fn delete(&mut self, key: &[u8]) -> Result<(), String> {
        if self.dir.is_some() || !self.runs.is_empty() || self.frozen.is_some() {
            if self.map.get(key).is_some_and(|e| e.value.is_none()) {
                return Ok(());
            }
            // Older runs may hold it (or a log of the table, which a
            // restore replays): a tombstone hides it there. Stored
            // even past the budget (by a key's size each: the call's time
            // budget bounds how many it deletes) — dropping it would bring
            // the key back.
            return self.store_entry(key, None, Expiry::Never);
        }
        if let Some(at) = self.map.remove(key) {
            self.sorted.take();
            if let Some(undo) = &mut self.undo {
                undo.push(Write::Removed(at));
            }
        }
        Ok(())
    }

    /// A plugin call starts: its writes can be undone until
    /// [`commit`](Self::commit).
    pub fn begin(&mut self) {
        self.undo = Some(Vec::new());
    }

    /// The call succeeded: its writes stay, and the table goes to disk
    /// when it has outgrown its half of the table's share of memory. An
    /// error when an earlier table couldn't be written (its entries are
    /// kept in memory).
    pub fn commit(&mut self) -> Result<(), String> {
        self.undo = None;
        // A frozen table goes once its run is written (its memory with
        // it); until then it counts: the two share the table's part of
        // the budget.
        if let Err(e) = self.install_frozen(false) {
            tracing::warn!(error = %e, "a state-store run could not be written; its entries stay in memory");
        }
        if self.map.compact() {
            self.sorted.take();
            // Its entries moved: the next log is of the whole table.
            self.log = None;
        }
        // Each of the two tables (live, frozen) gets half the share: a full
        // one is written out on a thread of its own while the node fills
        // the other (it waits only when that one is full before the first
        // is written) — no stall of a whole table's sort and write on the
        // node's thread.
        if self.map.bytes() > self.spill_at() / 2 {
            self.freeze()?;
        }
        Ok(())
    }

    /// The call failed (an error, a trap, outputs the host refused): its
    /// writes are undone, newest first. How many there were.
    pub fn rollback(&mut self) -> usize {
        let writes = self.undo.as_ref().map_or(0, Vec::len);
        self.undo_last(0);
        self.undo = None;
        writes
    }

    /// Up to `limit` live entries with keys `>= start`, in byte order; an
    /// error when a run can't be read (or written: a frozen table's run is
    /// waited for).
    pub fn scan(&mut self, start: &[u8], limit: u32) -> Result<Vec<KeyValue>, String> {
        self.install_frozen(true)?;
        let map = &self.map;
        let sorted = self.sorted.get_or_init(|| map.sorted());
        let from = sorted.partition_point(|&at| map.at(at).0 < start);
        let mut table = sorted[from..].iter().map(|&at| map.at(at));
        let mut runs: Vec<_> = self.runs.iter().rev().map(|r| r.iter_from(start)).collect();
        // heads[0]: the table; then runs, newest first. On equal keys the
        // lowest index is the newest write.
        let mut heads = vec![table.next().map(|(k, e)| (k.to_vec(), e.to_entry()))];
        for run in &mut runs {
            heads.push(run.next_entry()?);
        }
        let mut out = Vec::new();
        while out.len() < limit as usize {
            let Some(key) = heads.iter().flatten().map(|(k, _)| k).min().cloned() else {
                break;
            };
            let mut newest = None;
            for (i, head) in heads.iter_mut().enumerate() {
                if head.as_ref().is_some_and(|(k, _)| *k == key) {
                    if let Some((_, e)) = head.take() {
                        newest.get_or_insert(e);
                    }
                    *head = match i {
                        0 => table.next().map(|(k, e)| (k.to_vec(), e.to_entry())),
                        _ => runs[i - 1].next_entry()?,
                    };
                }
            }
            if let Some(Entry {
                value: Some(value),
                expiry,
            }) = newest
            {
                if self.live(expiry) {
                    out.push((key, value));
                }
            }
        }
        Ok(out)
    }

    /// The event-time watermark moved: entries it passed are dropped from
    /// memory (on disk, reads skip them and merges drop them).
    pub fn advance(&mut self, watermark: i64) {
        if self.watermark.is_some_and(|w| w >= watermark) {
            return;
        }
        self.watermark = Some(watermark);
        self.first_watermark.get_or_insert(watermark);
        // With runs on disk an expired entry stays in the table: it hides
        // what an older run holds under its key, and reads skip it.
        if !self.expiring || !self.runs.is_empty() || self.frozen.is_some() {
            return;
        }
        let first = self.first_watermark;
        self.sorted.take();
        self.expiring = self
            .map
            .remove_where(|e| expired(e.expiry, first, Some(watermark)));
    }

    fn live(&self, expiry: Expiry) -> bool {
        !expired(expiry, self.first_watermark, self.watermark)
    }

    /// Writes the table out as a new run (nothing when it is empty), then
    /// merges runs while the newest is at least half the size of the one
    /// before it.
    pub fn flush(&mut self) -> Result<(), String> {
        self.install_frozen(true)?;
        if self.map.is_empty() {
            return Ok(());
        }
        let dir = self.spill_dir()?;
        let out = run::RunWriter::create(&dir, self.map.len() as u64, self.filter_bits())?;
        let bottom = self.bottom();
        self.runs.push(write_table(out, &self.map, bottom)?);
        self.map = self.map.fresh();
        self.sorted.take();
        self.log = None;
        self.expiring = false;
        self.compact(&dir);
        Ok(())
    }

    /// Where runs go: the store's directory, or a temporary one made now.
    fn spill_dir(&mut self) -> Result<Arc<SpillDir>, String> {
        Ok(match &self.dir {
            Some(dir) => dir.clone(),
            None => self.dir.insert(SpillDir::temporary()?).clone(),
        })
    }

    /// For a first run (nothing older on disk): the watermarks by which
    /// entries no reader would see are left out of it.
    fn bottom(&self) -> Option<(Option<i64>, Option<i64>)> {
        (self.runs.is_empty() && self.frozen.is_none())
            .then_some((self.first_watermark, self.watermark))
    }

    /// Filter bits a key for a new run: the most (10) while the runs'
    /// indexes and the filters of every key twice over (a merge holds its
    /// inputs' and its output's at once) fit in half the budget, fewer
    /// past it (more lookups then read a block they need not), at least 2.
    fn filter_bits(&self) -> u64 {
        let frozen = self.frozen.as_ref().map_or(0, frozen::Frozen::len);
        let keys = self.runs().1 + (self.map.len() + frozen) as u64;
        let indexes: usize = self.runs.iter().map(|r| r.index_bytes()).sum();
        let room = (self.budget / 2).saturating_sub(indexes) as u64 * 8;
        (room / (2 * keys.max(1))).clamp(2, run::BITS_PER_KEY)
    }
}

/// Writes `table` out as run `out`. Into a `bottom` run, what no reader
/// would see (tombstones, expired entries) is left out.
fn write_table(
    mut out: run::RunWriter,
    table: &Table,
    bottom: Option<(Option<i64>, Option<i64>)>,
) -> Result<Arc<Run>, String> {
    for at in table.sorted() {
        let (key, e) = table.at(at);
        if let Some((first, wm)) = bottom {
            if e.value.is_none() || expired(e.expiry, first, wm) {
                continue;
            }
        }
        out.push(key, e)?;
    }
    out.finish()
}

fn expired(expiry: Expiry, first: Option<i64>, watermark: Option<i64>) -> bool {
    let Some(w) = watermark else {
        return false;
    };
    match expiry {
        Expiry::Never => false,
        Expiry::At(t) => t <= w,
        Expiry::AfterFirstWatermark(ttl) => {
            first.is_some_and(|f| f.saturating_add(ttl_micros(ttl)) <= w)
        }
    }
}

fn ttl_micros(ttl_ms: u64) -> i64 {
    i64::try_from(ttl_ms.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// FxHash's step over 8 bytes at a time: the table's keys are the
/// plugin's, bounded by its budget; SipHash's defence against flooding
/// would cost several times more per key on the hot path.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    /// Mixed, so that every input bit reaches the low bits the table
    /// indexes by: a product alone leaves them to the input's low bits,
    /// and big-endian integer keys vary in their high ones (every key in
    /// one bucket).
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}
