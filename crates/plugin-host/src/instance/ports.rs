//! A node's ports: the names a plugin declares (`ports` in the WIT) and
//! each output port's schema given its input ports' schemas (`describe`).

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::{Bindings, PluginInstance};
use crate::bindings::v0_2;
use crate::convert::{schema_from_wit, schema_to_wit};
use crate::rows::Rows;
use crate::{BatchRef, FailureKind, Result};

/// A node's declared ports, in order. `process` is told the index of the
/// input port a batch came in on; every output names the index of the
/// output port it leaves by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// Input port names (a one-input plugin: `["in"]`).
    pub inputs: Vec<String>,
    /// Output port names (a one-output plugin: `["out"]`).
    pub outputs: Vec<String>,
}

impl Default for Ports {
    /// One input, `in`, and one output, `out`: every 0.1 plugin, and every
    /// SDK plugin that declares nothing else.
    fn default() -> Self {
        Ports {
            inputs: vec!["in".into()],
            outputs: vec!["out".into()],
        }
    }
}

impl Ports {
    /// The index of input port `name`.
    pub fn input(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|p| p == name)
    }

    /// The index of output port `name`.
    pub fn output(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|p| p == name)
    }

    /// A name's problem as a port name, if any: ports are named in the
    /// manifest (`"node.port"`, `inputs = { port = … }`), so they are
    /// plain identifiers, and `dead_letter` is the host's.
    fn check(&self) -> std::result::Result<(), String> {
        for (side, names) in [("input", &self.inputs), ("output", &self.outputs)] {
            if names.is_empty() {
                return Err(format!(
                    "declares no {side} port; a transform needs at least one"
                ));
            }
            for (i, name) in names.iter().enumerate() {
                let plain = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !plain {
                    return Err(format!(
                        "declares {side} port {name:?}: a port name is letters, digits, `_` or `-`"
                    ));
                }
                if name == "dead_letter" {
                    return Err(format!(
                        "declares {side} port \"dead_letter\", which is the host's (on_error = \"dead_letter\")"
                    ));
                }
                if names[..i].contains(name) {
                    return Err(format!("declares {side} port {name:?} twice"));
                }
            }
        }
        Ok(())
    }
}

/// One output batch and the index of the output port it leaves by.
#[derive(Debug, Clone)]
pub struct Emitted {
    /// An index into [`Ports::outputs`].
    pub port: usize,
    /// The rows (a plugin's selection may still be pending on them).
    pub batch: Rows,
}

impl Emitted {
    /// A batch on the first (main) output port.
    pub fn main(batch: RecordBatch) -> Self {
        Emitted {
            port: 0,
            batch: Rows::from(batch),
        }
    }
}

impl PluginInstance {
    /// The node's ports under `config`, asked of the plugin (a 0.1 plugin
    /// has one of each). `init` asks too; the graph asks first, to wire the
    /// node before `describe`.
    pub fn ports(&mut self, config: &str) -> Result<&Ports> {
        let Bindings::V0_2(bindings) = &self.bindings else {
            return Ok(&self.ports);
        };
        self.store.set_epoch_deadline(self.budget);
        let declared = match bindings
            .weir_plugin_transform()
            .call_ports(&mut self.store, config)
        {
            Ok(Ok(ports)) => Ports {
                inputs: ports.inputs,
                outputs: ports.outputs,
            },
            Ok(Err(message)) => {
                return Err(self.fail(
                    BatchRef::Init,
                    FailureKind::Setup,
                    format!("ports rejected the config: {message}"),
                ))
            }
            Err(e) => return Err(self.trap(BatchRef::Init, e)),
        };
        declared
            .check()
            .map_err(|m| self.fail(BatchRef::Init, FailureKind::Setup, m))?;
        self.ports = declared;
        Ok(&self.ports)
    }

    /// Tells the instance which output ports someone reads (by index):
    /// what a plugin sends to the others is dropped before it is
    /// assembled, so an unread side output (a filter's `rejected`) costs
    /// nothing on the host.
    pub fn set_wired(&mut self, wired: Vec<bool>) {
        self.wired = wired;
    }

    /// Which output ports someone reads (empty: all); see
    /// [`set_wired`](Self::set_wired).
    pub fn wired(&self) -> &[bool] {
        &self.wired
    }

    pub(super) fn is_wired(&self, port: usize) -> bool {
        self.wired.get(port).copied().unwrap_or(true)
    }

    /// The ports the plugin declared when last asked.
    pub fn declared_ports(&self) -> &Ports {
        &self.ports
    }

    /// `describe` for a node with one input port: its first output port's
    /// schema. See [`describe_ports`](Self::describe_ports).
    pub fn describe(&mut self, input: &Schema, config: &str) -> Result<Option<SchemaRef>> {
        let input = Some(Arc::new(input.clone()));
        let out = self.describe_ports(std::slice::from_ref(&input), config)?;
        Ok(out.into_iter().next().flatten())
    }

    /// Calls `describe`: each output port's schema (by index) given each
    /// input port's (`None`: unknown before data), where the plugin knows
    /// it without data. Every output batch is checked against it.
    pub fn describe_ports(
        &mut self,
        inputs: &[Option<SchemaRef>],
        config: &str,
    ) -> Result<Vec<Option<SchemaRef>>> {
        if inputs.len() != self.ports.inputs.len() {
            return Err(self.fail(
                BatchRef::Describe,
                FailureKind::Setup,
                format!(
                    "{} input schemas for {} input ports",
                    inputs.len(),
                    self.ports.inputs.len()
                ),
            ));
        }
        let out = match &self.bindings {
            Bindings::V0_1(_) => match &inputs[0] {
                Some(input) => vec![self.describe_v0_1(input, config)?],
                None => vec![None],
            },
            Bindings::V0_2(_) => self.describe_v0_2(inputs, config)?,
        };
        self.declared = out.clone();
        Ok(out)
    }

    fn describe_v0_1(&mut self, input: &Schema, config: &str) -> Result<Option<SchemaRef>> {
        let Bindings::V0_1(bindings) = &self.bindings else {
            unreachable!("called for 0.1 bindings only")
        };
        let fields = schema_to_wit(input).map_err(|e| {
            self.fail(
                BatchRef::Describe,
                FailureKind::Setup,
                format!(
                    "{e}; the plugin is built against weir:plugin@0.1.0, which has no such \
                     type: rebuild it against weir:plugin@0.2.0 (the current SDK), which carries \
                     every Arrow type"
                ),
            )
        })?;
        self.store.set_epoch_deadline(self.budget);
        let transform = bindings.weir_plugin_transform();
        match transform.call_describe(&mut self.store, &fields, config) {
            Ok(Ok(schema)) => Ok(schema.map(|s| Arc::new(schema_from_wit(&s)))),
            Ok(Err(message)) => Err(self.fail(BatchRef::Describe, FailureKind::Setup, message)),
            Err(e) => Err(self.trap(BatchRef::Describe, e)),
        }
    }

    fn describe_v0_2(
        &mut self,
        inputs: &[Option<SchemaRef>],
        config: &str,
    ) -> Result<Vec<Option<SchemaRef>>> {
        let Bindings::V0_2(bindings) = &self.bindings else {
            unreachable!("called for 0.2 bindings only")
        };
        let wit_inputs: Vec<v0_2::types::PortSchema> = self
            .ports
            .inputs
            .iter()
            .zip(inputs)
            .map(|(name, schema)| v0_2::types::PortSchema {
                name: name.clone(),
                schema: schema
                    .as_ref()
                    .map(|s| v0_2::map::schema_to_wit(weir_wit_arrow::schema_to_wit(s))),
            })
            .collect();
        self.store.set_epoch_deadline(self.budget);
        let transform = bindings.weir_plugin_transform();
        let described = match transform.call_describe(&mut self.store, &wit_inputs, config) {
            Ok(Ok(ports)) => ports,
            Ok(Err(message)) => {
                return Err(self.fail(BatchRef::Describe, FailureKind::Setup, message))
            }
            Err(e) => return Err(self.trap(BatchRef::Describe, e)),
        };
        let mut out = vec![None; self.ports.outputs.len()];
        for (k, port) in described.into_iter().enumerate() {
            // By name; an unnamed answer is positional (older SDKs named
            // their one output "out" whatever the plugin declared).
            let index = self
                .ports
                .output(&port.name)
                .or((port.name.is_empty() || self.ports.outputs.len() == 1).then_some(k));
            let Some(index) = index.filter(|i| *i < out.len()) else {
                return Err(self.fail(
                    BatchRef::Describe,
                    FailureKind::Setup,
                    format!(
                        "describe returned a schema for output port {:?}, which ports didn't \
                         declare (declared: {})",
                        port.name,
                        self.ports.outputs.join(", ")
                    ),
                ));
            };
            let Some(schema) = port.schema else {
                continue;
            };
            let schema = weir_wit_arrow::schema_from_wit(&v0_2::map::schema_from_wit(schema))
                .map_err(|e| {
                    self.fail(
                        BatchRef::Describe,
                        FailureKind::Setup,
                        format!(
                            "describe returned a malformed schema for port {:?}: {e}",
                            port.name
                        ),
                    )
                })?;
            out[index] = Some(Arc::new(schema));
        }
        Ok(out)
    }
}
