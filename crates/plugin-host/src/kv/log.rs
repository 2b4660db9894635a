//! A checkpoint's log of the table: what the table took since the
//! checkpoint before, copied out of its arena as it is and appended to the
//! state as a file of its own (Flink's changelog state backend; a
//! database's write-ahead log). The table stays in memory and is written
//! out as a sorted run only when it fills its half of the share.
//!
//! Freezing and writing the table at every checkpoint (as before) sorted
//! and indexed each second's keys into a run of their own: a writer thread
//! busy all the time beside the node, and more runs for every lookup to
//! ask. A log costs a copy and a sequential write.
//!
//! A snapshot names the table's logs after its runs; a restore replays them
//! into the table, in order. A freeze, a flush or a compaction of the table
//! starts its log over, and so does a restore: the next checkpoint logs the
//! whole table.

use std::sync::Arc;

use super::frozen::{Answer, Done, Written};
use super::table::End;
use super::KvStore;

/// Logs are files with this extension, in their store's directory.
pub(super) const EXTENSION: &str = "log";
/// A log ends with its entries' length (u64) and this mark: a file cut
/// short, even at an entry's end, is told from a whole one.
const MAGIC: &[u8; 8] = b"weirlog1";

/// The entries of a log file's bytes; an error for a file that isn't a
/// whole log.
pub(super) fn entries(bytes: &[u8]) -> Result<&[u8], String> {
    let body = bytes
        .strip_suffix(MAGIC)
        .ok_or("not a whole weir state log (no mark at its end)")?;
    let (entries, len) = body
        .split_at_checked(body.len().saturating_sub(8))
        .ok_or("cut short")?;
    let len = u64::from_le_bytes(len.try_into().map_err(|_| "cut short")?);
    if len != entries.len() as u64 {
        return Err(format!(
            "cut short: {} bytes of entries, {len} written",
            entries.len()
        ));
    }
    Ok(entries)
}

/// The live table's logs.
#[derive(Debug, Clone, Default)]
pub(super) struct Log {
    /// Where the arena ended at the last log.
    end: End,
    /// The logs so far, oldest first (names in the store's directory),
    /// each with its write.
    files: Vec<(String, Arc<Done<()>>)>,
}

impl Log {
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(name, _)| name.as_str())
    }

    /// What a checkpoint naming these logs waits for.
    pub(super) fn writes(&self) -> impl Iterator<Item = Written> + '_ {
        self.files
            .iter()
            .map(|(_, done)| Written::log(done.clone()))
    }
}

impl KvStore {
    /// Logs what the table took since its last log (all of it, after a
    /// restart of the log) to a new file, written on a thread of its own.
    pub(super) fn log_table(&mut self) -> Result<(), String> {
        let log = match self.log.take() {
            // A log whose write failed can't be named again: start over
            // with the whole table.
            Some(log)
                if !log
                    .files
                    .iter()
                    .any(|(_, d)| matches!(d.try_get(), Some(Err(_)))) =>
            {
                log
            }
            _ => Log::default(),
        };
        let (bytes, end) = (self.map.tail(log.end), self.map.end());
        let mut files = log.files;
        if !bytes.is_empty() {
            let dir = self.spill_dir()?;
            let name = format!("{}.{EXTENSION}", super::run::unique());
            let path = dir.path().join(&name);
            let done = Arc::new(Done::default());
            let answer = Answer(done.clone());
            let spawned = std::thread::Builder::new()
                .name("weir-state-log".into())
                .spawn(move || {
                    let _dir = dir;
                    answer.0.set(write(&path, &bytes));
                });
            if let Err(e) = spawned {
                done.set(Err(format!("can't start writing a state log: {e}")));
            }
            files.push((name, done));
        }
        self.log = Some(Log { end, files });
        Ok(())
    }
}

/// Writes `bytes` to a new file at `path`, stamped now and synced.
fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let fail = |e: std::io::Error| format!("can't write {}: {e}", path.display());
    // The store's directory is made with its first file.
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.write_all(&(bytes.len() as u64).to_le_bytes())
        .map_err(fail)?;
    file.write_all(MAGIC).map_err(fail)?;
    // Stamped with the clock snapshots are timed by (as runs are).
    file.set_modified(std::time::SystemTime::now())
        .map_err(fail)?;
    file.sync_all().map_err(fail)
}
