//! The reload controller: watches plugin files, the manifest and (in
//! `weir dev`) the source crates of local plugins; builds successors and
//! reload plans off the data path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

use super::dev;
use super::node::{canonical, Node};
use super::optimize::{Event, Optimizer};
use super::plan::{plan, Schemas};
use crate::exec::{Control, Reporter};
use crate::graph::{Graph, Prepared, PreparedTransform};
use crate::manifest::Manifest;
use crate::plugin::{LoadedPlugin, PluginHost, Tier};
use crate::{Error, Result};

/// A change is over once its files have been quiet this long (editors and
/// `cp` write a file in several steps)...
const QUIET: Duration = Duration::from_millis(20);
/// ...or after this long, for a writer that never pauses.
const SETTLE_AT_MOST: Duration = Duration::from_millis(500);

/// How the controller behaves beyond swapping changed plugins.
#[derive(Clone)]
pub struct Options {
    /// Run each new version in shadow on this many batches before
    /// promoting it (0: swap at the next batch).
    pub canary: u32,
    /// `weir dev`: rebuild local plugin crates on save, and replay the
    /// last few input batches through every rebuilt version.
    pub dev: bool,
    /// The cargo target directory for `weir dev` rebuilds (default: each
    /// crate's own).
    pub target_dir: Option<PathBuf>,
    /// Where reports go.
    pub report: Reporter,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            canary: 0,
            dev: false,
            target_dir: None,
            report: Arc::new(|text: &str| tracing::info!("{text}")),
        }
    }
}

/// Watches the files of a running pipeline and prepares successors and
/// reload plans. Dropping it stops watching.
pub struct Controller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The controller thread's state.
struct State {
    host: PluginHost,
    control: Arc<Control>,
    options: Options,
    manifest: PathBuf,
    manifest_hash: blake3::Hash,
    rejected_manifest: Option<blake3::Hash>,
    graph: Graph,
    schemas: Schemas,
    nodes: Vec<Node>,
    watcher: notify::RecommendedWatcher,
    watched: HashSet<PathBuf>,
    optimizer: Optimizer,
}

impl Controller {
    /// Starts watching `graph`'s manifest and plugin files; successors go
    /// to the slots in `prepared`, manifest changes to `control`.
    pub fn start(
        graph: &Graph,
        prepared: &Prepared,
        host: PluginHost,
        control: Arc<Control>,
        options: Options,
    ) -> Result<Controller> {
        if options.dev {
            control.keep_recent_batches();
        }
        let (tx, rx) = mpsc::channel();
        let optimizer = Optimizer::start(host.clone(), tx.clone())?;
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Reads (a compiler opening sources, weir loading a plugin)
            // are not changes; reacting to them would rebuild forever.
            if let Ok(event) = event {
                if event.kind.is_access() {
                    return;
                }
                let _ = tx.send(Event::Files(event.paths));
            }
        })
        .map_err(|e| Error::build_from("can't watch files", e))?;
        let manifest = canonical(graph.manifest.path.clone());
        let text = std::fs::read(&manifest).map_err(|e| Error::io(&manifest, e))?;
        let mut state = State {
            host,
            control,
            options,
            manifest,
            manifest_hash: blake3::hash(&text),
            rejected_manifest: None,
            graph: graph.clone(),
            schemas: prepared.schemas.clone(),
            nodes: Vec::new(),
            watcher,
            watched: HashSet::new(),
            optimizer,
        };
        state.sync_nodes(&prepared.transforms.iter().collect())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("weir-reload".into())
            .spawn(move || state.run(rx, flag))
            .map_err(|e| Error::build_from("can't start the reload controller", e))?;
        Ok(Controller {
            stop,
            thread: Some(thread),
        })
    }
}

impl State {
    /// Replaces the node list with the transforms of the current graph:
    /// those in `fresh` are new, the others keep what the controller knew.
    fn sync_nodes(&mut self, fresh: &BTreeMap<&String, &PreparedTransform>) -> Result<()> {
        let mut known: HashMap<String, Node> =
            self.nodes.drain(..).map(|n| (n.name.clone(), n)).collect();
        for name in self.graph.manifest.transforms.keys() {
            let node = match (fresh.get(name), known.remove(name)) {
                (Some(t), _) => Node::new(&self.graph, name, t, &self.control),
                (None, Some(node)) => node,
                (None, None) => continue,
            };
            self.nodes.push(node);
        }
        // Watch directories, not files: an editor or `cp` may replace a
        // file by renaming a new one over it.
        let mut dirs: Vec<(PathBuf, RecursiveMode)> = self
            .nodes
            .iter()
            .filter_map(|n| {
                n.path
                    .parent()
                    .map(|d| (d.to_path_buf(), RecursiveMode::NonRecursive))
            })
            .collect();
        if let Some(dir) = self.manifest.parent() {
            dirs.push((dir.to_path_buf(), RecursiveMode::NonRecursive));
        }
        if self.options.dev {
            for dir in self.nodes.iter().filter_map(|n| n.crate_dir.clone()) {
                dirs.push((dir, RecursiveMode::Recursive));
            }
        }
        for (dir, mode) in dirs {
            if self.watched.insert(dir.clone()) {
                self.watcher
                    .watch(&dir, mode)
                    .map_err(|e| Error::build_from(format!("can't watch {}", dir.display()), e))?;
            }
        }
        tracing::info!(directories = self.watched.len(), "watching for changes");
        Ok(())
    }

    fn run(mut self, rx: mpsc::Receiver<Event>, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            let mut changed: Vec<PathBuf> = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Files(paths)) => paths,
                Ok(Event::Optimized { node, plugin }) => {
                    self.optimized(&node, plugin);
                    continue;
                }
                Err(_) => continue,
            };
            let settling = std::time::Instant::now();
            while settling.elapsed() < SETTLE_AT_MOST {
                match rx.recv_timeout(QUIET) {
                    Ok(Event::Files(more)) => changed.extend(more),
                    Ok(Event::Optimized { node, plugin }) => self.optimized(&node, plugin),
                    Err(_) => break,
                }
            }
            let changed: HashSet<PathBuf> = changed.into_iter().map(canonical).collect();
            if changed.contains(&self.manifest) {
                self.manifest_changed();
            }
            if self.options.dev {
                self.rebuild_crates(&changed);
            }
            let plugins: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| changed.contains(&self.nodes[i].path))
                .collect();
            for i in plugins {
                self.plugin_changed(i);
            }
        }
    }

    /// Rebuilds every local crate with a changed source file, then tries
    /// the new component on the nodes that use it.
    fn rebuild_crates(&mut self, changed: &HashSet<PathBuf>) {
        let mut crates: Vec<PathBuf> = self
            .nodes
            .iter()
            .filter_map(|n| n.crate_dir.clone())
            .filter(|dir| changed.iter().any(|p| dev::is_source_of(dir, p)))
            .collect();
        crates.sort();
        crates.dedup();
        for dir in crates {
            let users: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].crate_dir.as_ref() == Some(&dir))
                .collect();
            let outputs: Vec<PathBuf> = users.iter().map(|&i| self.nodes[i].path.clone()).collect();
            match dev::rebuild(&dir, &outputs, self.options.target_dir.as_deref()) {
                Ok(took) => {
                    tracing::info!(crate_dir = %dir.display(), secs = took.as_secs_f64(), "rebuilt");
                    for i in users {
                        self.plugin_changed(i);
                    }
                }
                Err(e) => (self.options.report)(&format!(
                    "build of {} failed; the running version stays:\n{e}",
                    dir.display()
                )),
            }
        }
    }

    fn plugin_changed(&mut self, i: usize) {
        let base_dir = self.graph.manifest.base_dir.clone();
        let node = &mut self.nodes[i];
        // One write raises several events: act once per new content.
        let Ok(bytes) = std::fs::read(&node.path) else {
            return;
        };
        let hash = blake3::hash(&bytes);
        if hash == node.current.hash || Some(hash) == node.rejected {
            return;
        }
        match node.successor(&self.host, &base_dir, &self.options) {
            Ok(Some(ready)) => {
                if self.options.dev && !node.slots().recent.batches().is_empty() {
                    match node.replay(&self.host, &base_dir, &ready.plugin) {
                        Ok(report) => (self.options.report)(&report),
                        Err(e) => {
                            // A version that fails on the last batches
                            // would fail in the pipeline: it doesn't go in.
                            node.rejected = Some(hash);
                            node.control.rejected_version(&node.name);
                            (self.options.report)(&format!(
                                "rejected {} of {}: replaying the last {} batches failed on it: \
                                 {e}; the running version {} stays",
                                ready.plugin.version(),
                                node.name,
                                node.slots().recent.batches().len(),
                                node.current.version()
                            ));
                            return;
                        }
                    }
                }
                node.current = ready.plugin.clone();
                tracing::info!(node = %node.name, version = %ready.plugin.version(),
                    tier = ?ready.plugin.tier, "new version ready; it takes over at the next batch");
                if ready.plugin.tier == Tier::Baseline {
                    self.optimizer.request(&node.name, &ready.plugin);
                }
                node.slots().successor.offer(ready);
            }
            Ok(None) => {}
            Err(e) => {
                node.rejected = Some(hash);
                node.control.rejected_version(&node.name);
                tracing::error!(node = %node.name, file = %node.path.display(), error = %e,
                    "rejected the new version; the running one stays");
            }
        }
    }

    /// The optimized build of a version running on the baseline tier is
    /// ready: it takes over at a later batch boundary, state handed over
    /// as for any new version (and through the canary, if one is set).
    fn optimized(&mut self, name: &str, plugin: Arc<LoadedPlugin>) {
        let base_dir = self.graph.manifest.base_dir.clone();
        let Some(node) = self.nodes.iter_mut().find(|n| n.name == name) else {
            return;
        };
        // A newer version may have come meanwhile.
        if node.current.hash != plugin.hash || node.current.tier != Tier::Baseline {
            return;
        }
        match node.ready(&self.host, &base_dir, &self.options, plugin.clone()) {
            Ok(ready) => {
                node.current = plugin;
                tracing::info!(node = %node.name, version = %node.current.version(),
                    "optimized build ready; it takes over at the next batch");
                node.slots().successor.offer(ready);
            }
            Err(e) => tracing::warn!(node = %node.name, error = %e,
                "the optimized build doesn't start; the baseline build keeps running"),
        }
    }

    /// Diffs the new manifest against the running graph and hands the plan
    /// to the executor; an invalid or unappliable manifest is rejected
    /// (once per content) and the pipeline runs on unchanged.
    fn manifest_changed(&mut self) {
        let Ok(text) = std::fs::read(&self.manifest) else {
            return;
        };
        let hash = blake3::hash(&text);
        if hash == self.manifest_hash || Some(hash) == self.rejected_manifest {
            return;
        }
        let planned = Manifest::load(&self.graph.manifest.path)
            .and_then(Graph::new)
            .and_then(|graph| plan(&self.graph, &self.schemas, graph, &self.host));
        let plan = match planned {
            Ok(Some(plan)) => plan,
            Ok(None) => {
                self.manifest_hash = hash;
                return;
            }
            Err(e) => {
                self.rejected_manifest = Some(hash);
                tracing::error!(error = %e, "rejected the manifest change; the pipeline runs on unchanged");
                return;
            }
        };
        let graph = plan.graph.clone();
        let schemas = plan.built.schemas.clone();
        let changes = plan.changes.join("; ");
        let mut fresh = Vec::new();
        for (name, t) in &plan.built.transforms {
            fresh.push((name.clone(), Node::new(&graph, name, t, &self.control)));
        }
        tracing::info!(
            changes,
            "manifest changed; applying at the next batch boundary"
        );
        if !self.control.reconfigure(plan) {
            tracing::warn!("the pipeline ended before the manifest change could be applied");
            return;
        }
        self.manifest_hash = hash;
        self.graph = graph;
        self.schemas = schemas;
        let fresh: BTreeMap<String, Node> = fresh.into_iter().collect();
        self.nodes.retain(|n| !fresh.contains_key(&n.name));
        self.nodes.extend(fresh.into_values());
        if let Err(e) = self.sync_nodes(&BTreeMap::new()) {
            tracing::error!(error = %e, "can't watch the new plugin files");
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
