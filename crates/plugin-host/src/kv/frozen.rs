//! A checkpoint's run, written off the node's thread. A snapshot freezes
//! the table (it becomes immutable and the node starts a fresh one) and a
//! thread of its own sorts it and writes it out as a run, while the node
//! goes on with its batches (RocksDB's immutable memtable). Until the run
//! is installed, reads look in the frozen table after the live one.
//!
//! The snapshot names the run before it is written: the checkpoint that
//! holds the snapshot waits for it ([`Written`]) before it is durable. A
//! successor on hot reload, which opens the runs at once, gets a snapshot
//! whose runs are all written ([`wrap`](super::wrap) with `background`
//! false).

use std::sync::{Arc, Condvar, Mutex};

use super::run::{Run, RunWriter};
use super::table::{EntryRef, Table};
use super::{write_table, KvStore};

/// The table a snapshot froze, and its run being written.
#[derive(Debug, Clone)]
pub(super) struct Frozen {
    table: Arc<Table>,
    name: String,
    done: Arc<Done<Arc<Run>>>,
}

impl Frozen {
    pub(super) fn get(&self, key: &[u8]) -> Option<EntryRef<'_>> {
        self.table.get(key)
    }

    pub(super) fn bytes(&self) -> usize {
        self.table.bytes()
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// The run's file name (in the store's directory).
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// What a snapshot naming the run waits for.
    pub(super) fn written(&self) -> Written {
        Written(vec![Writing::Run(self.done.clone())])
    }
}

/// What a thread writes, once written (or why it couldn't be).
#[derive(Debug)]
pub(super) struct Done<T> {
    result: Mutex<Option<Result<T, String>>>,
    ready: Condvar,
}

impl<T> Default for Done<T> {
    fn default() -> Self {
        Done {
            result: Mutex::new(None),
            ready: Condvar::new(),
        }
    }
}

impl<T: Clone> Done<T> {
    pub(super) fn set(&self, result: Result<T, String>) {
        let mut slot = self.result.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(result);
        self.ready.notify_all();
    }

    pub(super) fn wait(&self) -> Result<T, String> {
        let mut slot = self.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(result) = slot.as_ref() {
                return result.clone();
            }
            slot = self.ready.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(super) fn try_get(&self) -> Option<Result<T, String>> {
        self.result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The writer's side of [`Done`]: a writer that stops without answering
/// (a panic) answers with an error, so nobody waits forever.
pub(super) struct Answer<T: Clone>(pub(super) Arc<Done<T>>);

impl<T: Clone> Drop for Answer<T> {
    fn drop(&mut self) {
        if self.0.try_get().is_none() {
            self.0.set(Err("the thread writing a run stopped".into()));
        }
    }
}

/// A snapshot's files still being written (runs, logs of the table):
/// what its checkpoint waits for.
#[derive(Debug, Clone)]
pub struct Written(Vec<Writing>);

#[derive(Debug, Clone)]
enum Writing {
    Run(Arc<Done<Arc<Run>>>),
    Log(Arc<Done<()>>),
}

impl Written {
    pub(super) fn log(done: Arc<Done<()>>) -> Written {
        Written(vec![Writing::Log(done)])
    }

    /// All of `parts` (`None` when there are none).
    pub(super) fn join(parts: impl IntoIterator<Item = Written>) -> Option<Written> {
        let all: Vec<Writing> = parts.into_iter().flat_map(|w| w.0).collect();
        (!all.is_empty()).then_some(Written(all))
    }

    /// Blocks until the files are on disk (synced); an error when one
    /// can't be.
    pub fn wait(&self) -> Result<(), String> {
        for writing in &self.0 {
            match writing {
                Writing::Run(done) => done.wait().map(|_| ())?,
                Writing::Log(done) => done.wait()?,
            }
        }
        Ok(())
    }
}

impl KvStore {
    /// Freezes the table and starts writing it out as a run on a thread of
    /// its own (after the run frozen before is installed). `None` when
    /// the table is empty.
    pub(super) fn freeze(&mut self) -> Result<Option<Written>, String> {
        self.install_frozen(true)?;
        if self.map.is_empty() {
            return Ok(None);
        }
        let dir = self.spill_dir()?;
        let out = RunWriter::create(&dir, self.map.len() as u64, self.filter_bits())?;
        let name = out.name().to_string();
        let bottom = self.bottom();
        let fresh = self.map.fresh();
        let table = Arc::new(std::mem::replace(&mut self.map, fresh));
        self.sorted.take();
        // The frozen table's run takes the place of its logs.
        self.log = None;
        self.expiring = false;
        let done = Arc::new(Done::default());
        let (writing, finished) = (table.clone(), done.clone());
        let spawned = std::thread::Builder::new()
            .name("weir-state-write".into())
            .spawn(move || {
                let finished = Answer(finished);
                let written = write_table(out, &writing, bottom);
                // The node's thread frees the table, where it was made.
                drop(writing);
                finished.0.set(written);
            });
        if let Err(e) = spawned {
            done.set(Err(format!("can't start writing a run: {e}")));
        }
        self.frozen = Some(Frozen {
            table,
            name,
            done: done.clone(),
        });
        Ok(Some(Written(vec![Writing::Run(done)])))
    }

    /// Installs the frozen table's run once it is written (waiting for it
    /// when `wait`). A run that couldn't be written puts the frozen
    /// entries back in the table (its newer ones win), to be written
    /// again, and is the error.
    pub(super) fn install_frozen(&mut self, wait: bool) -> Result<(), String> {
        let Some(frozen) = &self.frozen else {
            return Ok(());
        };
        let result = match wait {
            true => frozen.done.wait(),
            false => match frozen.done.try_get() {
                Some(result) => result,
                None => return Ok(()),
            },
        };
        let Some(frozen) = self.frozen.take() else {
            return Ok(());
        };
        match result {
            Ok(run) => {
                self.runs.push(run);
                if let Some(dir) = self.dir.clone() {
                    self.compact(&dir);
                }
                Ok(())
            }
            Err(e) => {
                self.sorted.take();
                // The table now holds entries its log doesn't.
                self.log = None;
                for (key, entry) in frozen.table.iter() {
                    if self.map.contains_key(key) {
                        continue;
                    }
                    if self.map.put(key, entry.value, entry.expiry).is_none() {
                        return Err(format!(
                            "{e}; and the entries it held can't go back in memory (over 4 GiB)"
                        ));
                    }
                    self.expiring |= entry.expiry != super::Expiry::Never;
                }
                Err(e)
            }
        }
    }
}
