//! What a `process` or `finish` call returned, as checked record batches
//! by output port.

use arrow::datatypes::SchemaRef;

use super::{Emitted, Outputs, PluginInstance};
use crate::output::{assemble, assemble_v0_2, conforms, sound, with_schema};
use crate::rows::Rows;
use crate::{BatchRef, FailureKind, Result};

/// An output port's schema as its first batch fixed it, for a plugin
/// whose `describe` didn't say: the input (port and schema) that batch
/// answered, and the batch's schema. Every later output on the port must
/// match (a sink downstream can't take a type change), unless a new input
/// schema on the same input port (a manifest reload upstream) fixes it
/// anew.
#[derive(Clone)]
pub(super) struct Observed {
    input: Option<(usize, SchemaRef)>,
    output: SchemaRef,
}

impl Observed {
    /// Whether this still holds for a batch from `input` (`None`:
    /// `finish`, which answers to what the last input fixed).
    fn holds_for(&self, input: Option<(usize, &SchemaRef)>) -> bool {
        match (input, &self.input) {
            (None, _) => true,
            (Some((port, schema)), Some((seen_port, seen))) => {
                port != *seen_port || seen.fields() == schema.fields()
            }
            (Some(_), None) => false,
        }
    }
}

impl PluginInstance {
    /// Validates and assembles `outputs` (derived ones from `input`, the
    /// batch and the input port it came in on; `None` for `finish`).
    pub(super) fn collect(
        &mut self,
        input: Option<(usize, &Rows)>,
        outputs: Outputs,
        label: BatchRef,
    ) -> Result<Vec<Emitted>> {
        let staged = self.store.data_mut().staged.take();
        let malformed = |e: String| {
            self.fail(
                label,
                FailureKind::Malformed,
                format!("returned a malformed batch: {e}"),
            )
        };
        let rows = input.map(|(_, batch)| batch);
        let input_schema = input.map(|(port, batch)| (port, batch.schema()));
        let ports = self.ports.outputs.len();
        let mut observed: Vec<Option<Observed>> = (0..ports)
            .map(|p| {
                self.observed
                    .get(p)
                    .cloned()
                    .flatten()
                    .filter(|o| o.holds_for(input_schema.as_ref().map(|(port, s)| (*port, s))))
            })
            .collect();
        let assembled: Vec<(usize, Vec<Rows>)> = match outputs {
            Outputs::V0_1(outputs) => outputs
                .into_iter()
                .map(|o| assemble(rows, o).map(|b| (0, b)))
                .collect::<std::result::Result<_, _>>(),
            Outputs::V0_2(outputs) => outputs
                .into_iter()
                .filter(|o| self.is_wired(o.port as usize))
                .map(|o| match o.port as usize {
                    port if port < ports => assemble_v0_2(rows, o.data, &staged).map(|b| (port, b)),
                    port => Err(format!(
                        "an output for port {port}; the node declares {ports} output port(s): {}",
                        self.ports.outputs.join(", ")
                    )),
                })
                .collect(),
        }
        .map_err(malformed)?;
        let mut emitted = Vec::new();
        for (port, batches) in assembled {
            let declared = self.declared.get(port).cloned().flatten();
            for batch in batches {
                sound(&batch).map_err(malformed)?;
                let fixed_by_first = observed[port].as_ref().map(|o| &o.output);
                let batch = match (&declared, fixed_by_first) {
                    (Some(fixed), _) | (None, Some(fixed)) => conforms(&batch, fixed)
                        .and_then(|()| with_schema(batch, fixed))
                        .map_err(|e| match &declared {
                            Some(_) => e,
                            None => format!(
                                "{e} (the plugin's describe said its schema is unknown until \
                                 its first batch, and then it changed)"
                            ),
                        })
                        .map_err(malformed)?,
                    (None, None) => {
                        observed[port] = Some(Observed {
                            input: input_schema.clone(),
                            output: batch.schema(),
                        });
                        batch
                    }
                };
                emitted.push(Emitted { port, batch });
            }
        }
        self.observed = observed;
        Ok(emitted)
    }
}
