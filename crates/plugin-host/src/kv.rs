//! The host side of `weir:plugin/state@0.2.0`: a key-value store per
//! instance, bounded by the node's memory budget, with event-time expiry,
//! carried in the node's snapshot (so checkpoints and hot reload keep it).

use std::collections::BTreeMap;

/// When an entry stops being visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Never,
    /// `ttl` ms after the first watermark (none had arrived at the put).
    AfterFirstWatermark(u64),
    /// Once the watermark passes this event time (µs since the epoch).
    At(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: Vec<u8>,
    expiry: Expiry,
}

/// Bytes an entry is charged: its key and value, plus bookkeeping, so a
/// million empty keys still count.
fn charge(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len() + 32
}

/// One node instance's state store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvStore {
    map: BTreeMap<Vec<u8>, Entry>,
    bytes: usize,
    budget: usize,
    watermark: Option<i64>,
    /// While a plugin call runs: what each of its writes replaced, so a
    /// failed call leaves the store as it found it.
    undo: Option<Vec<(Vec<u8>, Option<Entry>)>>,
}

impl KvStore {
    /// An empty store that holds at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        KvStore {
            budget,
            ..KvStore::default()
        }
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The most bytes it may hold.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes charged against the budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The value under `key`, unless absent or expired.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map
            .get(key)
            .filter(|e| self.live(e))
            .map(|e| e.value.clone())
    }

    /// Stores `value` under `key`; an error when the budget is spent (the
    /// store is unchanged then).
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.insert(key, value, Expiry::Never)
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
        self.insert(key, value, expiry)
    }

    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>, expiry: Expiry) -> Result<(), String> {
        let old = self.map.get(&key).map_or(0, |e| charge(&key, &e.value));
        let new = charge(&key, &value);
        let after = self.bytes - old + new;
        if after > self.budget {
            return Err(format!(
                "the node's state store is full: {after} bytes would exceed its {} bytes \
                 (limits.memory_mb); delete or expire keys",
                self.budget
            ));
        }
        self.bytes = after;
        let entry = Entry { value, expiry };
        match &mut self.undo {
            Some(undo) => {
                let replaced = self.map.insert(key.clone(), entry);
                undo.push((key, replaced));
            }
            None => {
                self.map.insert(key, entry);
            }
        }
        Ok(())
    }

    /// Removes `key` (a no-op when absent).
    pub fn delete(&mut self, key: &[u8]) {
        if let Some(e) = self.map.remove(key) {
            self.bytes -= charge(key, &e.value);
            if let Some(undo) = &mut self.undo {
                undo.push((key.to_vec(), Some(e)));
            }
        }
    }

    /// A plugin call starts: its writes can be undone until
    /// [`commit`](Self::commit).
    pub fn begin(&mut self) {
        self.undo = Some(Vec::new());
    }

    /// The call succeeded: its writes stay.
    pub fn commit(&mut self) {
        self.undo = None;
    }

    /// The call failed (an error, a trap, outputs the host refused): its
    /// writes are undone, newest first. How many there were.
    pub fn rollback(&mut self) -> usize {
        let Some(undo) = self.undo.take() else {
            return 0;
        };
        let writes = undo.len();
        for (key, before) in undo.into_iter().rev() {
            if let Some(now) = self.map.remove(&key) {
                self.bytes -= charge(&key, &now.value);
            }
            if let Some(before) = before {
                self.bytes += charge(&key, &before.value);
                self.map.insert(key, before);
            }
        }
        writes
    }

    /// Up to `limit` live entries with keys `>= start`, in byte order.
    pub fn scan(&self, start: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map
            .range(start.to_vec()..)
            .filter(|(_, e)| self.live(e))
            .take(limit as usize)
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    /// The event-time watermark moved: entries it passed are dropped.
    pub fn advance(&mut self, watermark: i64) {
        if self.watermark.is_some_and(|w| w >= watermark) {
            return;
        }
        self.watermark = Some(watermark);
        let mut freed = 0;
        self.map.retain(|key, e| {
            if let Expiry::AfterFirstWatermark(ttl) = e.expiry {
                e.expiry = Expiry::At(watermark.saturating_add(ttl_micros(ttl)));
            }
            let keep = !matches!(e.expiry, Expiry::At(t) if t <= watermark);
            if !keep {
                freed += charge(key, &e.value);
            }
            keep
        });
        self.bytes -= freed;
    }

    fn live(&self, e: &Entry) -> bool {
        match (e.expiry, self.watermark) {
            (Expiry::At(t), Some(w)) => t > w,
            _ => true,
        }
    }

    /// The store as bytes, for a snapshot.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.watermark.map_or(u64::MAX, |w| w as u64));
        out.push(u8::from(self.watermark.is_some()));
        put_u64(out, self.map.len() as u64);
        for (key, e) in &self.map {
            put_bytes(out, key);
            put_bytes(out, &e.value);
            let (tag, n) = match e.expiry {
                Expiry::Never => (0u8, 0u64),
                Expiry::AfterFirstWatermark(ttl) => (1, ttl),
                Expiry::At(t) => (2, t as u64),
            };
            out.push(tag);
            put_u64(out, n);
        }
    }

    /// A store from [`encode`](Self::encode)'s bytes, with `budget`; an
    /// error names what is damaged. A store over the budget is refused:
    /// the node's memory limit was lowered below what its state needs.
    pub fn decode(bytes: &[u8], budget: usize) -> Result<Self, String> {
        let mut r = Reader(bytes);
        let watermark = r.u64()?;
        let has_watermark = r.u8()? == 1;
        let count = r.u64()?;
        let mut store = KvStore::new(budget);
        store.watermark = has_watermark.then_some(watermark as i64);
        for _ in 0..count {
            let key = r.bytes()?.to_vec();
            let value = r.bytes()?.to_vec();
            let expiry = match (r.u8()?, r.u64()?) {
                (0, _) => Expiry::Never,
                (1, ttl) => Expiry::AfterFirstWatermark(ttl),
                (2, t) => Expiry::At(t as i64),
                (tag, _) => return Err(format!("unknown expiry tag {tag}")),
            };
            store.insert(key, value, expiry)?;
        }
        if !r.0.is_empty() {
            return Err(format!("{} bytes after the last entry", r.0.len()));
        }
        Ok(store)
    }
}

fn ttl_micros(ttl_ms: u64) -> i64 {
    i64::try_from(ttl_ms.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads what [`KvStore::encode`] wrote, never past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "cut short: {n} bytes wanted, {} left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(
            bytes.try_into().map_err(|_| "cut short")?,
        ))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "a length past the address space")?;
        self.take(n)
    }
}

/// Marks a 0.2 node's snapshot: the plugin's own snapshot and its store.
const MAGIC: &[u8; 8] = b"weirkv02";

/// A 0.2 node's state for a checkpoint or a successor: the plugin's own
/// `snapshot` and its store, or `None` when both are empty.
pub fn wrap(plugin: Option<Vec<u8>>, store: &KvStore) -> Option<Vec<u8>> {
    if store.is_empty() {
        // Nothing of the host's: the plugin's bytes as they are, which a
        // 0.1 successor can take over too.
        return plugin;
    }
    let mut out = MAGIC.to_vec();
    match &plugin {
        Some(bytes) => {
            out.push(1);
            put_bytes(&mut out, bytes);
        }
        None => out.push(0),
    }
    store.encode(&mut out);
    Some(out)
}

/// Splits what [`wrap`] made into the plugin's snapshot and the store;
/// bytes without the mark are a plugin's own snapshot (from a 0.1 version,
/// or a 0.2 one with an empty store).
pub fn unwrap(state: &[u8], budget: usize) -> Result<(Option<Vec<u8>>, KvStore), String> {
    let Some(rest) = state.strip_prefix(MAGIC) else {
        return Ok((Some(state.to_vec()), KvStore::new(budget)));
    };
    let mut r = Reader(rest);
    let plugin = match r.u8()? {
        0 => None,
        _ => Some(r.bytes()?.to_vec()),
    };
    let store = KvStore::decode(r.0, budget).map_err(|e| format!("the state store: {e}"))?;
    Ok((plugin, store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_is_read_back_scanned_in_key_order_and_deleted() {
        let mut kv = KvStore::new(1 << 20);
        kv.put(b"b".to_vec(), b"2".to_vec()).unwrap();
        kv.put(b"a".to_vec(), b"1".to_vec()).unwrap();
        kv.put(b"c".to_vec(), b"3".to_vec()).unwrap();
        assert_eq!(kv.get(b"a"), Some(b"1".to_vec()));
        let keys: Vec<_> = kv.scan(b"b", 10).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(kv.scan(b"", 1).len(), 1);
        kv.delete(b"a");
        assert_eq!(kv.get(b"a"), None);
        assert_eq!(kv.bytes(), charge(b"b", b"2") + charge(b"c", b"3"));
    }

    #[test]
    fn a_failed_calls_writes_are_undone_and_a_successful_calls_kept() {
        let mut kv = KvStore::new(1 << 20);
        kv.put(b"kept".to_vec(), b"1".to_vec()).unwrap();
        kv.put(b"gone".to_vec(), b"2".to_vec()).unwrap();
        let (before, bytes) = (kv.clone(), kv.bytes());
        kv.begin();
        kv.put(b"kept".to_vec(), b"changed".to_vec()).unwrap();
        kv.put(b"kept".to_vec(), b"changed again".to_vec()).unwrap();
        kv.delete(b"gone");
        kv.put(b"new".to_vec(), b"3".to_vec()).unwrap();
        kv.put_with_ttl(b"ttl".to_vec(), b"4".to_vec(), 10).unwrap();
        assert_eq!(kv.rollback(), 5);
        assert_eq!(kv, before);
        assert_eq!(kv.bytes(), bytes);
        kv.begin();
        kv.put(b"new".to_vec(), b"3".to_vec()).unwrap();
        kv.commit();
        assert_eq!(kv.rollback(), 0, "nothing left to undo after a commit");
        assert_eq!(kv.get(b"new"), Some(b"3".to_vec()));
    }

    #[test]
    fn a_put_past_the_budget_is_refused_and_changes_nothing() {
        let mut kv = KvStore::new(100);
        kv.put(b"k".to_vec(), vec![0; 50]).unwrap();
        let err = kv.put(b"l".to_vec(), vec![0; 50]).unwrap_err();
        assert!(err.contains("state store is full"), "{err}");
        assert_eq!(kv.get(b"l"), None);
        // Replacing a value is charged the difference.
        kv.put(b"k".to_vec(), vec![0; 60]).unwrap();
        assert_eq!(kv.bytes(), charge(b"k", &[0; 60]));
    }

    #[test]
    fn a_ttl_counts_event_time_from_the_watermark_at_the_put() {
        let mut kv = KvStore::new(1 << 20);
        kv.put_with_ttl(b"early".to_vec(), vec![1], 10).unwrap();
        kv.advance(1_000_000);
        kv.put_with_ttl(b"late".to_vec(), vec![2], 10).unwrap();
        kv.put(b"kept".to_vec(), vec![3]).unwrap();
        kv.advance(1_009_999);
        assert!(kv.get(b"early").is_some() && kv.get(b"late").is_some());
        kv.advance(1_010_000);
        assert_eq!((kv.get(b"early"), kv.get(b"late")), (None, None));
        assert_eq!(kv.get(b"kept"), Some(vec![3]));
        assert_eq!(kv.bytes(), charge(b"kept", &[3]));
    }

    #[test]
    fn a_store_crosses_a_snapshot_with_the_plugins_own_state_bit_for_bit() {
        let mut kv = KvStore::new(1 << 20);
        kv.put(b"a".to_vec(), b"1".to_vec()).unwrap();
        kv.put_with_ttl(b"t".to_vec(), b"x".to_vec(), 5).unwrap();
        let state = wrap(Some(b"plugin".to_vec()), &kv).unwrap();
        let (plugin, back) = unwrap(&state, 1 << 20).unwrap();
        assert_eq!(plugin.as_deref(), Some(&b"plugin"[..]));
        assert_eq!(back, kv);
        // An empty store leaves the plugin's bytes as they are.
        let empty = KvStore::new(1 << 20);
        assert_eq!(wrap(Some(b"p".to_vec()), &empty), Some(b"p".to_vec()));
        assert_eq!(unwrap(b"p", 1).unwrap().0, Some(b"p".to_vec()));
    }

    #[test]
    fn damaged_snapshots_are_errors_never_panics() {
        let mut kv = KvStore::new(1 << 20);
        kv.put(b"key".to_vec(), b"value".to_vec()).unwrap();
        let state = wrap(None, &kv).unwrap();
        for cut in 0..state.len() {
            let _ = unwrap(&state[..cut], 1 << 20);
        }
        let mut lying = state.clone();
        let at = MAGIC.len() + 1 + 17;
        lying[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(unwrap(&lying, 1 << 20).is_err());
        assert!(unwrap(&state, 10).unwrap_err().contains("full"));
    }
}
