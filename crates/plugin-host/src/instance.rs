//! One long-lived, sandboxed instance of a transform node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use wasmtime::{Engine, Store};

use super::convert::{schema_from_wit, schema_to_wit};
use super::engine::{ticks, EPOCH_TICK};
use super::host::{LoadedPlugin, Pre, Sandbox};
use super::output::{assemble, assemble_v0_2, conforms, sound, with_schema};
use super::state::{BatchRep, HostState};
use crate::bindings::{types, v0_2, Plugin};
use crate::{BatchRef, Error, FailureKind, Result};

/// An instance's exports, as the contract version it was built for
/// generates them.
enum Bindings {
    V0_1(Plugin),
    V0_2(v0_2::Plugin),
}

/// What a `process` or `finish` call returned, in either version.
enum Outputs {
    V0_1(Vec<types::Output>),
    V0_2(Vec<v0_2::types::Output>),
}

/// A call's result: the plugin's answer (its own error as a string), or
/// the trap that ended it.
type Call<T> = wasmtime::Result<std::result::Result<T, String>>;

/// A plugin instance bound to one node. Calls run synchronously on the
/// caller's thread, each with the node's wall-clock budget. After a trap
/// the instance is unusable; [`PluginInstance::recover`] replaces it.
pub struct PluginInstance {
    engine: Engine,
    sandbox: Arc<Sandbox>,
    plugin: Arc<LoadedPlugin>,
    store: Store<HostState>,
    bindings: Bindings,
    budget: u64,
    declared: Option<SchemaRef>,
    /// Without a declared schema: the input schema and the first output
    /// batch's schema for it. Every later output for the same input
    /// schema must match (a sink downstream can't take a type change); a
    /// new input schema (a manifest reload upstream) fixes it anew.
    observed: Option<(Option<SchemaRef>, SchemaRef)>,
    config: Option<String>,
    trapped: bool,
    /// How long the last `process` call spent in the plugin (its own work
    /// and the columns it fetched), without assembling its outputs.
    last_call: Duration,
    /// The event-time watermark lent with the next batch.
    watermark: Option<i64>,
}

impl PluginInstance {
    pub(crate) fn start(
        engine: &Engine,
        plugin: Arc<LoadedPlugin>,
        sandbox: Arc<Sandbox>,
    ) -> Result<Self> {
        let mut store = sandbox.store(engine)?;
        let bindings = match &plugin.pre {
            Pre::V0_1(pre) => pre.instantiate(&mut store).map(Bindings::V0_1),
            Pre::V0_2(pre) => pre.instantiate(&mut store).map(Bindings::V0_2),
        }
        .map_err(|e| Error::Plugin {
            node: sandbox.node.to_string(),
            batch: BatchRef::Instantiate,
            kind: FailureKind::Setup,
            message: format!("{e:?}"),
        })?;
        Ok(PluginInstance {
            engine: engine.clone(),
            budget: ticks(Duration::from_millis(sandbox.limits.timeout_ms)),
            sandbox,
            plugin,
            store,
            bindings,
            declared: None,
            observed: None,
            config: None,
            trapped: false,
            last_call: Duration::ZERO,
            watermark: None,
        })
    }

    /// The component this instance runs.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// Whether the last call trapped (the instance must be replaced).
    pub fn trapped(&self) -> bool {
        self.trapped
    }

    /// Replaces a trapped instance with a fresh one and re-runs `init` with
    /// the same config. A no-op when the instance is healthy.
    pub fn recover(&mut self) -> Result<()> {
        if !self.trapped {
            return Ok(());
        }
        let mut fresh =
            PluginInstance::start(&self.engine, self.plugin.clone(), self.sandbox.clone())?;
        fresh.declared = self.declared.clone();
        fresh.observed = self.observed.clone();
        fresh.watermark = self.watermark;
        // The state store is the host's: a trap costs the instance, not it.
        fresh.store.data_mut().kv = std::mem::take(&mut self.store.data_mut().kv);
        if let Some(config) = self.config.clone() {
            fresh.init(&config)?;
        }
        tracing::info!(node = %self.sandbox.node, version = %self.plugin.version(), "replaced the instance after a trap");
        *self = fresh;
        Ok(())
    }

    fn fail(&self, batch: BatchRef, kind: FailureKind, message: impl Into<String>) -> Error {
        Error::Plugin {
            node: self.sandbox.node.to_string(),
            batch,
            kind,
            // A plugin's own text (a 64 MiB error string) is cut short.
            message: super::state::bounded(message.into()),
        }
    }

    fn trap(&mut self, batch: BatchRef, e: wasmtime::Error) -> Error {
        self.trapped = true;
        if let Some(panic) = self.store.data_mut().last_panic.take() {
            return self.fail(batch, FailureKind::Trap, format!("panicked: {panic}"));
        }
        let limits = &self.sandbox.limits;
        let text = format!("{e:?}");
        let (kind, message) = match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => (
                FailureKind::Limit,
                format!(
                    "exceeded its time budget (limits.timeout_ms = {} ms, measured in {} ms ticks)",
                    limits.timeout_ms,
                    EPOCH_TICK.as_millis()
                ),
            ),
            _ if text.contains("memory") && (text.contains("grow") || text.contains("limit")) => (
                FailureKind::Limit,
                format!(
                    "exceeded its memory limit (limits.memory_mb = {})",
                    limits.memory_mb
                ),
            ),
            Some(wasmtime::Trap::StackOverflow) => (
                FailureKind::Trap,
                "trapped: wasm stack exhausted (unbounded recursion?)".to_string(),
            ),
            Some(trap) => (FailureKind::Trap, format!("trapped: {trap}")),
            None => (FailureKind::Trap, format!("trapped: {text}")),
        };
        self.fail(batch, kind, message)
    }

    /// Calls `init` with the node's config (JSON).
    pub fn init(&mut self, config: &str) -> Result<()> {
        self.check_ports(config)?;
        self.store.set_epoch_deadline(self.budget);
        let result = match &self.bindings {
            Bindings::V0_1(b) => b.weir_plugin_transform().call_init(&mut self.store, config),
            Bindings::V0_2(b) => b.weir_plugin_transform().call_init(&mut self.store, config),
        };
        match result {
            Ok(Ok(())) => {
                self.config = Some(config.to_string());
                Ok(())
            }
            Ok(Err(message)) => Err(self.fail(
                BatchRef::Init,
                FailureKind::Setup,
                format!("init rejected the config: {message}"),
            )),
            Err(e) => Err(self.trap(BatchRef::Init, e)),
        }
    }

    /// Calls `describe`: the output schema for `input`, if the plugin knows
    /// it without data. Remembers it to check every output batch against.
    pub fn describe(&mut self, input: &Schema, config: &str) -> Result<Option<SchemaRef>> {
        let out = match &self.bindings {
            Bindings::V0_1(_) => self.describe_v0_1(input, config)?,
            Bindings::V0_2(_) => self.describe_v0_2(input, config)?,
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

    fn describe_v0_2(&mut self, input: &Schema, config: &str) -> Result<Option<SchemaRef>> {
        let Bindings::V0_2(bindings) = &self.bindings else {
            unreachable!("called for 0.2 bindings only")
        };
        let inputs = [v0_2::types::PortSchema {
            name: "in".into(),
            schema: Some(v0_2::map::schema_to_wit(weir_wit_arrow::schema_to_wit(
                input,
            ))),
        }];
        self.store.set_epoch_deadline(self.budget);
        let transform = bindings.weir_plugin_transform();
        let ports = match transform.call_describe(&mut self.store, &inputs, config) {
            Ok(Ok(ports)) => ports,
            Ok(Err(message)) => {
                return Err(self.fail(BatchRef::Describe, FailureKind::Setup, message))
            }
            Err(e) => return Err(self.trap(BatchRef::Describe, e)),
        };
        let Some(schema) = ports.into_iter().next().and_then(|p| p.schema) else {
            return Ok(None);
        };
        weir_wit_arrow::schema_from_wit(&v0_2::map::schema_from_wit(schema))
            .map(|s| Some(Arc::new(s)))
            .map_err(|e| {
                self.fail(
                    BatchRef::Describe,
                    FailureKind::Setup,
                    format!("describe returned a malformed schema: {e}"),
                )
            })
    }

    /// A 0.2 plugin names its ports before `init`; until the graph wires
    /// named ports, a node has one input and one output.
    fn check_ports(&mut self, config: &str) -> Result<()> {
        let Bindings::V0_2(bindings) = &self.bindings else {
            return Ok(());
        };
        self.store.set_epoch_deadline(self.budget);
        let ports = match bindings
            .weir_plugin_transform()
            .call_ports(&mut self.store, config)
        {
            Ok(Ok(ports)) => ports,
            Ok(Err(message)) => {
                return Err(self.fail(
                    BatchRef::Init,
                    FailureKind::Setup,
                    format!("ports rejected the config: {message}"),
                ))
            }
            Err(e) => return Err(self.trap(BatchRef::Init, e)),
        };
        if ports.inputs.len() != 1 || ports.outputs.len() != 1 {
            return Err(self.fail(
                BatchRef::Init,
                FailureKind::Setup,
                format!(
                    "declares input ports [{}] and output ports [{}]; this version of weir \
                     wires exactly one input and one output per transform",
                    ports.inputs.join(", "),
                    ports.outputs.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// The event-time watermark (µs since the epoch) the next batches
    /// carry into the plugin (`batch.watermark()` in the WIT).
    pub fn set_watermark(&mut self, watermark: Option<i64>) {
        self.watermark = watermark;
        if let Some(w) = watermark {
            self.store.data_mut().kv.advance(w);
        }
    }

    /// The watermark the next batch carries.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Runs one batch through the plugin; `index` names it in errors.
    pub fn process(&mut self, batch: &RecordBatch, index: u64) -> Result<Vec<RecordBatch>> {
        let label = BatchRef::Batch(index);
        if self.trapped {
            return Err(self.fail(
                label,
                FailureKind::Trap,
                "the instance trapped earlier and was not recovered",
            ));
        }
        self.store.set_epoch_deadline(self.budget);
        let handle = match self
            .store
            .data_mut()
            .lend(BatchRep::new(batch.clone(), self.watermark))
        {
            Ok(h) => h,
            Err(e) => return Err(self.trap(label, e)),
        };
        let borrowed = wasmtime::component::Resource::<BatchRep>::new_borrow(handle.rep());
        let started = Instant::now();
        let result: Call<Outputs> = match &self.bindings {
            Bindings::V0_1(b) => b
                .weir_plugin_transform()
                .call_process(&mut self.store, borrowed)
                .map(|r| r.map(Outputs::V0_1)),
            Bindings::V0_2(b) => b
                .weir_plugin_transform()
                .call_process(&mut self.store, 0, borrowed)
                .map(|r| r.map(Outputs::V0_2)),
        };
        self.last_call = started.elapsed();
        let _ = self.store.data_mut().reclaim(handle);
        let outputs = match result {
            Ok(Ok(outputs)) => outputs,
            Ok(Err(message)) => return Err(self.fail(label, FailureKind::Error, message)),
            Err(e) => return Err(self.trap(label, e)),
        };
        self.collect(Some(batch), outputs, label)
    }

    /// How long the last [`process`](Self::process) spent inside the
    /// plugin — its work plus the columns it fetched across the boundary —
    /// as opposed to assembling and validating its outputs on the host.
    pub fn last_call(&self) -> Duration {
        self.last_call
    }

    /// The linear memory the instance holds, in bytes (every memory of
    /// the component, as granted by the node's limiter).
    pub fn memory_bytes(&self) -> u64 {
        self.store.data().limits.memory_bytes as u64
    }

    /// The plugin's state for a successor (`None`: stateless).
    pub fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        self.store.set_epoch_deadline(self.budget);
        let result = match &self.bindings {
            Bindings::V0_1(b) => b.weir_plugin_transform().call_snapshot(&mut self.store),
            Bindings::V0_2(b) => b
                .weir_plugin_transform()
                .call_snapshot(&mut self.store)
                .map(|r| r.map(|state| super::kv::wrap(state, &self.store.data().kv))),
        };
        match result {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(message)) => Err(self.fail(BatchRef::Snapshot, FailureKind::Error, message)),
            Err(e) => Err(self.trap(BatchRef::Snapshot, e)),
        }
    }

    /// Takes over a predecessor's state (after `init`).
    pub fn restore(&mut self, state: &[u8]) -> Result<()> {
        let budget = self.store.data().kv.budget();
        let (own, kv) = super::kv::unwrap(state, budget).map_err(|e| {
            self.fail(
                BatchRef::Restore,
                FailureKind::Error,
                format!("the saved state is damaged: {e}"),
            )
        })?;
        if matches!(self.bindings, Bindings::V0_1(_)) && !kv.is_empty() {
            return Err(self.fail(
                BatchRef::Restore,
                FailureKind::Error,
                "the state to take over includes a host state store, which a plugin built \
                 against weir:plugin@0.1.0 can't read; rebuild it against weir:plugin@0.2.0",
            ));
        }
        self.store.data_mut().kv = kv;
        let Some(own) = own else {
            return Ok(());
        };
        self.store.set_epoch_deadline(self.budget);
        let result = match &self.bindings {
            Bindings::V0_1(b) => b
                .weir_plugin_transform()
                .call_restore(&mut self.store, &own),
            Bindings::V0_2(b) => b
                .weir_plugin_transform()
                .call_restore(&mut self.store, &own),
        };
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(self.fail(BatchRef::Restore, FailureKind::Error, message)),
            Err(e) => Err(self.trap(BatchRef::Restore, e)),
        }
    }

    /// The output schema declared by `describe`, if any.
    pub fn declared(&self) -> Option<&SchemaRef> {
        self.declared.as_ref()
    }

    /// End of input: whatever the plugin held back.
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        self.store.set_epoch_deadline(self.budget);
        let result: Call<Outputs> = match &self.bindings {
            Bindings::V0_1(b) => b
                .weir_plugin_transform()
                .call_finish(&mut self.store)
                .map(|r| r.map(Outputs::V0_1)),
            Bindings::V0_2(b) => b
                .weir_plugin_transform()
                .call_finish(&mut self.store)
                .map(|r| r.map(Outputs::V0_2)),
        };
        let outputs = match result {
            Ok(Ok(outputs)) => outputs,
            Ok(Err(message)) => {
                return Err(self.fail(BatchRef::Finish, FailureKind::Error, message))
            }
            Err(e) => return Err(self.trap(BatchRef::Finish, e)),
        };
        self.collect(None, outputs, BatchRef::Finish)
    }

    fn collect(
        &mut self,
        input: Option<&RecordBatch>,
        outputs: Outputs,
        label: BatchRef,
    ) -> Result<Vec<RecordBatch>> {
        let malformed = |e: String| {
            self.fail(
                label,
                FailureKind::Malformed,
                format!("returned a malformed batch: {e}"),
            )
        };
        let mut batches = Vec::new();
        let input_schema = input.map(RecordBatch::schema);
        // `finish` (no input) answers to what the last input fixed.
        let mut observed = self.observed.clone().filter(|(seen, _)| {
            input_schema.is_none()
                || seen.as_ref().map(|s| s.fields()) == input_schema.as_ref().map(|s| s.fields())
        });
        let assembled: Vec<Vec<RecordBatch>> = match outputs {
            Outputs::V0_1(outputs) => outputs
                .into_iter()
                .map(|o| assemble(input, o))
                .collect::<std::result::Result<_, _>>(),
            Outputs::V0_2(outputs) => outputs
                .into_iter()
                .map(|o| match o.port {
                    0 => assemble_v0_2(input, o.data),
                    port => Err(format!(
                        "an output for port {port}; the node has one output port (0)"
                    )),
                })
                .collect(),
        }
        .map_err(malformed)?;
        for output in assembled {
            for batch in output {
                sound(&batch).map_err(malformed)?;
                let fixed_by_first = observed.as_ref().map(|(_, out)| out);
                let batch = match (&self.declared, fixed_by_first) {
                    (Some(fixed), _) | (None, Some(fixed)) => conforms(&batch, fixed)
                        .and_then(|()| with_schema(batch, fixed))
                        .map_err(|e| match &self.declared {
                            Some(_) => e,
                            None => format!(
                                "{e} (the plugin's describe said its schema is unknown until \
                                 its first batch, and then it changed)"
                            ),
                        })
                        .map_err(malformed)?,
                    (None, None) => {
                        observed = Some((input_schema.clone(), batch.schema()));
                        batch
                    }
                };
                batches.push(batch);
            }
        }
        self.observed = observed;
        Ok(batches)
    }
}
