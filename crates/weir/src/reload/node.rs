//! What the reload controller knows of one transform node, and how it
//! builds the node's next version.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use super::watch::Options;
use crate::exec::{Control, Diff, Ready, Slots};
use crate::graph::{same_shape, Graph, PreparedTransform};
use crate::manifest::TransformConfig;
use crate::plugin::{LoadedPlugin, PluginHost, Ports};
use crate::{Error, Result};

/// What the controller knows of one transform node.
pub(super) struct Node {
    pub(super) name: String,
    pub(super) path: PathBuf,
    /// The local crate the plugin is built from (`build` in the manifest).
    pub(super) crate_dir: Option<PathBuf>,
    pub(super) config: TransformConfig,
    pub(super) config_json: String,
    /// The running version's ports, and each one's schema.
    pub(super) ports: Ports,
    pub(super) inputs: Vec<Option<SchemaRef>>,
    pub(super) outputs: Vec<Option<SchemaRef>>,
    /// The node's hand-over slots in the running pipeline.
    pub(super) control: Arc<Control>,
    /// The version the node runs (or was last offered).
    pub(super) current: Arc<LoadedPlugin>,
    /// The last version rejected, so one bad file is reported once.
    pub(super) rejected: Option<blake3::Hash>,
}

pub(super) fn canonical(path: PathBuf) -> PathBuf {
    path.canonicalize().unwrap_or(path)
}

impl Node {
    pub(super) fn slots(&self) -> Slots {
        self.control.slots(&self.name)
    }

    pub(super) fn new(
        graph: &Graph,
        name: &str,
        t: &PreparedTransform,
        control: &Arc<Control>,
    ) -> Node {
        let config = graph.manifest.transforms[name].clone();
        Node {
            name: name.to_string(),
            path: canonical(graph.manifest.resolve(&config.plugin)),
            crate_dir: config
                .build
                .as_ref()
                .map(|dir| canonical(graph.manifest.resolve(dir))),
            config,
            config_json: t.config_json.clone(),
            ports: t.ports.clone(),
            inputs: t.inputs.clone(),
            outputs: t.outputs.clone(),
            control: control.clone(),
            current: t.plugin.clone(),
            rejected: None,
        }
    }

    /// Builds and checks the version now in the file (a baseline build
    /// unless its optimized one is at hand); `Ok(None)` when the content
    /// is unchanged.
    pub(super) fn successor(
        &self,
        host: &PluginHost,
        base_dir: &Path,
        options: &Options,
    ) -> Result<Option<Ready>> {
        let plugin = host.load_quick(&self.path)?;
        if plugin.hash == self.current.hash {
            return Ok(None);
        }
        self.ready(host, base_dir, options, plugin).map(Some)
    }

    /// Instances of `plugin` for this node, checked against the running
    /// version's ports and schemas and `init`ed.
    pub(super) fn ready(
        &self,
        host: &PluginHost,
        base_dir: &Path,
        options: &Options,
        plugin: Arc<LoadedPlugin>,
    ) -> Result<Ready> {
        let mut instance = host.instantiate(&plugin, &self.name, &self.config, base_dir)?;
        let ports = instance.ports(&self.config_json)?;
        if *ports != self.ports {
            return Err(Error::Schema {
                node: self.name.clone(),
                message: format!(
                    "the new version declares other ports ({:?} in, {:?} out) than the running \
                     one ({:?} in, {:?} out); rewire the manifest to match and it is rebuilt",
                    ports.inputs, ports.outputs, self.ports.inputs, self.ports.outputs
                ),
            });
        }
        if self.inputs.iter().any(Option::is_some) {
            let outputs = instance.describe_ports(&self.inputs, &self.config_json)?;
            for (port, (new, old)) in outputs.iter().zip(&self.outputs).enumerate() {
                let (Some(new), Some(old)) = (new, old) else {
                    continue;
                };
                if !same_shape(new, old) {
                    let on = match port {
                        0 => String::new(),
                        p => format!(" of port {:?}", self.ports.outputs[p]),
                    };
                    return Err(Error::Schema {
                        node: self.name.clone(),
                        message: format!(
                            "the new version changes the output schema{on} from [{old}] to \
                             [{new}]; restart the pipeline to apply such a change"
                        ),
                    });
                }
            }
        }
        instance.init(&self.config_json)?;
        let siblings = crate::graph::siblings(
            host,
            &plugin,
            &self.name,
            &self.config,
            base_dir,
            &self.config_json,
        )?;
        Ok(Ready {
            plugin,
            instance,
            siblings,
            canary: options.canary,
            report: options.report.clone(),
        })
    }

    /// Runs the kept input batches through fresh instances of the old and
    /// the new version and reports the difference (`weir dev`).
    pub(super) fn replay(
        &self,
        host: &PluginHost,
        base_dir: &Path,
        new: &Arc<LoadedPlugin>,
    ) -> Result<String> {
        let batches = self.slots().recent.batches();
        let mut diff = Diff::default();
        // The new version failing is what the replay is for: an error
        // here rejects it. The running one failing (it may be the bad
        // version being fixed) only means there is nothing to compare.
        let mut next = host.instantiate(new, &self.name, &self.config, base_dir)?;
        next.init(&self.config_json)?;
        let mut old = host
            .instantiate(&self.current, &self.name, &self.config, base_dir)
            .and_then(|mut old| old.init(&self.config_json).map(|()| old))
            .ok();
        let mut old_failed = None;
        for (i, batch) in batches.iter().enumerate() {
            let after = next.process(batch, i as u64)?;
            let before = match old.as_mut().map(|o| o.process(batch, i as u64)) {
                Some(Ok(before)) => before,
                Some(Err(e)) => {
                    old_failed.get_or_insert(e.to_string());
                    old = None;
                    Vec::new()
                }
                None => Vec::new(),
            };
            diff.add(batch.num_rows(), &before, &after);
        }
        let mut report = format!(
            "replayed the last {} batches of {} through {} (was {}):\n{diff}",
            diff.batches(),
            self.name,
            new.version(),
            self.current.version()
        );
        if let Some(e) = old_failed {
            report.push_str(&format!(
                "\n(the version it replaces, {}, failed on them: {e})",
                self.current.version()
            ));
        }
        Ok(report)
    }
}
