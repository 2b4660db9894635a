//! Hot reload: `weir run --watch` swaps a plugin's new version in while the
//! pipeline runs, without losing, repeating or reordering a row.
//!
//! The [`Controller`] watches every plugin file the manifest names. On a
//! change it compiles the new component, instantiates it with the node's
//! limits, runs `init` with the node's config and checks `describe` still
//! gives the same output schema — all off the data path, while the node
//! keeps processing on the old version. The ready successor is left in the
//! node's [`Successor`] slot. The node takes it at its next batch boundary
//! ([`take_over`]): the old version's `snapshot` is handed to the new one's
//! `restore`, and the new version processes that batch. If it fails on its
//! first batch the batch is re-run on the old version and the new one is
//! dropped. A broken version never replaces a working one.

mod watch;

use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;

use crate::plugin::{LoadedPlugin, PluginInstance};
pub use watch::Controller;

/// A ready next version of a node's plugin.
pub struct Ready {
    /// The new component.
    pub plugin: Arc<LoadedPlugin>,
    /// Its instance, `init` done.
    pub instance: PluginInstance,
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
}

/// Processes `batch` on the successor waiting in the node's slot, if any,
/// making it the node's instance when that works. Returns `None` when no
/// successor waits or it was rejected: process on the current instance as
/// usual.
pub fn take_over(
    node: &str,
    current: &mut PluginInstance,
    successor: &Successor,
    batch: &RecordBatch,
    index: u64,
) -> Option<Vec<RecordBatch>> {
    let Ready {
        plugin,
        mut instance,
    } = successor.take()?;
    let version = plugin.version();
    match current.snapshot() {
        Ok(Some(state)) => {
            if let Err(e) = instance.restore(&state) {
                tracing::warn!(node, version, error = %e, "the new version can't restore the old state; it starts fresh");
                if instance.trapped() {
                    if let Err(e) = instance.recover() {
                        tracing::error!(node, version, error = %e, "rejected the new version");
                        return None;
                    }
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(node, error = %e, "the old version can't snapshot its state; the new one starts fresh")
        }
    }
    match instance.process(batch, index) {
        Ok(out) => {
            tracing::info!(node, version, from_batch = index, plugin = %plugin.path.display(), "swapped in the new version");
            *current = instance;
            Some(out)
        }
        Err(e) => {
            tracing::error!(node, version, batch = index, error = %e,
                "rejected the new version: it failed on its first batch, which runs on the old version instead");
            None
        }
    }
}
