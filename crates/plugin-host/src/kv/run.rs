//! An immutable, sorted run of state entries on disk: what a store spills
//! when its memory share fills and what each checkpoint adds (only the
//! entries changed since the one before). A run is never modified; runs
//! are merged into new ones, so a checkpoint can point at them as they are
//! and a successor version can read them while its predecessor still does.
//!
//! Layout: 4 KiB blocks of entries in key order, then the index (each
//! block's first key and place), then a Bloom filter of the keys, then a
//! 32-byte footer. Opening a run reads the index and the filter only; a
//! lookup reads at most one block (none when the filter says no).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::index::BlockIndex;
use super::table::EntryRef;
use super::{Entry, Expiry};

const MAGIC: &[u8; 8] = b"weirrun1";
const FOOTER: usize = 32;
const BLOCK: usize = 4096;
/// Filter bits per key at most: about 1 % false positives with 7 probes
/// (fewer bits and probes when the store's memory budget can't hold
/// that many).
pub(super) const BITS_PER_KEY: u64 = 10;
const MAX_PROBES: u64 = 7;
/// Runs are files with this extension, in their store's directory.
pub(super) const EXTENSION: &str = "run";

/// Where a store writes its runs. A temporary one (a store with no
/// checkpoint directory that outgrew its memory) is removed once nothing
/// uses it; a checkpoint's is kept, and pruned with the checkpoints.
#[derive(Debug)]
pub(super) struct SpillDir {
    path: PathBuf,
    temporary: bool,
}

impl SpillDir {
    /// The directory at `path` (created with the first run), shared with
    /// any store already using it.
    pub(super) fn durable(path: &Path) -> Arc<SpillDir> {
        shared(path, false)
    }

    /// A fresh directory under the system's temporary directory.
    pub(super) fn temporary() -> Result<Arc<SpillDir>, String> {
        let path = std::env::temp_dir().join(format!("weir-state-{}", unique()));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("can't create {}: {e}", path.display()))?;
        Ok(shared(&path, true))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn is_temporary(&self) -> bool {
        self.temporary
    }
}

/// One `SpillDir` per path in the process, so the last user of a
/// temporary one removes it.
fn shared(path: &Path, temporary: bool) -> Arc<SpillDir> {
    static DIRS: OnceLock<Mutex<HashMap<PathBuf, Weak<SpillDir>>>> = OnceLock::new();
    let mut dirs = DIRS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    dirs.retain(|_, d| d.strong_count() > 0);
    if let Some(dir) = dirs.get(path).and_then(Weak::upgrade) {
        return dir;
    }
    let dir = Arc::new(SpillDir {
        path: path.to_path_buf(),
        temporary,
    });
    dirs.insert(path.to_path_buf(), Arc::downgrade(&dir));
    dir
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A name no other run of any process has: time, process and a counter.
pub(super) fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:x}-{:x}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One open run.
#[derive(Debug)]
pub(super) struct Run {
    name: String,
    file: File,
    index: BlockIndex,
    bloom: Bloom,
    entries: u64,
    bytes: u64,
    dir: Arc<SpillDir>,
    /// Merged into another run: in a temporary directory, its file goes
    /// when the last reader lets go.
    retired: AtomicBool,
}

/// Runs open in this process, by path: a successor version (or a canary
/// beside the running one) reads the same `Run` instead of opening and
/// indexing it again.
fn open_runs() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Weak<Run>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Run>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Runs being written in this process (a merge on its own thread): no
/// snapshot names them yet, and none may delete them.
fn writing() -> std::sync::MutexGuard<'static, std::collections::HashSet<PathBuf>> {
    static WRITING: OnceLock<Mutex<std::collections::HashSet<PathBuf>>> = OnceLock::new();
    WRITING
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Whether the run at `path` is in use in this process: open (a store, a
/// canary's or a successor's, reads it) or being written.
pub(super) fn is_open(path: &Path) -> bool {
    writing().contains(path) || open_runs().get(path).is_some_and(|w| w.strong_count() > 0)
}

impl Run {
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn entries(&self) -> u64 {
        self.entries
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(super) fn dir(&self) -> &Arc<SpillDir> {
        &self.dir
    }

    /// Memory the open run's index holds.
    pub(super) fn index_bytes(&self) -> usize {
        self.index.bytes()
    }

    /// Memory the open run holds: its index and filter.
    pub(super) fn resident(&self) -> usize {
        self.bloom.words.capacity() * 8 + self.index.bytes()
    }

    /// Stamps the file's modification time with now: a merged run, once
    /// installed, is as new as the snapshot that first names it, for
    /// [`collect_garbage`](super::collect_garbage) (which spares runs
    /// newer than the snapshot it was asked for).
    pub(super) fn touch(&self) {
        if let Err(e) = self.file.set_modified(std::time::SystemTime::now()) {
            tracing::warn!(run = %self.name, error = %e, "can't stamp a merged state-store run");
        }
    }

    pub(super) fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    /// Run `name` of `dir`: the one already open in this process, or
    /// read from disk (its index and filter only).
    pub(super) fn open(dir: &Arc<SpillDir>, name: &str) -> Result<Arc<Run>, String> {
        let path = dir.path().join(name);
        let mut open = open_runs();
        if let Some(run) = open.get(&path).and_then(Weak::upgrade) {
            return Ok(run);
        }
        let run = Arc::new(Run::read(dir, name, &path)?);
        open.insert(path, Arc::downgrade(&run));
        Ok(run)
    }

    fn read(dir: &Arc<SpillDir>, name: &str, path: &Path) -> Result<Run, String> {
        let damaged = |what: &str| format!("{}: {what}", path.display());
        let file = File::open(path).map_err(|e| damaged(&e.to_string()))?;
        let bytes = file.metadata().map_err(|e| damaged(&e.to_string()))?.len();
        if bytes < FOOTER as u64 {
            return Err(damaged("shorter than a run's footer"));
        }
        let mut footer = [0u8; FOOTER];
        file.read_exact_at(&mut footer, bytes - FOOTER as u64)
            .map_err(|e| damaged(&e.to_string()))?;
        if &footer[24..] != MAGIC {
            return Err(damaged("not a weir state run (no mark at its end)"));
        }
        let word =
            |i: usize| u64::from_le_bytes(footer[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let (index_at, bloom_at, entries) = (word(0), word(1), word(2));
        let end = bytes - FOOTER as u64;
        if !(index_at <= bloom_at && bloom_at <= end) {
            return Err(damaged("its footer points outside the file"));
        }
        let region = |from: u64, to: u64| -> Result<Vec<u8>, String> {
            let mut buf = vec![0; (to - from) as usize];
            file.read_exact_at(&mut buf, from)
                .map_err(|e| damaged(&e.to_string()))?;
            Ok(buf)
        };
        let index = parse_index(&region(index_at, bloom_at)?, index_at)
            .map_err(|e| damaged(&format!("its index: {e}")))?;
        let bloom = Bloom::parse(&region(bloom_at, end)?)
            .map_err(|e| damaged(&format!("its filter: {e}")))?;
        Ok(Run {
            name: name.to_string(),
            file,
            index,
            bloom,
            entries,
            bytes,
            dir: dir.clone(),
            retired: AtomicBool::new(false),
        })
    }

    /// The entry under `key`, if this run has one (a tombstone included).
    /// `hash` is [`hash`]`(key)`, computed once for every run asked.
    pub(super) fn get(&self, key: &[u8], hash: u64) -> Result<Option<Entry>, String> {
        if !self.bloom.may_contain(hash) {
            return Ok(None);
        }
        let at = self.index.partition_point(key);
        if at == 0 {
            return Ok(None);
        }
        let block = self.block(at - 1)?;
        let mut r = Decoder(&block);
        while !r.0.is_empty() {
            let (k, entry) = r.entry()?;
            match k.cmp(key) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(Some(entry)),
                std::cmp::Ordering::Greater => break,
            }
        }
        Ok(None)
    }

    fn block(&self, i: usize) -> Result<Vec<u8>, String> {
        let (offset, len) = self.index.place(i);
        let mut buf = vec![0; len as usize];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| format!("{}: {e}", self.dir.path().join(&self.name).display()))?;
        Ok(buf)
    }

    /// Entries with keys `>= start`, in key order.
    pub(super) fn iter_from(self: &Arc<Self>, start: &[u8]) -> RunIter {
        let block = self.index.partition_point(start).saturating_sub(1);
        RunIter {
            run: self.clone(),
            block,
            start: start.to_vec(),
            pending: std::collections::VecDeque::new(),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let path = self.dir.path().join(&self.name);
        let mut open = open_runs();
        if open.get(&path).is_some_and(|w| w.strong_count() == 0) {
            open.remove(&path);
        }
        if self.dir.is_temporary() && self.retired.load(Ordering::Relaxed) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A run's entries from a key on, read a block at a time.
pub(super) struct RunIter {
    run: Arc<Run>,
    block: usize,
    start: Vec<u8>,
    pending: std::collections::VecDeque<(Vec<u8>, Entry)>,
}

impl RunIter {
    /// The next entry, or `None` past the last.
    pub(super) fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Entry)>, String> {
        while self.pending.is_empty() {
            if self.block >= self.run.index.len() {
                return Ok(None);
            }
            let bytes = self.run.block(self.block)?;
            self.block += 1;
            let mut r = Decoder(&bytes);
            while !r.0.is_empty() {
                let (k, e) = r.entry()?;
                if *k >= *self.start {
                    self.pending.push_back((k.to_vec(), e));
                }
            }
        }
        Ok(self.pending.pop_front())
    }
}

/// Writes a new run, entries in strictly increasing key order.
pub(super) struct RunWriter {
    _writing: Writing,
    dir: Arc<SpillDir>,
    name: String,
    out: BufWriter<File>,
    offset: u64,
    block: Vec<u8>,
    first: Option<Box<[u8]>>,
    index: BlockIndex,
    bloom: Bloom,
    entries: u64,
}

impl RunWriter {
    /// A run in `dir` for at most `expected` entries, with a filter of
    /// `bits` bits a key.
    pub(super) fn create(
        dir: &Arc<SpillDir>,
        expected: u64,
        bits: u64,
    ) -> Result<RunWriter, String> {
        let name = format!("{}.{EXTENSION}", unique());
        std::fs::create_dir_all(dir.path())
            .map_err(|e| format!("can't create {}: {e}", dir.path().display()))?;
        let path = dir.path().join(&name);
        // Read back through the same handle once written.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("can't create {}: {e}", path.display()))?;
        writing().insert(path.clone());
        Ok(RunWriter {
            _writing: Writing(path),
            dir: dir.clone(),
            name,
            out: BufWriter::with_capacity(1 << 16, file),
            offset: 0,
            block: Vec::with_capacity(BLOCK + 256),
            first: None,
            index: BlockIndex::default(),
            bloom: Bloom::with_bits(expected.max(1).saturating_mul(bits.max(1)), bits),
            entries: 0,
        })
    }

    /// The run's file name in its directory.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    fn fail(&self, e: std::io::Error) -> String {
        format!(
            "can't write {}: {e}",
            self.dir.path().join(&self.name).display()
        )
    }

    pub(super) fn push(&mut self, key: &[u8], entry: EntryRef<'_>) -> Result<(), String> {
        if self.first.is_none() {
            self.first = Some(key.into());
        }
        encode_entry(&mut self.block, key, entry);
        self.bloom.insert(hash(key));
        self.entries += 1;
        if self.block.len() >= BLOCK {
            self.end_block()?;
        }
        Ok(())
    }

    fn end_block(&mut self) -> Result<(), String> {
        let Some(first) = self.first.take() else {
            return Ok(());
        };
        self.out.write_all(&self.block).map_err(|e| self.fail(e))?;
        self.index
            .push(&first, self.offset, self.block.len() as u64)
            .map_err(|e| format!("can't write {}: {e}", self.name))?;
        self.offset += self.block.len() as u64;
        self.block.clear();
        Ok(())
    }

    /// Writes the index, filter and footer, syncs the file to disk (a
    /// checkpoint may point at it next) and opens the run.
    pub(super) fn finish(mut self) -> Result<Arc<Run>, String> {
        self.end_block()?;
        let mut tail = Vec::new();
        put_varint(&mut tail, self.index.len() as u64);
        for i in 0..self.index.len() {
            let (first, (offset, len)) = (self.index.first(i), self.index.place(i));
            put_varint(&mut tail, first.len() as u64);
            tail.extend_from_slice(first);
            put_varint(&mut tail, offset);
            put_varint(&mut tail, len);
        }
        self.index.shrink();
        let index_at = self.offset;
        let bloom_at = index_at + tail.len() as u64;
        self.bloom.encode(&mut tail);
        let end = index_at + tail.len() as u64;
        for word in [index_at, bloom_at, self.entries] {
            tail.extend_from_slice(&word.to_le_bytes());
        }
        tail.extend_from_slice(MAGIC);
        self.out.write_all(&tail).map_err(|e| self.fail(e))?;
        self.out.flush().map_err(|e| self.fail(e))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| format!("can't write a run: {e}"))?;
        // Stamped with the clock snapshots are timed by: the file
        // system's own may be a tick (ms) behind, and a run written just
        // after a snapshot must not look older than it.
        file.set_modified(std::time::SystemTime::now())
            .map_err(|e| format!("can't stamp {}: {e}", self.name))?;
        file.sync_all()
            .map_err(|e| format!("can't sync {}: {e}", self.name))?;
        let run = Arc::new(Run {
            name: self.name,
            file,
            index: self.index,
            bloom: self.bloom,
            entries: self.entries,
            bytes: end + FOOTER as u64,
            dir: self.dir,
            retired: AtomicBool::new(false),
        });
        open_runs().insert(run.dir.path().join(&run.name), Arc::downgrade(&run));
        Ok(run)
    }
}

/// Marks a run as being written while it lives.
struct Writing(PathBuf);

impl Drop for Writing {
    /// Finished (the run is open by then) or abandoned.
    fn drop(&mut self) {
        writing().remove(&self.0);
    }
}

fn parse_index(bytes: &[u8], data_end: u64) -> Result<BlockIndex, String> {
    let mut r = Decoder(bytes);
    let count = r.varint()?;
    let mut index = BlockIndex::default();
    for _ in 0..count {
        let len = r.varint()? as usize;
        let first = r.take(len)?;
        let (offset, len) = (r.varint()?, r.varint()?);
        if offset.saturating_add(len) > data_end || len > u64::from(u32::MAX) {
            return Err("a block past the data".into());
        }
        index.push(first, offset, len)?;
    }
    index.shrink();
    Ok(index)
}

/// Bits set for each key a run holds; a clear bit proves a key absent.
/// Blocked: a key's probes all fall in one 512-bit block (a cache line),
/// so a lookup in a run costs one memory access, not seven.
#[derive(Debug)]
struct Bloom {
    words: Vec<u64>,
    /// Bits set a key: about 0.69 × bits a key, the optimum.
    probes: u64,
}

/// Words in a block.
const BLOCK_WORDS: usize = 8;

impl Bloom {
    fn with_bits(bits: u64, per_key: u64) -> Bloom {
        let bits = bits.max(512).next_multiple_of(512);
        Bloom {
            words: vec![0; (bits / 64) as usize],
            probes: (per_key * 69 / 100).clamp(1, MAX_PROBES),
        }
    }

    /// The key's block (its first word) and its bits in it.
    fn probes(&self, h: u64) -> (usize, impl Iterator<Item = usize>) {
        let blocks = (self.words.len() / BLOCK_WORDS) as u64;
        let block = (h % blocks) as usize * BLOCK_WORDS;
        let bits = h.rotate_left(32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (
            block,
            (0..self.probes).map(move |i| ((bits >> (9 * i)) & 511) as usize),
        )
    }

    fn insert(&mut self, h: u64) {
        let (block, bits) = self.probes(h);
        for bit in bits {
            self.words[block + bit / 64] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, h: u64) -> bool {
        let (block, mut bits) = self.probes(h);
        bits.all(|bit| self.words[block + bit / 64] & (1 << (bit % 64)) != 0)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.probes.to_le_bytes());
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    fn parse(bytes: &[u8]) -> Result<Bloom, String> {
        let (probes, bytes) = bytes.split_at_checked(8).ok_or("cut short")?;
        let probes = u64::from_le_bytes(probes.try_into().map_err(|_| "cut short")?);
        if !(1..=MAX_PROBES).contains(&probes) {
            return Err(format!("{probes} probes a key"));
        }
        if bytes.is_empty() || !bytes.len().is_multiple_of(8 * BLOCK_WORDS) {
            return Err(format!("{} bytes, not whole 64-byte blocks", bytes.len()));
        }
        Ok(Bloom {
            probes,
            words: bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        })
    }
}

/// A stable 64-bit hash of a key (it is stored, in the filters: never
/// change it).
pub(super) fn hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    // murmur3's finalizer: every input bit reaches every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// An entry: key length and key, a flags byte (bit 0: tombstone; bits
/// 1–2: expiry kind), the expiry's u64 if any, value length and value.
fn encode_entry(out: &mut Vec<u8>, key: &[u8], entry: EntryRef<'_>) {
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    let (kind, n) = match entry.expiry {
        Expiry::Never => (0u8, 0u64),
        Expiry::AfterFirstWatermark(ttl) => (1, ttl),
        Expiry::At(t) => (2, t as u64),
    };
    out.push(u8::from(entry.value.is_none()) | kind << 1);
    if kind != 0 {
        out.extend_from_slice(&n.to_le_bytes());
    }
    if let Some(v) = entry.value {
        put_varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }
}

struct Decoder<'a>(&'a [u8]);

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err("a length longer than 64 bits".into())
    }

    fn entry(&mut self) -> Result<(&'a [u8], Entry), String> {
        let len = self.varint()? as usize;
        let key = self.take(len)?;
        let flags = self.take(1)?[0];
        let n = if flags >> 1 != 0 {
            u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "cut short")?)
        } else {
            0
        };
        let expiry = match flags >> 1 {
            0 => Expiry::Never,
            1 => Expiry::AfterFirstWatermark(n),
            2 => Expiry::At(n as i64),
            k => return Err(format!("unknown expiry kind {k}")),
        };
        let value = if flags & 1 == 0 {
            let len = self.varint()? as usize;
            Some(self.take(len)?.to_vec())
        } else {
            None
        };
        Ok((key, Entry { value, expiry }))
    }
}

/// Merges `runs` (oldest first) into one new run in `dir`: for a key in
/// several, the newest entry. `keep` drops what no reader can see any more
/// (tombstones and expired entries, when the oldest run takes part).
pub(super) fn merge(
    runs: &[Arc<Run>],
    dir: &Arc<SpillDir>,
    bits: u64,
    keep: &dyn Fn(&Entry) -> bool,
) -> Result<Arc<Run>, String> {
    let expected = runs.iter().map(|r| r.entries).sum();
    let mut out = RunWriter::create(dir, expected, bits)?;
    let mut iters: Vec<RunIter> = runs.iter().map(|r| r.iter_from(&[])).collect();
    let mut heads: Vec<Option<(Vec<u8>, Entry)>> = Vec::with_capacity(iters.len());
    for it in &mut iters {
        heads.push(it.next_entry()?);
    }
    loop {
        // The smallest key; among equal keys the newest run (last) wins.
        let mut best: Option<usize> = None;
        for (i, head) in heads.iter().enumerate() {
            if let Some((k, _)) = head {
                if best.is_none_or(|b| heads[b].as_ref().is_some_and(|(bk, _)| k <= bk)) {
                    best = Some(i);
                }
            }
        }
        let Some(best) = best else { break };
        let Some((key, entry)) = heads[best].take() else {
            break;
        };
        for (i, head) in heads.iter_mut().enumerate() {
            if i == best || head.as_ref().is_some_and(|(k, _)| *k == key) {
                if i != best {
                    *head = None;
                }
                *head = iters[i].next_entry()?;
                // Skip further equal keys (a run holds a key once).
            }
        }
        if keep(&entry) {
            out.push(&key, entry.as_ref())?;
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_says_no_to_almost_every_absent_key() {
        let mut bloom = Bloom::with_bits(100_000 * BITS_PER_KEY, BITS_PER_KEY);
        for i in 0u64..100_000 {
            bloom.insert(hash(format!("k{}", i * 7919).as_bytes()));
        }
        assert!(
            (0u64..100_000).all(|i| bloom.may_contain(hash(format!("k{}", i * 7919).as_bytes())))
        );
        let false_positives = (0u64..100_000)
            .filter(|i| bloom.may_contain(hash(format!("absent{i}").as_bytes())))
            .count();
        assert!(
            false_positives < 2_000,
            "{false_positives} false positives in 100 000"
        );
    }
}
