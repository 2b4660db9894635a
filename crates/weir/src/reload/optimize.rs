//! The background optimizer: Cranelift builds of the versions running on
//! the baseline tier, one at a time, on a thread of the lowest OS priority,
//! so the compile takes only the CPU the pipeline leaves.

use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use crate::plugin::engine::lower_thread_priority;
use crate::plugin::{LoadedPlugin, PluginHost};
use crate::{Error, Result};

/// What the reload controller waits for.
pub(super) enum Event {
    /// Files changed on disk.
    Files(Vec<PathBuf>),
    /// The optimized build of a version a node runs on the baseline tier.
    Optimized {
        node: String,
        plugin: Arc<LoadedPlugin>,
    },
}

/// A request: this node runs this baseline build.
type Request = (String, Arc<LoadedPlugin>);

/// The optimizer thread's inbox. Dropping it lets the thread end after
/// the compile in progress (a compile can't be interrupted).
pub(super) struct Optimizer {
    requests: mpsc::Sender<Request>,
}

impl Optimizer {
    /// Starts the thread; results go to `events`.
    pub(super) fn start(host: PluginHost, events: mpsc::Sender<Event>) -> Result<Optimizer> {
        let (requests, inbox) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("weir-optimize".into())
            .spawn(move || {
                lower_thread_priority();
                while let Ok(first) = inbox.recv() {
                    for (node, plugin) in latest(first, &inbox) {
                        if !optimize(&host, &events, node, &plugin) {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| Error::build_from("can't start the background optimizer", e))?;
        Ok(Optimizer { requests })
    }

    /// Asks for the optimized build of `plugin`, which `node` runs.
    pub(super) fn request(&self, node: &str, plugin: &Arc<LoadedPlugin>) {
        let _ = self.requests.send((node.to_string(), plugin.clone()));
    }
}

/// `first` and whatever else waits, the newest request per node only:
/// while a compile ran, a node may have moved on to a newer version.
fn latest(first: Request, inbox: &mpsc::Receiver<Request>) -> Vec<Request> {
    let mut wanted = vec![first];
    while let Ok((node, plugin)) = inbox.try_recv() {
        match wanted.iter_mut().find(|(n, _)| *n == node) {
            Some(slot) => slot.1 = plugin,
            None => wanted.push((node, plugin)),
        }
    }
    wanted
}

/// Builds one; `false` once the controller is gone.
fn optimize(
    host: &PluginHost,
    events: &mpsc::Sender<Event>,
    node: String,
    plugin: &Arc<LoadedPlugin>,
) -> bool {
    match host.optimize(plugin) {
        Ok(Some(plugin)) => events.send(Event::Optimized { node, plugin }).is_ok(),
        // The file holds a newer version; its own request follows.
        Ok(None) => true,
        Err(e) => {
            tracing::warn!(node = %node, error = %e,
                "can't build the optimized code; the baseline build keeps running");
            true
        }
    }
}
