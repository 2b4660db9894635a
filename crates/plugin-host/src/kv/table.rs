//! The store's in-memory table: entries appended to an arena of chunks,
//! found through a hash index of their places (RocksDB's memtable is an
//! arena too).
//!
//! A key costs its bytes, a 9- or 17-byte header and about 10 bytes of
//! index, where a hash map of owned keys and values cost ~150 bytes for a
//! 16-byte key (bucket, key allocation, value allocation, load factor):
//! the same budget holds several times the keys, and what the table is
//! charged is what it holds ([`Table::bytes`]: the chunks' and the index's
//! allocations), so the budget bounds real memory.
//!
//! Writes append; a replaced or removed entry stays in its chunk as
//! garbage until the table is written out or [`Table::compact`]ed. That
//! also makes a plugin call's writes cheap to undo: the index is pointed
//! back and the arena cut back to where the call started.

use hashbrown::hash_table::Entry as Slot2;
use hashbrown::HashTable;

use super::{Entry, Expiry};

/// A place in the arena: chunk number in the high bits, position in the
/// chunk in the low ones.
type At = u32;
const POS_BITS: u32 = 20;
/// The largest regular chunk (a position must fit in `POS_BITS`); an
/// entry larger than a chunk gets a chunk of its own, at position 0.
const MAX_CHUNK: usize = 1 << POS_BITS;
const MAX_CHUNKS: usize = 1 << (32 - POS_BITS);
/// Header: key length (u32), value length (u32, `TOMBSTONE`: none), expiry
/// kind (u8), then the expiry's 8 bytes unless it is `Never`.
const HEAD: usize = 9;
const TOMBSTONE: u32 = u32::MAX;
/// What sorting costs an entry: [`Table::sorted`]'s prefix and place.
const SORT_BYTES: usize = std::mem::size_of::<Place>();

/// A key's first 16 bytes as two numbers, and its entry's place: 24
/// bytes (a `u128` would align it to 32).
#[derive(Clone, Copy)]
struct Place((u64, u64), At);

#[derive(Debug, Clone, Copy)]
struct Slot {
    at: At,
    /// The key's hash (32 bits), so growing the index reads no keys.
    hash: u32,
}

/// An entry as the table holds it: borrowed from its chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EntryRef<'a> {
    pub(super) value: Option<&'a [u8]>,
    pub(super) expiry: Expiry,
}

impl EntryRef<'_> {
    pub(super) fn to_entry(self) -> Entry {
        Entry {
            value: self.value.map(<[u8]>::to_vec),
            expiry: self.expiry,
        }
    }
}

impl Entry {
    pub(super) fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            value: self.value.as_deref(),
            expiry: self.expiry,
        }
    }
}

/// Where the arena ended: its chunks, and the last one's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct End(usize, usize);

/// The table. See the module's documentation.
#[derive(Clone)]
pub(super) struct Table {
    chunks: Vec<Vec<u8>>,
    /// A regular chunk's capacity.
    chunk: usize,
    index: HashTable<Slot>,
    /// Bytes of entries no slot points at any more (none: every entry in
    /// the arena is live).
    garbage: usize,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("entries", &self.len())
            .field("bytes", &self.bytes())
            .field("garbage", &self.garbage)
            .finish()
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new(64 << 10)
    }
}

impl PartialEq for Table {
    /// The same entries, wherever they are in the arena.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, e)| other.get(k) == Some(e))
    }
}

impl Table {
    /// An empty table whose chunks hold `chunk` bytes (at most 1 MiB).
    pub(super) fn new(chunk: usize) -> Table {
        Table {
            chunks: Vec::new(),
            chunk: chunk.clamp(256, MAX_CHUNK),
            index: HashTable::new(),
            garbage: 0,
        }
    }

    /// A chunk size for a table whose share of memory is `share`: small
    /// enough that the last chunk's unused room is a small part of it.
    pub(super) fn chunk_for(share: usize) -> usize {
        (share / 32).clamp(256, MAX_CHUNK)
    }

    /// An empty table like this one, its index sized for as many entries
    /// as this one has (a stream fills each table alike: no regrowing).
    pub(super) fn fresh(&self) -> Table {
        Table {
            index: HashTable::with_capacity(self.len()),
            ..Table::new(self.chunk)
        }
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Memory the table holds — its chunks and its index, allocated —
    /// and what [`sorted`](Self::sorted) will take to write it out.
    pub(super) fn bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.index.allocation_size()
            + self.len() * SORT_BYTES
    }

    /// What [`bytes`](Self::bytes) would be after putting this entry: a
    /// chunk started for it and the index grown for it count.
    pub(super) fn bytes_after(&self, key: &[u8], value: Option<&[u8]>, expiry: Expiry) -> usize {
        let len = Table::entry_bytes(key, value, expiry) + SORT_BYTES;
        let chunk = match self.fits(len) {
            true => 0,
            false => len.max(self.chunk) + std::mem::size_of::<Vec<u8>>(),
        };
        let index = match self.index.len() == self.index.capacity() {
            true => self.index.allocation_size().max(64),
            false => 0,
        };
        self.bytes() + chunk + index
    }

    fn fits(&self, len: usize) -> bool {
        self.chunks
            .last()
            .is_some_and(|c| c.len() < MAX_CHUNK && c.capacity() - c.len() >= len)
    }

    /// Bytes an entry adds to the arena.
    pub(super) fn entry_bytes(key: &[u8], value: Option<&[u8]>, expiry: Expiry) -> usize {
        HEAD + expiry_len(expiry) + key.len() + value.map_or(0, <[u8]>::len)
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<EntryRef<'_>> {
        let hash = hash32(key);
        let slot = self.index.find(spread(hash), |s| {
            s.hash == hash && key_at(&self.chunks, s.at) == key
        })?;
        Some(decode(&self.chunks, slot.at).1)
    }

    pub(super) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Stores an entry under `key`: where it went, and where the one it
    /// replaced is. `None` when the arena can't take it (4 GiB).
    pub(super) fn put(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        expiry: Expiry,
    ) -> Option<(At, Option<At>)> {
        let hash = hash32(key);
        let at = self.append(key, value, expiry)?;
        let Table {
            chunks,
            index,
            garbage,
            ..
        } = self;
        let eq = |s: &Slot| s.hash == hash && key_at(chunks, s.at) == key;
        match index.entry(spread(hash), eq, |s| spread(s.hash)) {
            Slot2::Occupied(mut o) => {
                let old = o.get().at;
                *garbage += record_len(chunks, old);
                o.get_mut().at = at;
                Some((at, Some(old)))
            }
            Slot2::Vacant(v) => {
                v.insert(Slot { at, hash });
                Some((at, None))
            }
        }
    }

    /// Removes `key`: where its entry is (it stays there until the table
    /// is written out, for [`restore`](Self::restore)).
    pub(super) fn remove(&mut self, key: &[u8]) -> Option<At> {
        let hash = hash32(key);
        let Table {
            chunks,
            index,
            garbage,
            ..
        } = self;
        let slot = index
            .find_entry(spread(hash), |s| {
                s.hash == hash && key_at(chunks, s.at) == key
            })
            .ok()?
            .remove()
            .0;
        *garbage += record_len(chunks, slot.at);
        Some(slot.at)
    }

    /// Points the key of the entry at `at` back to `to` (`None`: removes
    /// it): undoes a write, newest first.
    pub(super) fn restore(&mut self, at: At, to: Option<At>) {
        let key = key_at(&self.chunks, at).to_vec();
        let hash = hash32(&key);
        if let Some(to) = to {
            self.garbage -= record_len(&self.chunks, to);
        }
        let Table { chunks, index, .. } = self;
        let eq = |s: &Slot| s.hash == hash && key_at(chunks, s.at) == key.as_slice();
        match (index.entry(spread(hash), eq, |s| spread(s.hash)), to) {
            (Slot2::Occupied(mut o), Some(to)) => o.get_mut().at = to,
            (Slot2::Occupied(o), None) => {
                o.remove();
            }
            (Slot2::Vacant(v), Some(to)) => {
                v.insert(Slot { at: to, hash });
            }
            (Slot2::Vacant(_), None) => {}
        }
    }

    /// Where the arena ends now.
    pub(super) fn end(&self) -> End {
        End(self.chunks.len(), self.chunks.last().map_or(0, Vec::len))
    }

    /// The entries appended since `from` (an [`end`](Self::end) of this
    /// table taken between calls, before no compaction), as they are in
    /// the arena: what [`replay`](Self::replay) takes back.
    pub(super) fn tail(&self, from: End) -> Vec<u8> {
        let End(chunks, len) = from;
        let mut out = Vec::new();
        if let Some(last) = chunks.checked_sub(1).and_then(|i| self.chunks.get(i)) {
            out.extend_from_slice(last.get(len..).unwrap_or_default());
        }
        for chunk in self.chunks.iter().skip(chunks) {
            out.extend_from_slice(chunk);
        }
        out
    }

    /// Puts the entries of a [`tail`](Self::tail), in order; whether one
    /// may expire. The bytes come from a file: anything that isn't a whole
    /// entry is an error.
    pub(super) fn replay(&mut self, mut bytes: &[u8]) -> Result<bool, String> {
        let mut expiring = false;
        while !bytes.is_empty() {
            let cut = || "an entry cut short".to_string();
            let head = bytes.get(..HEAD).ok_or_else(cut)?;
            let (key_len, value_len) = (word(head, 0) as usize, word(head, 4));
            let number = |at: usize| -> Result<u64, String> {
                let b = bytes.get(at..at + 8).ok_or_else(cut)?;
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                Ok(u64::from_le_bytes(w))
            };
            let (expiry, start) = match head[8] {
                0 => (Expiry::Never, HEAD),
                1 => (Expiry::AfterFirstWatermark(number(HEAD)?), HEAD + 8),
                2 => (Expiry::At(number(HEAD)? as i64), HEAD + 8),
                k => return Err(format!("an entry of unknown expiry kind {k}")),
            };
            let key = bytes.get(start..start + key_len).ok_or_else(cut)?;
            let (value, end) = match value_len {
                TOMBSTONE => (None, start + key_len),
                n => {
                    let end = start + key_len + n as usize;
                    (Some(bytes.get(start + key_len..end).ok_or_else(cut)?), end)
                }
            };
            self.put(key, value, expiry)
                .ok_or_else(|| "over 4 GiB of entries".to_string())?;
            expiring |= expiry != Expiry::Never;
            bytes = &bytes[end..];
        }
        Ok(expiring)
    }

    /// Drops the entry at `at` and every one appended after it (once
    /// no slot points there). Chunks before `at`'s are never appended to
    /// again once a later one is started.
    pub(super) fn cut(&mut self, at: At) {
        let (chunk, pos) = ((at >> POS_BITS) as usize, at as usize & (MAX_CHUNK - 1));
        if pos == 0 {
            self.chunks.truncate(chunk);
        } else {
            self.chunks.truncate(chunk + 1);
            if let Some(last) = self.chunks.last_mut() {
                last.truncate(pos);
            }
        }
    }

    /// Entries, in no order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        self.index.iter().map(|s| decode(&self.chunks, s.at))
    }

    /// Places of the entries in key order. Sorted on the keys' first 16
    /// bytes as numbers first: integer compares settle most pairs, where
    /// comparing the keys reads both from the arena (two cache misses).
    /// Keys often share their first bytes (a row encoding's markers, a
    /// common prefix): with 8 bytes, ties took a quarter of the writer's
    /// time on 16-byte keys.
    pub(super) fn sorted(&self) -> Vec<At> {
        let prefix = |k: &[u8]| {
            let mut word = [0u8; 16];
            let n = k.len().min(16);
            word[..n].copy_from_slice(&k[..n]);
            let [a, b] = [&word[..8], &word[8..]].map(|w| {
                let mut half = [0u8; 8];
                half.copy_from_slice(w);
                u64::from_be_bytes(half)
            });
            (a, b)
        };
        let mut places: Vec<Place> = Vec::with_capacity(self.len());
        if self.garbage == 0 {
            // Every entry in the arena is live: read them in its order,
            // not the index's (a cache miss an entry).
            for (number, chunk) in self.chunks.iter().enumerate() {
                let mut pos = 0;
                while pos < chunk.len() {
                    let at = (number as At) << POS_BITS | pos as At;
                    let (key, e) = decode(&self.chunks, at);
                    places.push(Place(prefix(key), at));
                    pos += Table::entry_bytes(key, e.value, e.expiry);
                }
            }
        } else {
            places.extend(
                self.index
                    .iter()
                    .map(|s| Place(prefix(key_at(&self.chunks, s.at)), s.at)),
            );
        }
        places.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| key_at(&self.chunks, a.1).cmp(key_at(&self.chunks, b.1)))
        });
        places.into_iter().map(|Place(_, at)| at).collect()
    }

    /// The entry at `at` (a place [`sorted`](Self::sorted) gave).
    pub(super) fn at(&self, at: At) -> (&[u8], EntryRef<'_>) {
        decode(&self.chunks, at)
    }

    /// Removes every entry `gone` says so of; whether one left may expire.
    pub(super) fn remove_where(&mut self, gone: impl Fn(EntryRef<'_>) -> bool) -> bool {
        let Table {
            chunks,
            index,
            garbage,
            ..
        } = self;
        let mut expiring = false;
        index.retain(|s| {
            let e = decode(chunks, s.at).1;
            if gone(e) {
                *garbage += record_len(chunks, s.at);
                return false;
            }
            expiring |= e.expiry != Expiry::Never;
            true
        });
        expiring
    }

    /// Copies the live entries into fresh chunks when garbage is most of
    /// the arena (a plugin rewriting the same keys call after call).
    /// Whether it did: the entries' places changed.
    pub(super) fn compact(&mut self) -> bool {
        let used: usize = self.chunks.iter().map(Vec::len).sum();
        if self.garbage < self.chunk || self.garbage * 2 < used {
            return false;
        }
        let mut fresh = Table::new(self.chunk);
        for slot in self.index.iter_mut() {
            let (key, e) = decode(&self.chunks, slot.at);
            // A table holds less than 4 GiB of live entries.
            if let Some(at) = fresh.append(key, e.value, e.expiry) {
                slot.at = at;
            }
        }
        self.chunks = fresh.chunks;
        self.garbage = 0;
        true
    }

    fn append(&mut self, key: &[u8], value: Option<&[u8]>, expiry: Expiry) -> Option<At> {
        let key_len = u32::try_from(key.len()).ok()?;
        let value_len = match value {
            Some(v) => u32::try_from(v.len()).ok().filter(|&n| n != TOMBSTONE)?,
            None => TOMBSTONE,
        };
        let len = Table::entry_bytes(key, value, expiry);
        if !self.fits(len) {
            if self.chunks.len() >= MAX_CHUNKS {
                return None;
            }
            self.chunks.push(Vec::with_capacity(len.max(self.chunk)));
        }
        let number = self.chunks.len() - 1;
        let chunk = &mut self.chunks[number];
        let at = (number as At) << POS_BITS | chunk.len() as At;
        chunk.extend_from_slice(&key_len.to_le_bytes());
        chunk.extend_from_slice(&value_len.to_le_bytes());
        match expiry {
            Expiry::Never => chunk.push(0),
            Expiry::AfterFirstWatermark(ttl) => {
                chunk.push(1);
                chunk.extend_from_slice(&ttl.to_le_bytes());
            }
            Expiry::At(t) => {
                chunk.push(2);
                chunk.extend_from_slice(&t.to_le_bytes());
            }
        }
        chunk.extend_from_slice(key);
        chunk.extend_from_slice(value.unwrap_or_default());
        Some(at)
    }
}

fn expiry_len(expiry: Expiry) -> usize {
    match expiry {
        Expiry::Never => 0,
        _ => 8,
    }
}

/// The bytes from `at` to the end of its chunk.
fn bytes_at(chunks: &[Vec<u8>], at: At) -> &[u8] {
    let chunk = &chunks[(at >> POS_BITS) as usize];
    &chunk[(at as usize & (MAX_CHUNK - 1))..]
}

fn word(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn key_at(chunks: &[Vec<u8>], at: At) -> &[u8] {
    let b = bytes_at(chunks, at);
    let start = HEAD + if b[8] == 0 { 0 } else { 8 };
    &b[start..start + word(b, 0) as usize]
}

fn record_len(chunks: &[Vec<u8>], at: At) -> usize {
    let (key, e) = decode(chunks, at);
    Table::entry_bytes(key, e.value, e.expiry)
}

/// The entry at `at`. The arena is this table's own writing: its
/// headers are as [`Table::append`] wrote them.
fn decode(chunks: &[Vec<u8>], at: At) -> (&[u8], EntryRef<'_>) {
    let b = bytes_at(chunks, at);
    let (key_len, value_len) = (word(b, 0) as usize, word(b, 4));
    let n = || {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[HEAD..HEAD + 8]);
        u64::from_le_bytes(w)
    };
    let (expiry, start) = match b[8] {
        0 => (Expiry::Never, HEAD),
        1 => (Expiry::AfterFirstWatermark(n()), HEAD + 8),
        _ => (Expiry::At(n() as i64), HEAD + 8),
    };
    let key = &b[start..start + key_len];
    let value =
        (value_len != TOMBSTONE).then(|| &b[start + key_len..start + key_len + value_len as usize]);
    (key, EntryRef { value, expiry })
}

/// The key's hash for the index: 32 bits of FxHash, mixed.
fn hash32(key: &[u8]) -> u32 {
    use std::hash::Hasher;
    let mut h = super::KeyHasher::default();
    h.write(key);
    (h.finish() >> 32) as u32
}

/// A 32-bit hash spread over the 64 the index reads: its low bits pick
/// the bucket and its top 7 the tag, and a product by an odd constant
/// carries every input bit into the top ones.
fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}
