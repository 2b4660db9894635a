//! One long-lived, sandboxed instance of a transform node.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use wasmtime::Store;

use super::convert::{schema_from_wit, schema_to_wit};
use super::engine::ticks;
use super::host::LoadedPlugin;
use super::output::{assemble, conforms, with_schema};
use super::state::{BatchRep, HostState};
use crate::bindings::Plugin;
use crate::manifest::Limits;
use crate::{Error, Result};

/// A plugin instance bound to one node. Calls run synchronously on the
/// caller's thread, each with the node's wall-clock budget.
pub struct PluginInstance {
    node: Arc<str>,
    store: Store<HostState>,
    bindings: Plugin,
    plugin: Arc<LoadedPlugin>,
    budget: u64,
    declared: Option<SchemaRef>,
}

impl PluginInstance {
    pub(crate) fn new(
        node: Arc<str>,
        store: Store<HostState>,
        bindings: Plugin,
        plugin: Arc<LoadedPlugin>,
        limits: &Limits,
    ) -> Self {
        PluginInstance {
            node,
            store,
            bindings,
            plugin,
            budget: ticks(Duration::from_millis(limits.timeout_ms)),
            declared: None,
        }
    }

    /// The component this instance runs.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    fn fail(&self, batch: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Plugin {
            node: self.node.to_string(),
            batch: batch.into(),
            message: message.into(),
        }
    }

    fn trap(&self, batch: &str, e: wasmtime::Error) -> Error {
        let message = match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => format!(
                "exceeded its time budget (limits.timeout_ms = {} ms)",
                self.budget * super::engine::EPOCH_TICK.as_millis() as u64
            ),
            Some(trap) => format!("trapped: {trap}"),
            None => format!("trapped: {e:?}"),
        };
        self.fail(batch, message)
    }

    /// Calls `init` with the node's config (JSON).
    pub fn init(&mut self, config: &str) -> Result<()> {
        self.store.set_epoch_deadline(self.budget);
        let transform = self.bindings.weir_plugin_transform();
        match transform.call_init(&mut self.store, config) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => {
                Err(self.fail("init", format!("init rejected the config: {message}")))
            }
            Err(e) => Err(self.trap("init", e)),
        }
    }

    /// Calls `describe`: the output schema for `input`, if the plugin knows
    /// it without data. Remembers it to check every output batch against.
    pub fn describe(&mut self, input: &Schema, config: &str) -> Result<Option<SchemaRef>> {
        let fields = schema_to_wit(input).map_err(|e| self.fail("describe", e))?;
        self.store.set_epoch_deadline(self.budget);
        let transform = self.bindings.weir_plugin_transform();
        let out = match transform.call_describe(&mut self.store, &fields, config) {
            Ok(Ok(schema)) => schema.map(|s| Arc::new(schema_from_wit(&s))),
            Ok(Err(message)) => return Err(self.fail("describe", message)),
            Err(e) => return Err(self.trap("describe", e)),
        };
        self.declared = out.clone();
        Ok(out)
    }

    /// Sets the schema outputs must conform to (from an earlier `describe`).
    pub fn expect_schema(&mut self, schema: Option<SchemaRef>) {
        self.declared = schema;
    }

    /// Runs one batch through the plugin; `index` names it in errors.
    pub fn process(&mut self, batch: &RecordBatch, index: u64) -> Result<Vec<RecordBatch>> {
        let label = index.to_string();
        self.store.set_epoch_deadline(self.budget);
        let handle = self
            .store
            .data_mut()
            .lend(BatchRep::new(batch.clone(), None))
            .map_err(|e| self.trap(&label, e))?;
        let borrowed = wasmtime::component::Resource::<BatchRep>::new_borrow(handle.rep());
        let transform = self.bindings.weir_plugin_transform();
        let result = transform.call_process(&mut self.store, borrowed);
        let _ = self.store.data_mut().reclaim(handle);
        let outputs = match result {
            Ok(Ok(outputs)) => outputs,
            Ok(Err(message)) => return Err(self.fail(label, message)),
            Err(e) => return Err(self.trap(&label, e)),
        };
        self.collect(Some(batch), outputs, &label)
    }

    /// End of input: whatever the plugin held back.
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        self.store.set_epoch_deadline(self.budget);
        let transform = self.bindings.weir_plugin_transform();
        let outputs = match transform.call_finish(&mut self.store) {
            Ok(Ok(outputs)) => outputs,
            Ok(Err(message)) => return Err(self.fail("finish", message)),
            Err(e) => return Err(self.trap("finish", e)),
        };
        self.collect(None, outputs, "finish")
    }

    fn collect(
        &self,
        input: Option<&RecordBatch>,
        outputs: Vec<crate::bindings::types::Output>,
        label: &str,
    ) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::with_capacity(outputs.len());
        for output in outputs {
            for batch in assemble(input, output)
                .map_err(|e| self.fail(label, format!("returned a malformed batch: {e}")))?
            {
                let batch = match &self.declared {
                    Some(declared) => conforms(&batch, declared)
                        .and_then(|()| with_schema(batch, declared))
                        .map_err(|e| {
                            self.fail(label, format!("returned a malformed batch: {e}"))
                        })?,
                    None => batch,
                };
                batches.push(batch);
            }
        }
        Ok(batches)
    }
}
