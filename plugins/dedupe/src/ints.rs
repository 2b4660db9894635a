//! The set of seen `int64` keys. Keys that come in dense runs — order ids,
//! sequence numbers, what a database hands out — live in bitmaps of 65,536
//! keys each, one bit a key, touched in order: a lookup is a bit test in a
//! cache-warm word. Scattered keys live in a hash set, 8 bytes each. A
//! key's chunk having a bitmap is the rule for where it is; a bitmap is
//! made only for a batch whose keys are dense (at most 8 values of range
//! per key), so a bitmap costs at most a byte per key it holds.

use rustc_hash::{FxHashMap, FxHashSet};
use weir_plugin_sdk::arrow_buffer::{BooleanBuffer, NullBuffer};

const CHUNK_SHIFT: u32 = 16;
const CHUNK_KEYS: usize = 1 << CHUNK_SHIFT;
const WORDS: usize = CHUNK_KEYS / 64;
/// A batch's keys get bitmaps when they span at most this many values
/// per key...
const DENSITY: i128 = 8;
/// ...and the batch has at least this many keys (a bitmap is 8 KiB).
const MIN_DENSE_BATCH: usize = 1024;
/// A restored chunk becomes a bitmap from this many keys (a byte a key).
const MIN_RESTORED: usize = CHUNK_KEYS / 8;

/// A set of `Option<i64>`.
#[derive(Default, Debug)]
pub(crate) struct IntSet {
    /// Chunk id (`key >> 16`) → index into `bitmaps`.
    chunks: FxHashMap<i64, usize>,
    bitmaps: Vec<Box<[u64]>>,
    sparse: FxHashSet<i64>,
    null: bool,
    len: usize,
}

fn chunk(key: i64) -> i64 {
    key >> CHUNK_SHIFT
}

fn bit(key: i64) -> usize {
    (key & (CHUNK_KEYS as i64 - 1)) as usize
}

/// Sets `bit` in `bitmap`; whether it was clear.
fn set(bitmap: &mut [u64], bit: usize) -> bool {
    let word = &mut bitmap[bit >> 6];
    let mask = 1u64 << (bit & 63);
    let was_clear = *word & mask == 0;
    *word |= mask;
    was_clear
}

impl IntSet {
    /// Keys in the set, null included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether null was inserted.
    pub(crate) fn has_null(&self) -> bool {
        self.null
    }

    /// Whether `key` was inserted.
    pub(crate) fn contains(&self, key: Option<i64>) -> bool {
        match key {
            None => self.null,
            Some(k) => match self.chunks.get(&chunk(k)) {
                Some(&i) => self.bitmaps[i][bit(k) >> 6] & (1u64 << (bit(k) & 63)) != 0,
                None => self.sparse.contains(&k),
            },
        }
    }

    /// Inserts one key; whether it was new.
    pub(crate) fn insert(&mut self, key: Option<i64>) -> bool {
        let new = match key {
            None => !std::mem::replace(&mut self.null, true),
            Some(k) => match self.chunks.get(&chunk(k)) {
                Some(&i) => set(&mut self.bitmaps[i], bit(k)),
                None => self.sparse.insert(k),
            },
        };
        self.len += usize::from(new);
        new
    }

    /// Inserts a column's keys in order; bit `i` says whether row `i`'s key
    /// was new (the first of its value, in the set or in the batch). A key
    /// `elsewhere` says was seen (in an older generation, with `ttl_ms`)
    /// is not new and not inserted.
    pub(crate) fn insert_all(
        &mut self,
        values: &[i64],
        nulls: Option<&NullBuffer>,
        elsewhere: impl Fn(Option<i64>) -> bool,
    ) -> BooleanBuffer {
        if !self.make_dense(values, nulls) {
            self.sparse.reserve(values.len());
        }
        let (chunks, bitmaps, sparse) = (&self.chunks, &mut self.bitmaps, &mut self.sparse);
        let (mut null, mut added) = (self.null, 0usize);
        if chunks.is_empty() {
            // Scattered keys only (no bitmap yet): no chunk to look up.
            let keep = BooleanBuffer::collect_bool(values.len(), |i| {
                let new = if nulls.is_some_and(|n| n.is_null(i)) {
                    !elsewhere(None) && !std::mem::replace(&mut null, true)
                } else {
                    !elsewhere(Some(values[i])) && sparse.insert(values[i])
                };
                added += usize::from(new);
                new
            });
            self.null = null;
            self.len += added;
            return keep;
        }
        // The chunk of the row before: dense keys come in runs.
        let mut current: Option<(i64, Option<usize>)> = None;
        let keep = BooleanBuffer::collect_bool(values.len(), |i| {
            if nulls.is_some_and(|n| n.is_null(i)) {
                let new = !elsewhere(None) && !std::mem::replace(&mut null, true);
                added += usize::from(new);
                return new;
            }
            let k = values[i];
            if elsewhere(Some(k)) {
                return false;
            }
            let id = chunk(k);
            let at = match current {
                Some((c, at)) if c == id => at,
                _ => {
                    let at = chunks.get(&id).copied();
                    current = Some((id, at));
                    at
                }
            };
            let new = match at {
                Some(j) => set(&mut bitmaps[j], bit(k)),
                None => sparse.insert(k),
            };
            added += usize::from(new);
            new
        });
        self.null = null;
        self.len += added;
        keep
    }

    /// Gives the batch's chunks bitmaps when its keys are dense; whether
    /// they were.
    fn make_dense(&mut self, values: &[i64], nulls: Option<&NullBuffer>) -> bool {
        if values.len() < MIN_DENSE_BATCH {
            return false;
        }
        let valid = (0..values.len()).filter(|&i| nulls.is_none_or(|n| n.is_valid(i)));
        let Some((min, max)) = valid.map(|i| values[i]).fold(None, |range, k| match range {
            None => Some((k, k)),
            Some((lo, hi)) => Some((k.min(lo), k.max(hi))),
        }) else {
            return false;
        };
        if (max as i128 - min as i128) > DENSITY * values.len() as i128 {
            return false;
        }
        for id in chunk(min)..=chunk(max) {
            self.bitmap(id);
        }
        true
    }

    /// The bitmap of chunk `id`, made (with the chunk's keys moved out of
    /// the hash set) if there is none.
    fn bitmap(&mut self, id: i64) -> usize {
        if let Some(&i) = self.chunks.get(&id) {
            return i;
        }
        let mut bitmap = vec![0u64; WORDS].into_boxed_slice();
        if self.sparse.len() <= CHUNK_KEYS {
            self.sparse.retain(|&k| {
                let inside = chunk(k) == id;
                if inside {
                    set(&mut bitmap, bit(k));
                }
                !inside
            });
        } else {
            let base = id << CHUNK_SHIFT;
            for b in 0..CHUNK_KEYS {
                if self.sparse.remove(&(base + b as i64)) {
                    set(&mut bitmap, b);
                }
            }
        }
        self.bitmaps.push(bitmap);
        let i = self.bitmaps.len() - 1;
        self.chunks.insert(id, i);
        i
    }

    /// Every non-null key, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = i64> + '_ {
        let dense = self.chunks.iter().flat_map(move |(&id, &i)| {
            let base = id << CHUNK_SHIFT;
            self.bitmaps[i]
                .iter()
                .enumerate()
                .flat_map(move |(w, &word)| {
                    (0..64)
                        .filter(move |b| word & (1u64 << b) != 0)
                        .map(move |b| base + (w * 64 + b) as i64)
                })
        });
        dense.chain(self.sparse.iter().copied())
    }

    /// The set as bytes: the null flag, each bitmap whole (8 KiB, at most
    /// a byte a key by construction), then the scattered keys, 8 bytes
    /// each. 7.2 M sequential ids take 0.9 MB, not 58.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.null));
        out.extend_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        out.reserve(self.chunks.len() * (8 + WORDS * 8) + 8 + self.sparse.len() * 8);
        for (&id, &i) in &self.chunks {
            out.extend_from_slice(&id.to_le_bytes());
            for word in self.bitmaps[i].iter() {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.sparse.len() as u64).to_le_bytes());
        for k in &self.sparse {
            out.extend_from_slice(&k.to_le_bytes());
        }
    }

    /// A set from [`encode`](Self::encode)'s bytes; `None` when they are
    /// damaged (the counts are recomputed, not trusted).
    pub(crate) fn decode(bytes: &[u8]) -> Option<IntSet> {
        fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let head = rest.get(..n)?;
            *rest = &rest[n..];
            Some(head)
        }
        fn word(bytes: &[u8]) -> Option<u64> {
            bytes.try_into().ok().map(u64::from_le_bytes)
        }
        let mut rest = bytes;
        let null = match take(&mut rest, 1)?[0] {
            0 => false,
            1 => true,
            _ => return None,
        };
        let mut set = IntSet::default();
        for _ in 0..word(take(&mut rest, 8)?)? {
            let id = word(take(&mut rest, 8)?)? as i64;
            // Ids outside this range don't come from a key.
            if id < chunk(i64::MIN) || id > chunk(i64::MAX) || set.chunks.contains_key(&id) {
                return None;
            }
            let bitmap = take(&mut rest, WORDS * 8)?
                .chunks_exact(8)
                .map(word)
                .collect::<Option<Box<[u64]>>>()?;
            set.len += bitmap
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>();
            set.bitmaps.push(bitmap);
            set.chunks.insert(id, set.bitmaps.len() - 1);
        }
        let scattered = word(take(&mut rest, 8)?)?;
        if rest.len() as u64 != scattered.checked_mul(8)? {
            return None;
        }
        set.sparse.reserve(rest.len() / 8);
        for k in rest.chunks_exact(8) {
            set.insert(Some(word(k)? as i64));
        }
        if null {
            set.insert(None);
        }
        Some(set)
    }

    /// A set holding `values` (and null if `null`): chunks with at least
    /// a byte's worth of keys go to bitmaps, the rest to the hash set.
    pub(crate) fn from_values(values: &[i64], null: bool) -> IntSet {
        let mut per_chunk: FxHashMap<i64, usize> = FxHashMap::default();
        for &k in values {
            *per_chunk.entry(chunk(k)).or_default() += 1;
        }
        let mut set = IntSet::default();
        for (&id, &n) in &per_chunk {
            if n >= MIN_RESTORED {
                set.bitmap(id);
            }
        }
        let sparse = values.len()
            - per_chunk
                .values()
                .filter(|&&n| n >= MIN_RESTORED)
                .sum::<usize>();
        set.sparse.reserve(sparse);
        for &k in values {
            set.insert(Some(k));
        }
        if null {
            set.insert(None);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The reference: what std's hash set says, row by row.
    fn reference(seen: &mut HashSet<Option<i64>>, keys: &[Option<i64>]) -> Vec<bool> {
        keys.iter().map(|k| seen.insert(*k)).collect()
    }

    fn column(keys: &[Option<i64>]) -> (Vec<i64>, Option<NullBuffer>) {
        let values = keys.iter().map(|k| k.unwrap_or(0)).collect();
        let nulls = keys
            .iter()
            .any(Option::is_none)
            .then(|| NullBuffer::from(keys.iter().map(Option::is_some).collect::<Vec<_>>()));
        (values, nulls)
    }

    /// A small deterministic generator (no dependency for tests).
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Batches of every shape: sequential ids with re-deliveries, ids
    /// straddling chunk and sign boundaries, scattered keys, nulls, the
    /// extremes, small batches; each checked against a plain hash set.
    fn batches() -> Vec<Vec<Option<i64>>> {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut out = Vec::new();
        let mut id = -70_000i64;
        for b in 0..60 {
            let n = [8192, 3000, 100, 1024, 20_000][b % 5];
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                let r = next(&mut rng) % 100;
                keys.push(match (b % 4, r) {
                    (_, 0) => None,
                    (_, 1..=10) => Some(id - (next(&mut rng) % 5000) as i64),
                    (3, _) => Some(next(&mut rng) as i64 >> (next(&mut rng) % 48)),
                    _ => {
                        id += 1 + (next(&mut rng) % 3) as i64;
                        Some(id)
                    }
                });
            }
            if b == 7 {
                keys.extend([
                    Some(i64::MIN),
                    Some(i64::MAX),
                    Some(i64::MIN + 1),
                    Some(-1),
                    Some(0),
                ]);
            }
            out.push(keys);
        }
        out
    }

    #[test]
    fn every_row_is_new_exactly_when_a_plain_hash_set_says_so() {
        let mut set = IntSet::default();
        let mut seen = HashSet::new();
        for keys in batches() {
            let (values, nulls) = column(&keys);
            let got: Vec<bool> = set
                .insert_all(&values, nulls.as_ref(), |_| false)
                .iter()
                .collect();
            assert_eq!(got, reference(&mut seen, &keys));
            assert_eq!(set.len(), seen.len());
        }
        assert!(!set.bitmaps.is_empty(), "the dense batches made bitmaps");
        assert!(!set.sparse.is_empty(), "the scattered keys stayed hashed");
        let mut values: Vec<i64> = set.values().collect();
        values.sort_unstable();
        let mut expected: Vec<i64> = seen.iter().flatten().copied().collect();
        expected.sort_unstable();
        assert_eq!(values, expected);
        assert_eq!(set.has_null(), seen.contains(&None));
    }

    #[test]
    fn scattered_keys_alone_never_make_a_bitmap_and_answer_alike() {
        let mut set = IntSet::default();
        let mut seen = HashSet::new();
        for keys in batches().iter().skip(3).step_by(4) {
            let (values, nulls) = column(keys);
            let got: Vec<bool> = set
                .insert_all(&values, nulls.as_ref(), |_| false)
                .iter()
                .collect();
            assert_eq!(got, reference(&mut seen, keys));
        }
        assert!(set.bitmaps.is_empty());
        assert_eq!(set.len(), seen.len());
    }

    #[test]
    fn a_restored_set_answers_like_the_one_it_was_saved_from() {
        let mut set = IntSet::default();
        let mut seen = HashSet::new();
        let all = batches();
        let (first, rest) = all.split_at(30);
        for keys in first {
            let (values, nulls) = column(keys);
            set.insert_all(&values, nulls.as_ref(), |_| false);
            reference(&mut seen, keys);
        }
        let values: Vec<i64> = set.values().collect();
        let mut restored = IntSet::from_values(&values, set.has_null());
        assert_eq!(restored.len(), set.len());
        for keys in rest {
            let (values, nulls) = column(keys);
            let got: Vec<bool> = restored
                .insert_all(&values, nulls.as_ref(), |_| false)
                .iter()
                .collect();
            assert_eq!(got, reference(&mut seen, keys));
        }
    }

    #[test]
    fn encoded_sets_decode_to_the_same_keys_and_damage_is_refused() {
        let mut set = IntSet::default();
        for keys in batches() {
            let (values, nulls) = column(&keys);
            set.insert_all(&values, nulls.as_ref(), |_| false);
        }
        let mut bytes = Vec::new();
        set.encode(&mut bytes);
        assert!(
            bytes.len() < set.len() * 8 / 2,
            "bitmaps pack the dense keys"
        );
        let back = IntSet::decode(&bytes).unwrap();
        assert_eq!(back.len(), set.len());
        assert_eq!(back.has_null(), set.has_null());
        let sorted = |s: &IntSet| {
            let mut v: Vec<i64> = s.values().collect();
            v.sort_unstable();
            v
        };
        assert_eq!(sorted(&back), sorted(&set));
        for cut in [0, 1, 9, 100, bytes.len() - 1] {
            assert!(IntSet::decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(IntSet::decode(&longer).is_none());
    }

    #[test]
    fn a_dense_batch_takes_keys_already_hashed_into_its_bitmap() {
        let mut set = IntSet::default();
        for k in [5, 70_000, 9] {
            assert!(set.insert(Some(k)));
        }
        let values: Vec<i64> = (0..4096).collect();
        let keep = set.insert_all(&values, None, |_| false);
        assert!(!keep.value(5) && !keep.value(9) && keep.value(6));
        assert_eq!(set.len(), 4097);
        assert_eq!(set.sparse.len(), 1, "70,000 is in another chunk");
    }
}
