//! The threads a `parallelism > 1` node runs its sibling instances on.
//!
//! Long-lived on purpose: a thread spawned per batch starts beside its
//! parent and finishes before the scheduler moves it to an idle core, so
//! "parallel" batches could share one core. An instance travels to a worker
//! with its batch and comes back with the result.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::plugin::Rows;
use tokio::sync::Notify;

use crate::plugin::{Emitted, PluginInstance};
use crate::Result;

/// What a worker returns: the instance, and what it made of the batch.
pub(crate) type Done = (PluginInstance, Result<Vec<Emitted>>);

struct Job {
    instance: PluginInstance,
    batch: Rows,
    index: u64,
    reply: mpsc::Sender<Done>,
    finished: Arc<Notify>,
}

/// One thread per sibling instance, for the node's lifetime.
pub(crate) struct Workers {
    jobs: Vec<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    pub(crate) fn new(node: &str, count: usize) -> Workers {
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count {
            let (tx, rx) = mpsc::channel::<Job>();
            let span = tracing::info_span!("node", name = %node, instance = i + 1);
            let spawned = std::thread::Builder::new()
                .name(format!("weir-{node}-{}", i + 1))
                .spawn(move || {
                    let _entered = span.enter();
                    while let Ok(mut job) = rx.recv() {
                        let result = job.instance.process_port(0, &job.batch, job.index);
                        // Reply first: whoever wakes on `finished` finds it.
                        let _ = job.reply.send((job.instance, result));
                        job.finished.notify_one();
                    }
                });
            // A worker that can't start leaves its jobs to the caller's
            // fallback (no sender for it).
            if let Ok(handle) = spawned {
                jobs.push(tx);
                threads.push(handle);
            }
        }
        Workers { jobs, threads }
    }

    /// Runs `instance` on `batch` on worker `slot`; the result arrives on
    /// the returned receiver, and `finished` is notified. `Err` gives the
    /// instance back when the worker is gone.
    #[allow(clippy::result_large_err)] // moved, not copied: the instance itself
    pub(crate) fn run(
        &self,
        slot: usize,
        instance: PluginInstance,
        batch: Rows,
        index: u64,
        finished: &Arc<Notify>,
    ) -> std::result::Result<mpsc::Receiver<Done>, PluginInstance> {
        let Some(jobs) = self.jobs.get(slot) else {
            return Err(instance);
        };
        let (reply, result) = mpsc::channel();
        let job = Job {
            instance,
            batch,
            index,
            reply,
            finished: finished.clone(),
        };
        match jobs.send(job) {
            Ok(()) => Ok(result),
            Err(mpsc::SendError(job)) => Err(job.instance),
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.jobs.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
