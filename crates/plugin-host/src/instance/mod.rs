//! One long-lived, sandboxed instance of a transform node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use wasmtime::Store;

use crate::bindings::{types, v0_2, Plugin};
use crate::engine::{ticks, EPOCH_TICK};
use crate::host::{LoadedPlugin, Pre, Sandbox};
use crate::rows::Rows;
use crate::state::{BatchRep, HostState};
use crate::{BatchRef, Error, FailureKind, Result};
use collect::Observed;
pub use ports::{Emitted, Ports};

mod collect;
mod ports;

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
    sandbox: Arc<Sandbox>,
    plugin: Arc<LoadedPlugin>,
    store: Store<HostState>,
    bindings: Bindings,
    budget: u64,
    /// The ports the plugin declared (one of each until asked).
    ports: Ports,
    /// Which output ports someone reads, by index (empty: all). Outputs
    /// for the others are dropped unassembled.
    wired: Vec<bool>,
    /// Each output port's schema as `describe` declared it, by index.
    declared: Vec<Option<SchemaRef>>,
    /// Each output port's schema as its first batch fixed it, where
    /// `describe` didn't (see [`Observed`]).
    observed: Vec<Option<Observed>>,
    config: Option<String>,
    trapped: bool,
    /// How long the last `process` call spent in the plugin (its own work
    /// and the columns it fetched), without assembling its outputs.
    last_call: Duration,
    /// The event-time watermark lent with the next batch.
    watermark: Option<i64>,
}

impl PluginInstance {
    pub(crate) fn start(plugin: Arc<LoadedPlugin>, sandbox: Arc<Sandbox>) -> Result<Self> {
        let mut store = sandbox.store(&plugin.engine)?;
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
            budget: ticks(Duration::from_millis(sandbox.limits.timeout_ms)),
            sandbox,
            plugin,
            store,
            bindings,
            ports: Ports::default(),
            wired: Vec::new(),
            declared: Vec::new(),
            observed: Vec::new(),
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
        let mut fresh = PluginInstance::start(self.plugin.clone(), self.sandbox.clone())?;
        fresh.ports = self.ports.clone();
        fresh.wired = self.wired.clone();
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
            message: crate::state::bounded(message.into()),
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
        self.ports(config)?;
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

    /// Runs one batch through the plugin on its first input port; `index`
    /// names it in errors.
    pub fn process(&mut self, batch: &RecordBatch, index: u64) -> Result<Vec<Emitted>> {
        self.process_port(0, &Rows::from(batch.clone()), index)
    }

    /// Runs one batch that came in on input port `input` through the
    /// plugin; `index` names it in errors.
    pub fn process_port(&mut self, input: usize, rows: &Rows, index: u64) -> Result<Vec<Emitted>> {
        let rep = BatchRep::new(rows.clone(), self.watermark);
        self.lend_to_process(input, rep, index)
    }

    /// Tells the plugin input port `input` (whose batches had `schema`)
    /// ended: an empty batch whose `port-ended` is true. Only 0.2 plugins
    /// have ports to end.
    pub fn end_port(
        &mut self,
        input: usize,
        schema: SchemaRef,
        index: u64,
    ) -> Result<Vec<Emitted>> {
        if matches!(self.bindings, Bindings::V0_1(_)) {
            return Ok(Vec::new());
        }
        let rep = BatchRep::port_end(schema, self.watermark);
        self.lend_to_process(input, rep, index)
    }

    fn lend_to_process(&mut self, input: usize, rep: BatchRep, index: u64) -> Result<Vec<Emitted>> {
        self.begin_call();
        let result = self.call_process(input, rep, index);
        self.settle_state(&result);
        result
    }

    /// Starts a `process` or `finish` call: the state store opens a
    /// transaction, and columns staged by an earlier call (`init` may
    /// stage; nothing can name them) are dropped, so numbers count from 0.
    fn begin_call(&mut self) {
        let data = self.store.data_mut();
        data.kv.begin();
        data.staged.clear();
    }

    /// A call's writes to the host state store stay only when the call
    /// succeeded: a failed batch (skipped, dead-lettered, bisected and
    /// retried) leaves no trace in the state, as it leaves none in the
    /// output.
    fn settle_state<T>(&mut self, result: &Result<T>) {
        // A failed call's staged columns are never assembled.
        self.store.data_mut().staged.clear();
        let kv = &mut self.store.data_mut().kv;
        if result.is_ok() {
            // The table may go to disk here. A disk that can't take it
            // leaves the writes in memory (the next call tries again; a
            // call that would pass the whole budget is refused).
            if let Err(e) = kv.commit() {
                tracing::error!(node = %self.sandbox.node, error = %e,
                    "can't spill the state store to disk; it stays in memory");
            }
            return;
        }
        let undone = kv.rollback();
        if undone > 0 {
            tracing::debug!(node = %self.sandbox.node, writes = undone,
                "undid the failed call's state store writes");
        }
    }

    fn call_process(&mut self, input: usize, rep: BatchRep, index: u64) -> Result<Vec<Emitted>> {
        let rows = &rep.rows().clone();
        let label = BatchRef::Batch(index);
        if input >= self.ports.inputs.len() {
            return Err(self.fail(
                label,
                FailureKind::Setup,
                format!(
                    "a batch for input port {input}; the node declares {}",
                    self.ports.inputs.join(", ")
                ),
            ));
        }
        if self.trapped {
            return Err(self.fail(
                label,
                FailureKind::Trap,
                "the instance trapped earlier and was not recovered",
            ));
        }
        self.store.set_epoch_deadline(self.budget);
        let handle = match self.store.data_mut().lend(rep) {
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
                .call_process(&mut self.store, input as u32, borrowed)
                .map(|r| r.map(Outputs::V0_2)),
        };
        self.last_call = started.elapsed();
        let _ = self.store.data_mut().reclaim(handle);
        let outputs = match result {
            Ok(Ok(outputs)) => outputs,
            Ok(Err(message)) => return Err(self.fail(label, FailureKind::Error, message)),
            Err(e) => return Err(self.trap(label, e)),
        };
        self.collect(Some((input, rows)), outputs, label)
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

    /// Keeps the host state store's runs in `dir` (a checkpointed node's
    /// state directory, which its checkpoints name) instead of a
    /// temporary directory.
    pub fn set_state_dir(&mut self, dir: &std::path::Path) {
        self.store.data_mut().kv.set_dir(dir);
    }

    /// The host state store's size: bytes in memory (its table, and the
    /// runs' indexes and filters), runs on disk and the entries they hold.
    pub fn state_size(&self) -> (usize, usize, u64) {
        let kv = &self.store.data().kv;
        let (runs, entries) = kv.runs();
        (kv.bytes() + kv.resident(), runs, entries)
    }

    /// The plugin's state for a successor (`None`: stateless): everything
    /// it names is on disk.
    pub fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        self.snapshot_with(false).map(|(state, _)| state)
    }

    /// The plugin's state for a checkpoint, and what it names that is
    /// still being written (the host state store's newest run, written
    /// off the node's thread): the checkpoint is durable once that is.
    pub fn checkpoint_snapshot(&mut self) -> Result<(Option<Vec<u8>>, Option<crate::kv::Written>)> {
        self.snapshot_with(true)
    }

    fn snapshot_with(
        &mut self,
        background: bool,
    ) -> Result<(Option<Vec<u8>>, Option<crate::kv::Written>)> {
        self.store.set_epoch_deadline(self.budget);
        let result = match &self.bindings {
            Bindings::V0_1(b) => b
                .weir_plugin_transform()
                .call_snapshot(&mut self.store)
                .map(|r| r.map(|state| (state, None))),
            Bindings::V0_2(b) => b
                .weir_plugin_transform()
                .call_snapshot(&mut self.store)
                .map(|r| {
                    r.and_then(|state| {
                        crate::kv::wrap(state, &mut self.store.data_mut().kv, background)
                            .map_err(|e| format!("can't write the state store: {e}"))
                    })
                }),
        };
        match result {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(message)) => Err(self.fail(BatchRef::Snapshot, FailureKind::Error, message)),
            Err(e) => Err(self.trap(BatchRef::Snapshot, e)),
        }
    }

    /// Takes over a predecessor's state (after `init`).
    pub fn restore(&mut self, state: &[u8]) -> Result<()> {
        let (own, kv) = crate::kv::unwrap(state, &self.store.data().kv).map_err(|e| {
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

    /// The first output port's schema as declared by `describe`, if any.
    pub fn declared(&self) -> Option<&SchemaRef> {
        self.declared.first().and_then(Option::as_ref)
    }

    /// Each output port's schema as declared by `describe`, by index.
    pub fn declared_schemas(&self) -> &[Option<SchemaRef>] {
        &self.declared
    }

    /// End of input: whatever the plugin held back.
    pub fn finish(&mut self) -> Result<Vec<Emitted>> {
        self.begin_call();
        let result = self.call_finish();
        self.settle_state(&result);
        result
    }

    fn call_finish(&mut self) -> Result<Vec<Emitted>> {
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
}
