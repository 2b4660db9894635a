//! The data-path half of hot reload: the slots a node's next version
//! waits in, and what a transform node does at a batch boundary when one
//! waits — hand the state over and swap ([`take_over`]), or run it in
//! shadow first ([`shadow`], `--canary`). Building and checking the next
//! version is the reload controller's job, off the data path.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::record_batch::RecordBatch;

use super::diff::Diff;
use super::node::LiveTransform;
use super::policy::At;
use super::NodeStats;
use crate::plugin::{Emitted, LoadedPlugin, PluginInstance, Rows};

/// Where reports meant for the person at the terminal go (canary results,
/// `weir dev` replays and build errors).
pub type Reporter = Arc<dyn Fn(&str) + Send + Sync>;

/// A node's hand-over slots, shared between its task and the reload
/// controller.
#[derive(Clone, Default)]
pub struct Slots {
    /// Where the next version waits.
    pub successor: Successor,
    /// The last input batches (only in `weir dev`).
    pub recent: Recent,
}

/// A ready next version of a node's plugin.
pub struct Ready {
    /// The new component.
    pub plugin: Arc<LoadedPlugin>,
    /// Its instance, `init` done.
    pub instance: PluginInstance,
    /// Further instances for a node with `parallelism > 1`.
    pub siblings: Vec<PluginInstance>,
    /// Batches to run it in shadow before promotion (0: swap at once).
    pub canary: u32,
    /// Where the canary's report goes.
    pub report: Reporter,
}

/// The slot a node's successor waits in; the newest ready version wins.
#[derive(Clone, Default)]
pub struct Successor(Arc<Mutex<Option<Ready>>>);

impl Successor {
    /// Offers `ready` to the node, replacing any version not yet taken.
    pub fn offer(&self, ready: Ready) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(ready);
        }
    }

    /// The waiting successor, if any.
    pub fn take(&self) -> Option<Ready> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Whether a successor waits.
    pub fn is_waiting(&self) -> bool {
        self.0.lock().map(|slot| slot.is_some()).unwrap_or(false)
    }
}

/// The last few input batches of a node, kept (only in `weir dev`) so a
/// rebuilt version can be tried on them at once.
#[derive(Clone, Default)]
pub struct Recent(Option<Arc<Mutex<VecDeque<RecordBatch>>>>);

impl Recent {
    /// How many batches `weir dev` keeps per node.
    pub const KEEP: usize = 4;

    /// Starts keeping batches.
    pub fn enable(&mut self) {
        self.0.get_or_insert_with(Default::default);
    }

    pub(crate) fn push(&self, rows: &Rows) {
        if let Some(Ok(mut recent)) = self.0.as_ref().map(|r| r.lock()) {
            // Only kept batches pay for a pending selection.
            let batch = match rows.to_batch() {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "a batch not kept for replay");
                    return;
                }
            };
            if recent.len() == Self::KEEP {
                recent.pop_front();
            }
            recent.push_back(batch);
        }
    }

    /// The kept batches, oldest first.
    pub fn batches(&self) -> Vec<RecordBatch> {
        match self.0.as_ref().map(|r| r.lock()) {
            Some(Ok(recent)) => recent.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// A new version running in shadow beside the old one (`--canary N`).
pub struct Canary {
    pub(crate) ready: Ready,
    remaining: u32,
    diff: Diff,
}

/// Hands the state of `old` to `new` (`snapshot` → `restore`). A new
/// version that can't restore starts fresh, with a warning; `false` when
/// it trapped doing so and can't be recovered (reject it).
pub fn hand_over(node: &str, old: &mut PluginInstance, new: &mut PluginInstance) -> bool {
    let version = new.plugin().version();
    match old.snapshot() {
        Ok(Some(state)) => {
            if let Err(e) = new.restore(&state) {
                tracing::warn!(node, version, error = %e, "the new version can't restore the old state; it starts fresh");
                if new.trapped() {
                    if let Err(e) = new.recover() {
                        tracing::error!(node, version, error = %e, "rejected the new version");
                        return false;
                    }
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(node, error = %e, "the old version can't snapshot its state; the new one starts fresh")
        }
    }
    true
}

/// Processes `batch` on the successor waiting in the node's slot, if any,
/// making it the node's instance when that works. Returns `None` when no
/// successor waits, it was rejected, or it starts a canary: process on
/// the current instance as usual.
pub fn take_over(
    node: &str,
    transform: &mut LiveTransform,
    batch: &Rows,
    at: At,
    stats: &NodeStats,
) -> Option<Vec<Emitted>> {
    let index = at.index;
    let mut ready = transform.slots.successor.take()?;
    // The node's wiring is its ports': a version that declares others
    // needs the manifest rewired (a manifest reload rebuilds the node).
    let (old, new) = (
        transform.t.instance.declared_ports(),
        ready.instance.declared_ports(),
    );
    if old != new {
        tracing::error!(node, version = %ready.plugin.version(),
            old_ports = ?old, new_ports = ?new,
            "rejected the new version: it declares other ports than the running one; \
             change the manifest's wiring to match and it is rebuilt on reload");
        stats.rejected_version();
        return None;
    }
    ready
        .instance
        .set_watermark(transform.t.instance.watermark());
    let wired = transform.t.instance.wired();
    std::iter::once(&mut ready.instance)
        .chain(ready.siblings.iter_mut())
        .for_each(|i| i.set_wired(wired.to_vec()));
    let version = ready.plugin.version();
    let switch = Instant::now();
    if !hand_over(node, &mut transform.t.instance, &mut ready.instance) {
        stats.rejected_version();
        return None;
    }
    if ready.canary > 0 {
        tracing::info!(
            node,
            version,
            from_batch = index,
            batches = ready.canary,
            "running the new version in shadow before promotion"
        );
        transform.canary = Some(Canary {
            remaining: ready.canary,
            ready,
            diff: Diff::default(),
        });
        return None;
    }
    let switched = switch.elapsed();
    match ready.instance.process_port(at.port, batch, index) {
        Ok(out) => {
            tracing::info!(node, version, from_batch = index, switch_us = switched.as_micros() as u64,
                plugin = %ready.plugin.path.display(), "swapped in the new version");
            transform.t.instance = ready.instance;
            transform.t.siblings = ready.siblings;
            transform.canary = None;
            stats.swapped(switched, version.clone());
            Some(out)
        }
        Err(e) => {
            tracing::error!(node, version, batch = index, error = %e,
                "rejected the new version: it failed on its first batch, which runs on the old version instead");
            stats.rejected_version();
            None
        }
    }
}

/// Runs the node's canary (if any) on `batch`, which the running version
/// just turned into `outputs`; after its last batch, reports the
/// difference and promotes it — unless it failed on any batch.
pub fn shadow(
    node: &str,
    transform: &mut LiveTransform,
    batch: &Rows,
    at: At,
    outputs: &[Emitted],
    stats: &NodeStats,
) {
    let Some(canary) = transform.canary.as_mut() else {
        return;
    };
    let index = at.index;
    let version = canary.ready.plugin.version();
    match canary.ready.instance.process_port(at.port, batch, index) {
        // Port by port: rows on another port are another output.
        Ok(out) => canary.diff.add(batch.num_rows(), outputs, &out),
        Err(e) => {
            (canary.ready.report)(&format!(
                "canary of {node} ({version}) rejected: it failed on batch {index}: {e}\n{}",
                canary.diff
            ));
            tracing::error!(node, version, batch = index, error = %e, "canary rejected; the running version stays");
            stats.rejected_version();
            transform.canary = None;
            return;
        }
    }
    canary.remaining -= 1;
    if canary.remaining > 0 {
        return;
    }
    if let Some(canary) = transform.canary.take() {
        (canary.ready.report)(&format!(
            "canary of {node} ({version}) promoted from batch {}:\n{}",
            index + 1,
            canary.diff
        ));
        tracing::info!(node, version, from_batch = index + 1, "canary promoted");
        stats.took_over(version.clone());
        transform.t.instance = canary.ready.instance;
        transform.t.siblings = canary.ready.siblings;
    }
}
