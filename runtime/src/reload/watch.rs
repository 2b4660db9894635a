//! The reload controller: watches plugin files, builds successors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use notify::{RecursiveMode, Watcher as _};

use super::{Ready, Successor};
use crate::graph::{Graph, Prepared};
use crate::manifest::TransformConfig;
use crate::plugin::PluginHost;
use crate::{Error, Result};

/// Events closer together than this are one change (editors and `cp`
/// write a file in several steps).
const DEBOUNCE: Duration = Duration::from_millis(50);

/// What the controller knows of one transform node.
struct Node {
    name: String,
    path: PathBuf,
    config: TransformConfig,
    config_json: String,
    input: Option<SchemaRef>,
    output: Option<SchemaRef>,
    successor: Successor,
    /// The version the node runs (or was last offered).
    current: blake3::Hash,
    /// The last version rejected, so one bad file is reported once.
    rejected: Option<blake3::Hash>,
}

/// Watches the plugin files of a running pipeline and prepares successors.
/// Dropping it stops watching.
pub struct Controller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _watcher: notify::RecommendedWatcher,
}

fn same_shape(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

impl Node {
    /// Builds and checks the version now in the file; `Ok(None)` when the
    /// content is unchanged.
    fn successor(&self, host: &PluginHost, base_dir: &Path) -> Result<Option<Ready>> {
        let plugin = host.load(&self.path)?;
        if plugin.hash == self.current {
            return Ok(None);
        }
        let mut instance = host.instantiate(&plugin, &self.name, &self.config, base_dir)?;
        if let Some(input) = &self.input {
            let output = instance.describe(input, &self.config_json)?;
            if let (Some(new), Some(old)) = (&output, &self.output) {
                if !same_shape(new, old) {
                    return Err(Error::Schema {
                        node: self.name.clone(),
                        message: format!(
                            "the new version changes the output schema from [{old}] to [{new}]; \
                             restart the pipeline to apply such a change"
                        ),
                    });
                }
            }
        }
        instance.init(&self.config_json)?;
        Ok(Some(Ready { plugin, instance }))
    }
}

impl Controller {
    /// Starts watching every plugin file of `graph`; successors go to the
    /// slots in `prepared`.
    pub fn start(graph: &Graph, prepared: &Prepared, host: PluginHost) -> Result<Controller> {
        let mut nodes = Vec::new();
        for (name, t) in &prepared.transforms {
            let config = graph.manifest.transforms[name].clone();
            let path = graph.manifest.resolve(&config.plugin);
            let path = path.canonicalize().unwrap_or(path);
            nodes.push(Node {
                name: name.clone(),
                path,
                config,
                config_json: t.config_json.clone(),
                input: t.input.clone(),
                output: t.output.clone(),
                successor: t.successor.clone(),
                current: t.plugin.hash,
                rejected: None,
            });
        }
        let (tx, rx) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    let _ = tx.send(event.paths);
                }
            })
            .map_err(|e| Error::Build(format!("can't watch plugin files: {e}")))?;
        // Watch directories, not files: an editor or `cp` may replace the
        // file by renaming a new one over it.
        let mut dirs: Vec<PathBuf> = nodes
            .iter()
            .filter_map(|n| n.path.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in &dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| Error::Build(format!("can't watch {}: {e}", dir.display())))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let base_dir = graph.manifest.base_dir.clone();
        let thread = std::thread::Builder::new()
            .name("weir-reload".into())
            .spawn(move || run(nodes, rx, host, base_dir, flag))
            .map_err(|e| Error::Build(format!("can't start the reload controller: {e}")))?;
        tracing::info!(files = dirs.len(), "watching plugin files for changes");
        Ok(Controller {
            stop,
            thread: Some(thread),
            _watcher: watcher,
        })
    }
}

fn run(
    mut nodes: Vec<Node>,
    rx: mpsc::Receiver<Vec<PathBuf>>,
    host: PluginHost,
    base_dir: PathBuf,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(first) = rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let mut changed: Vec<PathBuf> = first;
        std::thread::sleep(DEBOUNCE);
        while let Ok(more) = rx.try_recv() {
            changed.extend(more);
        }
        let changed: HashMap<PathBuf, ()> = changed
            .into_iter()
            .map(|p| (p.canonicalize().unwrap_or(p), ()))
            .collect();
        for node in nodes.iter_mut().filter(|n| changed.contains_key(&n.path)) {
            // One write raises several events: act once per new content.
            let Ok(bytes) = std::fs::read(&node.path) else {
                continue;
            };
            let hash = blake3::hash(&bytes);
            if hash == node.current || Some(hash) == node.rejected {
                continue;
            }
            match node.successor(&host, &base_dir) {
                Ok(Some(ready)) => {
                    node.current = ready.plugin.hash;
                    tracing::info!(node = %node.name, version = %ready.plugin.version(),
                        "new version ready; it takes over at the next batch");
                    node.successor.offer(ready);
                }
                Ok(None) => {}
                Err(e) => {
                    node.rejected = Some(hash);
                    tracing::error!(node = %node.name, file = %node.path.display(), error = %e,
                        "rejected the new version; the running one stays");
                }
            }
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
