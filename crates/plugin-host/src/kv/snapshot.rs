//! A store in a node's snapshot (a checkpoint's state file, or what a
//! successor version takes over), and pruning runs no checkpoint needs.
//!
//! Two forms, told apart by their first 8 bytes:
//! - `weirkv04`: the store's runs by name, in their directory, with the
//!   watermarks, then the table's logs (a checkpoint's: see [`super::log`]).
//!   Its entries stay on disk: a checkpoint writes only what changed since
//!   the one before. (`weirkv03`, from before logs, restores alike.)
//! - `weirkv02`: the whole store inline, for a small store that never
//!   needed a directory (and as every earlier checkpoint has it).
//!
//! Bytes with neither mark are a plugin's own snapshot (a 0.1 plugin's, or
//! a 0.2 one's with an empty store).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::log::{Log, EXTENSION as LOG};
use super::run::{Run, SpillDir, EXTENSION};
use super::{Expiry, KvStore, Written};

const INLINE: &[u8; 8] = b"weirkv02";
const RUNS: &[u8; 8] = b"weirkv04";
/// Runs without logs: what checkpoints held before logs.
const RUNS_03: &[u8; 8] = b"weirkv03";

/// A 0.2 node's state for a checkpoint or a successor: the plugin's own
/// `snapshot` and its store, or `None` when both are empty. A store with
/// a directory first writes out what its table took since the last
/// snapshot; an error when that fails. With `background` (a checkpoint),
/// that is a log of the table written on a thread of its own, which the
/// state names at once: it is durable once the [`Written`] answered is (a
/// checkpoint waits for it). Without (a successor, which opens the store
/// now), the table is written out as a run first.
pub fn wrap(
    plugin: Option<Vec<u8>>,
    store: &mut KvStore,
    background: bool,
) -> Result<(Option<Vec<u8>>, Option<Written>), String> {
    if store.dir.is_none() && store.runs.is_empty() && store.frozen.is_none() {
        if store.map.is_empty() {
            // Nothing of the host's: the plugin's bytes as they are, which
            // a 0.1 successor can take over too.
            return Ok((plugin, None));
        }
        let mut out = INLINE.to_vec();
        put_plugin(&mut out, plugin.as_deref());
        encode_inline(store, &mut out);
        return Ok((Some(out), None));
    }
    let written = match background {
        true => {
            if let Err(e) = store.install_frozen(false) {
                tracing::warn!(error = %e, "a state-store run could not be written; its entries stay in memory");
            }
            store.log_table()?;
            let frozen = store.frozen.as_ref().map(super::frozen::Frozen::written);
            let logs = store.log.iter().flat_map(Log::writes);
            Written::join(frozen.into_iter().chain(logs))
        }
        false => {
            store.flush()?;
            None
        }
    };
    let mut out = RUNS.to_vec();
    put_plugin(&mut out, plugin.as_deref());
    put_opt(&mut out, store.watermark);
    put_opt(&mut out, store.first_watermark);
    let dir = store
        .dir
        .as_ref()
        .map_or(PathBuf::new(), |d| d.path().to_path_buf());
    put_bytes(&mut out, dir.as_os_str().as_encoded_bytes());
    out.push(u8::from(
        store.dir.as_ref().is_some_and(|d| d.is_temporary()),
    ));
    let frozen = store.frozen.as_ref().map(|f| (dir.as_path(), f.name()));
    let runs = store.runs.iter().map(|r| (r.dir().path(), r.name()));
    // The logs are the table's: newest, replayed last.
    let logs = store
        .log
        .iter()
        .flat_map(Log::names)
        .map(|n| (dir.as_path(), n));
    let files: Vec<(&Path, &str)> = runs.chain(frozen).chain(logs).collect();
    put_u64(&mut out, files.len() as u64);
    for (at, name) in files {
        put_bytes(&mut out, at.as_os_str().as_encoded_bytes());
        put_bytes(&mut out, name.as_bytes());
    }
    Ok((Some(out), written))
}

fn put_plugin(out: &mut Vec<u8>, plugin: Option<&[u8]>) {
    match plugin {
        Some(bytes) => {
            out.push(1);
            put_bytes(out, bytes);
        }
        None => out.push(0),
    }
}

fn encode_inline(store: &KvStore, out: &mut Vec<u8>) {
    put_u64(out, store.watermark.map_or(u64::MAX, |w| w as u64));
    out.push(u8::from(store.watermark.is_some()));
    put_u64(out, store.map.len() as u64);
    // In key order: the same store gives the same bytes.
    for at in store.map.sorted() {
        let (key, e) = store.map.at(at);
        put_bytes(out, key);
        put_bytes(out, e.value.unwrap_or_default());
        let (tag, n) = match e.expiry {
            Expiry::Never => (0u8, 0u64),
            Expiry::AfterFirstWatermark(ttl) => (1, ttl),
            Expiry::At(t) => (2, t as u64),
        };
        out.push(tag);
        put_u64(out, n);
    }
}

/// Splits what [`wrap`] made into the plugin's snapshot and the store,
/// which keeps `like`'s budget and directory (the restoring instance's).
/// Runs are opened, not read: their entries are read when asked for.
pub fn unwrap(state: &[u8], like: &KvStore) -> Result<(Option<Vec<u8>>, KvStore), String> {
    let mut store = KvStore::new(like.budget);
    store.dir = like.dir.clone();
    if let Some(rest) = state.strip_prefix(INLINE) {
        let mut r = Reader(rest);
        let plugin = r.plugin()?;
        decode_inline(&mut r, &mut store).map_err(|e| format!("the state store: {e}"))?;
        // An old checkpoint of a store larger than its share now goes to
        // disk (it was refused before).
        if store.bytes() > store.spill_at() {
            store.flush()?;
        }
        return Ok((plugin, store));
    }
    let Some(rest) = state
        .strip_prefix(RUNS)
        .or_else(|| state.strip_prefix(RUNS_03))
    else {
        return Ok((Some(state.to_vec()), store));
    };
    let mut r = Reader(rest);
    let plugin = r.plugin()?;
    let damaged = |e: String| format!("the state store: {e}");
    store.watermark = r.opt().map_err(damaged)?;
    store.first_watermark = r.opt().map_err(damaged)?;
    let dir = r.path().map_err(damaged)?;
    let temporary = r.u8().map_err(damaged)? == 1;
    if store.dir.is_none() && !dir.as_os_str().is_empty() {
        store.dir = Some(open_dir(&dir, temporary)?);
    }
    // The logs are replayed into the table; its next log is then of all
    // of it, so this store names no log file it didn't write (another
    // store of the process — the pipeline's, when this is a canary's —
    // may prune those).
    let mut replayed = false;
    for _ in 0..r.u64().map_err(damaged)? {
        let dir = r.path().map_err(damaged)?;
        let name = String::from_utf8(r.bytes().map_err(damaged)?.to_vec())
            .map_err(|_| damaged("a run name that is not UTF-8".into()))?;
        let dir = open_dir(&dir, temporary)?;
        match name.ends_with(&format!(".{LOG}")) {
            true => {
                replay(&mut store, &dir, &name)?;
                replayed = true;
            }
            false if !replayed => store.runs.push(Run::open(&dir, &name)?),
            false => return Err(damaged(format!("run {name} named after the table's logs"))),
        }
    }
    if !r.0.is_empty() {
        return Err(damaged(format!("{} bytes after the last run", r.0.len())));
    }
    Ok((plugin, store))
}

/// Replays log `name` of `dir` into the store's table.
fn replay(store: &mut KvStore, dir: &std::sync::Arc<SpillDir>, name: &str) -> Result<(), String> {
    let path = dir.path().join(name);
    let damaged = |e: String| format!("{}: {e}", path.display());
    let bytes = std::fs::read(&path).map_err(|e| damaged(e.to_string()))?;
    let entries = super::log::entries(&bytes).map_err(damaged)?;
    store.expiring |= store.map.replay(entries).map_err(damaged)?;
    Ok(())
}

fn open_dir(path: &Path, temporary: bool) -> Result<std::sync::Arc<SpillDir>, String> {
    if !path.is_dir() {
        return Err(format!(
            "its runs' directory {} is gone{}",
            path.display(),
            if temporary {
                " (a temporary one: spilled state survives a hot reload, not a restart \
                 without checkpoints)"
            } else {
                ""
            }
        ));
    }
    Ok(SpillDir::durable(path))
}

fn decode_inline(r: &mut Reader<'_>, store: &mut KvStore) -> Result<(), String> {
    let watermark = r.u64()?;
    let has_watermark = r.u8()? == 1;
    let count = r.u64()?;
    store.watermark = has_watermark.then_some(watermark as i64);
    store.first_watermark = store.watermark;
    for _ in 0..count {
        let key = r.bytes()?;
        let value = r.bytes()?;
        let expiry = match (r.u8()?, r.u64()?) {
            (0, _) => Expiry::Never,
            (1, ttl) => Expiry::AfterFirstWatermark(ttl),
            (2, t) => Expiry::At(t as i64),
            (tag, _) => return Err(format!("unknown expiry tag {tag}")),
        };
        store
            .map
            .put(key, Some(value), expiry)
            .ok_or("over 4 GiB of entries")?;
        store.expiring |= expiry != Expiry::Never;
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the last entry", r.0.len()));
    }
    Ok(())
}

/// Deletes the runs in `dir` that none of `states` (the snapshots in the
/// checkpoints still kept) names, nor `keep` (the runs of the snapshot
/// the caller took, which a checkpoint not yet written may hold), that no
/// store of this process has open (a canary's, say) and that were written
/// or merged in before `before` (a run written since may be in a snapshot
/// taken since). How many it deleted.
pub fn collect_garbage(
    dir: &Path,
    states: &[Vec<u8>],
    keep: &[String],
    before: SystemTime,
) -> usize {
    let mut named: HashSet<String> = keep.iter().cloned().collect();
    for state in states {
        if let Some(names) = run_names(state) {
            named.extend(names);
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut deleted = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < before);
        if (name.ends_with(&format!(".{EXTENSION}")) || name.ends_with(&format!(".{LOG}")))
            && old
            && !named.contains(&name)
            && !super::run::is_open(&entry.path())
            && std::fs::remove_file(entry.path()).is_ok()
        {
            deleted += 1;
        }
    }
    deleted
}

/// The runs a node's snapshot (what [`wrap`] made) names: none for a
/// snapshot without runs.
pub fn snapshot_runs(state: &[u8]) -> Vec<String> {
    run_names(state).unwrap_or_default()
}

/// The files (runs and logs) a `weirkv04` or `weirkv03` snapshot names
/// (`None` for other bytes).
fn run_names(state: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader(
        state
            .strip_prefix(RUNS)
            .or_else(|| state.strip_prefix(RUNS_03))?,
    );
    r.plugin().ok()?;
    r.opt().ok()?;
    r.opt().ok()?;
    r.bytes().ok()?;
    r.u8().ok()?;
    let mut names = Vec::new();
    for _ in 0..r.u64().ok()? {
        r.bytes().ok()?;
        names.push(String::from_utf8(r.bytes().ok()?.to_vec()).ok()?);
    }
    Some(names)
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_opt(out: &mut Vec<u8>, n: Option<i64>) {
    out.push(u8::from(n.is_some()));
    put_u64(out, n.unwrap_or(0) as u64);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads what [`wrap`] wrote, never past the end.
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

    fn opt(&mut self) -> Result<Option<i64>, String> {
        let some = self.u8()? == 1;
        let n = self.u64()? as i64;
        Ok(some.then_some(n))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "a length past the address space")?;
        self.take(n)
    }

    fn path(&mut self) -> Result<PathBuf, String> {
        let bytes = self.bytes()?;
        let text = std::str::from_utf8(bytes).map_err(|_| "a directory name that is not UTF-8")?;
        Ok(PathBuf::from(text))
    }

    fn plugin(&mut self) -> Result<Option<Vec<u8>>, String> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.bytes()?.to_vec()),
        })
    }
}
