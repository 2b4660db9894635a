//! Merging runs, off the data path: size-tiered, four runs at a time.
//! Four consecutive runs merge once they are within 2× of each other
//! (runs grow toward the oldest), so a key is rewritten about log4(keys /
//! flushed) times and a lookup reads a few runs a tier; when merges fall
//! behind, the cheapest four merge whatever their sizes.
//!
//! A merge runs on a thread of its own (the node's thread goes on with
//! its batches, on the other core) and is installed at the next flush or
//! snapshot after it finished: its inputs are immutable and still the
//! same runs at the same places (runs are only ever added at the newest
//! end, and one merge runs at a time), so the merged run replaces them
//! exactly. Until then, reads and snapshots use the inputs.

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use super::run::{self, Run, SpillDir};
use super::{expired, Entry, KvStore};

/// Runs merged into one at a time.
const FAN_IN: usize = 4;

/// Runs kept at most: past it the store waits for the merge in flight
/// (past half of it, runs merge whatever their sizes).
const MAX_RUNS: usize = 24;

/// A merge in flight: of the runs at `from..from + count`.
#[derive(Debug)]
pub(super) struct Merging {
    from: usize,
    count: usize,
    done: Receiver<Result<Arc<Run>, String>>,
}

impl KvStore {
    /// Installs a finished merge, and starts the next one due.
    pub(super) fn compact(&mut self, dir: &Arc<SpillDir>) {
        // Too many runs (merges fell behind the flushes): wait for the one
        // in flight rather than make every lookup read more of them.
        let wait = self.runs.len() > MAX_RUNS;
        self.install(wait);
        if self.merging.is_some() {
            return;
        }
        let Some(from) = self.pick() else {
            return;
        };
        let inputs: Vec<Arc<Run>> = self.runs[from..from + FAN_IN].to_vec();
        // Into the bottom run, what no reader can see is dropped: the
        // watermark can only have moved on by the time it is installed.
        let (bottom, first, wm) = (from == 0, self.first_watermark, self.watermark);
        let bits = self.filter_bits();
        let dir = dir.clone();
        let (tx, done) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("weir-state-merge".into())
            .spawn(move || {
                let keep =
                    |e: &Entry| !bottom || (e.value.is_some() && !expired(e.expiry, first, wm));
                let merged = run::merge(&inputs, &dir, bits, &keep);
                // Let go of the inputs before the result is seen: garbage
                // collected after the install must find the merged-away
                // runs closed (the send let the test's collection race
                // this thread's drop, and find all four still open).
                drop(inputs);
                let _ = tx.send(merged);
            });
        match spawned {
            Ok(_) => {
                self.merging = Some(Merging {
                    from,
                    count: FAN_IN,
                    done,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "can't start a state-store merge; runs stay unmerged")
            }
        }
    }

    /// Where the next merge starts: the newest four consecutive runs
    /// within 2× of each other (runs are ordered oldest first, and an
    /// older run is the larger), or, past half of [`MAX_RUNS`], the four
    /// consecutive runs smallest together — so the count comes down
    /// whatever the flushes' sizes.
    fn pick(&self) -> Option<usize> {
        let n = self.runs.len();
        if n < FAN_IN {
            return None;
        }
        let bytes = |i: usize| self.runs[i].bytes();
        if let Some(i) = (0..=n - FAN_IN)
            .rev()
            .find(|&i| bytes(i) <= 2 * bytes(i + FAN_IN - 1))
        {
            return Some(i);
        }
        if n <= MAX_RUNS / 2 {
            return None;
        }
        (0..=n - FAN_IN).min_by_key(|&i| (i..i + FAN_IN).map(bytes).sum::<u64>())
    }

    /// Installs the merge in flight if it finished (waiting for it when
    /// `wait`); a merge that failed leaves its inputs in place, logged.
    pub(super) fn install(&mut self, wait: bool) {
        let Some(merging) = &self.merging else {
            return;
        };
        let result = if wait {
            merging.done.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            merging.done.try_recv()
        };
        let merged = match result {
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => Err("the merge thread stopped".to_string()),
            Ok(merged) => merged,
        };
        let Some(Merging { from, count, .. }) = self.merging.take() else {
            return;
        };
        match merged {
            Ok(run) => {
                run.touch();
                for old in self.runs.splice(from..from + count, [run]) {
                    old.retire();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a state-store merge failed; its runs stay as they are")
            }
        }
    }

    /// Waits for the merge in flight, and any it makes due (tests, and a
    /// caller that wants the fewest runs).
    pub fn settle(&mut self) {
        if let Err(e) = self.install_frozen(true) {
            tracing::warn!(error = %e, "a state-store run could not be written; its entries stay in memory");
        }
        while self.merging.is_some() {
            self.install(true);
            if let Some(dir) = self.dir.clone() {
                self.compact(&dir);
            }
        }
    }
}
