//! The validated DAG, and everything done to it before data moves:
//! structure checks ([`Graph::new`]), then opening sources, loading and
//! describing plugins, and propagating schemas node by node
//! ([`Graph::prepare`]) — which is all `weir check` does.

mod dead_letter;
mod schema;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::manifest::{Manifest, OnError, TransformConfig, DEAD_LETTER};
use crate::plugin::{LoadedPlugin, PluginHost, PluginInstance, Ports};
use crate::sink::{Sink, SinkContext};
use crate::source::{Source, SourceContext};
use crate::{Error, Result};
pub use dead_letter::{dead_letter_schema, ERROR_COLUMN, NODE_COLUMN, TIME_COLUMN};
pub use schema::{insert_outputs, merge, merge_inputs, same_shape, same_shape_opt};

/// Each output's schema by reference (`node`, `node.port`), where known.
pub type Schemas = BTreeMap<String, Option<SchemaRef>>;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Produces batches.
    Source,
    /// A WASM plugin.
    Transform,
    /// Consumes batches.
    Sink,
}

impl NodeKind {
    /// The manifest section of this kind.
    pub fn section(self) -> &'static str {
        match self {
            NodeKind::Source => "sources",
            NodeKind::Transform => "transforms",
            NodeKind::Sink => "sinks",
        }
    }

    /// The kind as one word: `source`, `transform` or `sink`.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Source => "source",
            NodeKind::Transform => "transform",
            NodeKind::Sink => "sink",
        }
    }
}

/// A manifest whose structure is valid: unique names, existing inputs,
/// no cycles, plugin files present.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The manifest.
    pub manifest: Manifest,
    /// Every node, sources first, then in dependency order.
    pub order: Vec<(String, NodeKind)>,
    /// For each node, the nodes reading its output, in name order.
    pub consumers: HashMap<String, Vec<String>>,
}

impl Graph {
    /// Validates the structure of `manifest`: unique names, wiring,
    /// plugin files, order (no cycles), dead letters read.
    pub fn new(manifest: Manifest) -> Result<Graph> {
        let kinds = validate::names(&manifest)?;
        let consumers = validate::wiring(&manifest, &kinds)?;
        validate::plugins_present(&manifest)?;
        let order = validate::order(&manifest, &consumers)?;
        validate::dead_letters_read(&manifest, &consumers)?;
        for (name, kind) in &order {
            let read = consumers
                .keys()
                .any(|output| crate::manifest::output_ref(output).0 == name);
            if *kind != NodeKind::Sink && !read {
                tracing::warn!(node = %name, "nothing reads this node's output");
            }
        }
        Ok(Graph {
            manifest,
            order,
            consumers,
        })
    }

    /// The inputs of a transform or sink.
    pub fn inputs(&self, node: &str) -> &[String] {
        if let Some(t) = self.manifest.transforms.get(node) {
            &t.inputs.producers
        } else if let Some(s) = self.manifest.sinks.get(node) {
            &s.inputs
        } else {
            &[]
        }
    }

    /// Opens every source, loads, instantiates and describes every plugin,
    /// propagates schemas, and opens every sink — everything short of
    /// moving data. Any error names the node and, where it can, the line.
    pub fn prepare(&self, host: &PluginHost) -> Result<Prepared> {
        let m = &self.manifest;
        let mut schemas: BTreeMap<String, Option<SchemaRef>> = BTreeMap::new();
        let mut sources = BTreeMap::new();
        let mut transforms = BTreeMap::new();
        let mut sinks = BTreeMap::new();
        for (name, kind) in &self.order {
            match kind {
                NodeKind::Source => {
                    let source = self.open_source(name)?;
                    schemas.insert(name.clone(), Some(source.schema()));
                    schemas.insert(
                        format!("{name}{DEAD_LETTER}"),
                        Some(crate::source::bad::source_dead_letter_schema()),
                    );
                    sources.insert(name.clone(), source);
                }
                NodeKind::Transform => {
                    let prepared = self.prepare_transform(host, name, &schemas)?;
                    prepared.insert_schemas(name, &m.transforms[name], &mut schemas);
                    transforms.insert(name.clone(), prepared);
                }
                NodeKind::Sink => {
                    let input = merge_inputs(self, name, &schemas)?;
                    let sink = self.open_sink(name, input.as_ref())?;
                    schemas.insert(name.clone(), input);
                    sinks.insert(name.clone(), sink);
                }
            }
        }
        Ok(Prepared {
            sources,
            transforms,
            sinks,
            schemas,
        })
    }

    /// Opens source `name` and checks its watermark column against the
    /// schema it reads; shared by [`Graph::prepare`] and the reload planner.
    pub(crate) fn open_source(&self, name: &str) -> Result<Box<dyn Source>> {
        let m = &self.manifest;
        let source = m.sources[name].build(SourceContext {
            name,
            base_dir: &m.base_dir,
            batch_size: m.pipeline.batch_size,
        })?;
        if let Some(w) = m.watermarks.get(name) {
            let schema = source.schema();
            let fits = schema
                .field_with_name(&w.column)
                .map(|f| matches!(f.data_type(), arrow::datatypes::DataType::Timestamp(_, _)));
            if !fits.unwrap_or(false) {
                let columns: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                    .collect();
                return Err(m.located.error(
                    "sources",
                    Some(name),
                    Some("watermark"),
                    format!(
                        "watermark.column {:?} must be a timestamp column of this source \
                         (its columns: {})",
                        w.column,
                        columns.join(", ")
                    ),
                ));
            }
        }
        Ok(source)
    }

    /// Checks that sink `name` can write `input` (when known) and opens it;
    /// shared by [`Graph::prepare`] and the reload planner.
    pub(crate) fn open_sink(&self, name: &str, input: Option<&SchemaRef>) -> Result<Box<dyn Sink>> {
        let m = &self.manifest;
        let config = &m.sinks[name].config;
        if let Some(schema) = input {
            config.accepts(schema).map_err(|message| {
                m.located
                    .error("sinks", Some(name), Some("inputs"), message)
            })?;
        }
        config.build(SinkContext {
            name,
            base_dir: &m.base_dir,
            schema: input,
            checkpointing: m.pipeline.checkpoint.is_some(),
        })
    }

    /// The schema flowing into each input port the manifest wires, by
    /// the port's name (`None`: the list form's one port), in the order
    /// the ports first appear.
    pub fn wired_inputs(
        &self,
        node: &str,
        schemas: &Schemas,
    ) -> Result<Vec<(Option<String>, Option<SchemaRef>)>> {
        let inputs = &self.manifest.transforms[node].inputs;
        if !inputs.named() {
            return Ok(vec![(None, merge_inputs(self, node, schemas)?)]);
        }
        let mut names: Vec<&String> = Vec::new();
        for port in &inputs.ports {
            if !names.contains(&port) {
                names.push(port);
            }
        }
        names
            .into_iter()
            .map(|port| {
                let wired = inputs
                    .producers
                    .iter()
                    .zip(&inputs.ports)
                    .filter(|(_, p)| *p == port)
                    .map(|(from, _)| from);
                Ok((Some(port.clone()), merge(self, node, wired, schemas)?))
            })
            .collect()
    }

    /// Each input slot's port index, and each port's schema, for a node
    /// whose plugin declares `ports`: the manifest's wiring checked
    /// against them.
    fn port_inputs(
        &self,
        name: &str,
        ports: &Ports,
        schemas: &Schemas,
    ) -> Result<(Vec<usize>, Vec<Option<SchemaRef>>)> {
        let config = &self.manifest.transforms[name];
        let at = |message: String| {
            self.manifest
                .located
                .error("transforms", Some(name), Some("inputs"), message)
        };
        if !config.inputs.named() {
            if ports.inputs.len() != 1 {
                let example: Vec<String> = ports
                    .inputs
                    .iter()
                    .map(|p| format!("{p} = \"…\""))
                    .collect();
                return Err(at(format!(
                    "the plugin has input ports {}: wire each by name, \
                     inputs = {{ {} }}",
                    ports.inputs.join(", "),
                    example.join(", ")
                )));
            }
            let slots = vec![0; config.inputs.producers.len()];
            return Ok((slots, vec![merge_inputs(self, name, schemas)?]));
        }
        let wired = self.wired_inputs(name, schemas)?;
        let mut by_port = vec![None; ports.inputs.len()];
        for (port, schema) in wired {
            let port = port.unwrap_or_default();
            let Some(i) = ports.input(&port) else {
                return Err(at(format!(
                    "the plugin has no input port {port:?} (its input ports: {})",
                    ports.inputs.join(", ")
                )));
            };
            by_port[i] = Some(schema);
        }
        if let Some(i) = by_port.iter().position(Option::is_none) {
            return Err(at(format!(
                "input port {:?} of the plugin is not wired: add {} = \"…\" to inputs",
                ports.inputs[i], ports.inputs[i]
            )));
        }
        if ports.inputs.len() > 1 && config.on_error == OnError::DeadLetter {
            // A dead-letter output has one schema: the failing rows' with
            // the error. Rows from two input ports have two.
            return Err(self.manifest.located.error(
                "transforms",
                Some(name),
                Some("on_error"),
                "on_error = \"dead_letter\" needs a node with one input port (its failing rows \
                 have that port's columns); this one has several: use \"skip\" or \"fail\"",
            ));
        }
        if ports.inputs.len() > 1 && config.parallelism > 1 {
            return Err(self.manifest.located.error(
                "transforms",
                Some(name),
                Some("parallelism"),
                "parallelism > 1 runs batches on several instances at once, which a node \
                 with several input ports (a join: state across its inputs) can't do; \
                 remove it",
            ));
        }
        let slots = config
            .inputs
            .ports
            .iter()
            .map(|p| ports.input(p).unwrap_or(0))
            .collect();
        Ok((slots, by_port.into_iter().map(Option::flatten).collect()))
    }

    /// Loads, instantiates, wires, describes and initializes transform
    /// `name`, its inputs' schemas taken from `schemas`.
    pub(crate) fn prepare_transform(
        &self,
        host: &PluginHost,
        name: &str,
        schemas: &Schemas,
    ) -> Result<PreparedTransform> {
        let config = &self.manifest.transforms[name];
        let loc = &self.manifest.located;
        let path = self.manifest.resolve(&config.plugin);
        let plugin = host
            .load(&path)
            .map_err(|e| loc.error("transforms", Some(name), Some("plugin"), e.to_string()))?;
        let config_json = serde_json::to_string(&config.config)
            .map_err(|e| loc.error("transforms", Some(name), Some("config"), e.to_string()))?;
        let mut instance = host.instantiate(&plugin, name, config, &self.manifest.base_dir)?;
        if let Some(dir) = self.manifest.state_dir(name) {
            instance.set_state_dir(&dir);
        }
        // A config the plugin can't read is a manifest error at the key.
        let config_error = |e: &Error| {
            let message = plain(e);
            message
                .contains(" at line ")
                .then(|| loc.config_error("transforms", name, &config_json, &message))
        };
        let ports = instance
            .ports(&config_json)
            .map_err(|e| {
                config_error(&e).unwrap_or_else(|| {
                    loc.error("transforms", Some(name), Some("plugin"), plain(&e))
                })
            })?
            .clone();
        let (port_of_slot, inputs) = self.port_inputs(name, &ports, schemas)?;
        let outputs = match inputs.iter().any(Option::is_some) {
            true => instance
                .describe_ports(&inputs, &config_json)
                .map_err(|e| {
                    config_error(&e).unwrap_or_else(|| Error::Schema {
                        node: name.to_string(),
                        message: format!(
                            "{} (at {})",
                            plain(&e),
                            location(
                                loc.path(),
                                loc.line_of("transforms", Some(name), Some("config"))
                            )
                        ),
                    })
                })?,
            false => vec![None; ports.outputs.len()],
        };
        instance.init(&config_json).map_err(|e| {
            config_error(&e)
                .unwrap_or_else(|| loc.error("transforms", Some(name), Some("config"), plain(&e)))
        })?;
        let siblings = siblings(
            host,
            &plugin,
            name,
            config,
            &self.manifest.base_dir,
            &config_json,
        )?;
        Ok(PreparedTransform {
            plugin,
            instance,
            siblings,
            config_json,
            inputs,
            outputs,
            ports,
            port_of_slot,
            next_batch: 0,
        })
    }
}

/// The `parallelism - 1` further instances of a node, `init` done.
pub(crate) fn siblings(
    host: &PluginHost,
    plugin: &Arc<LoadedPlugin>,
    name: &str,
    config: &TransformConfig,
    base_dir: &std::path::Path,
    config_json: &str,
) -> Result<Vec<PluginInstance>> {
    (1..config.parallelism)
        .map(|_| {
            let mut sibling = host.instantiate(plugin, name, config, base_dir)?;
            sibling.init(config_json)?;
            Ok(sibling)
        })
        .collect()
}

/// A plugin's failure before the run, for an error located in the
/// manifest: the plugin's own words when it rejected its config, else the
/// phase and what happened ("init exceeded its time budget").
fn plain(e: &Error) -> String {
    match e {
        Error::Plugin {
            kind: crate::FailureKind::Setup,
            message,
            ..
        } => message.clone(),
        Error::Plugin { batch, message, .. } => format!("{} {message}", batch.label()),
        other => other.to_string(),
    }
}

fn location(path: &std::path::Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

/// A transform ready to run: its plugin, an initialized instance, and the
/// output schema it declared (if any).
pub struct PreparedTransform {
    /// The compiled plugin.
    pub plugin: Arc<LoadedPlugin>,
    /// The node's instance, `init` done.
    pub instance: PluginInstance,
    /// Further instances under `parallelism > 1`, `init` done.
    pub siblings: Vec<PluginInstance>,
    /// The node's config as handed to `init`.
    pub config_json: String,
    /// Each input port's schema, by port index.
    pub inputs: Vec<Option<SchemaRef>>,
    /// Each output port's declared schema, by port index.
    pub outputs: Vec<Option<SchemaRef>>,
    /// The ports the plugin declared.
    pub ports: Ports,
    /// The input port each input slot (`inputs` in manifest order) feeds.
    pub port_of_slot: Vec<usize>,
    /// The index of the next batch (carried across reloads and restarts).
    pub next_batch: u64,
}

impl PreparedTransform {
    /// The first input port's schema, where known before data.
    pub fn input(&self) -> Option<&SchemaRef> {
        self.inputs.first().and_then(Option::as_ref)
    }

    /// Records the node's output schemas under their references, and its
    /// dead-letter output's (the first input port's rows, with the error).
    pub fn insert_schemas(&self, name: &str, config: &TransformConfig, schemas: &mut Schemas) {
        insert_outputs(schemas, name, &self.ports.outputs, &self.outputs);
        if config.on_error == OnError::DeadLetter {
            schemas.insert(
                format!("{name}{DEAD_LETTER}"),
                self.input().map(dead_letter_schema),
            );
        }
    }
}

/// Everything opened and checked, ready to run.
pub struct Prepared {
    /// Open sources, by name.
    pub sources: BTreeMap<String, Box<dyn Source>>,
    /// Ready transforms, by name.
    pub transforms: BTreeMap<String, PreparedTransform>,
    /// Open sinks, by name.
    pub sinks: BTreeMap<String, Box<dyn Sink>>,
    /// Each output's schema by reference (a sink's: its input), where
    /// known.
    pub schemas: Schemas,
}
