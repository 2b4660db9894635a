//! What each store holds: the node's limits, a deny-by-default WASI
//! context, and the host side of the `batch` resource and `log` import.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::convert::{column_to_wit, schema_to_wit};
use super::{Grants, Limits};
use crate::bindings::{log, types};
use crate::rows::Rows;
use crate::{Error, Result};

/// The host's representation of a `batch` resource lent to a plugin.
pub struct BatchRep {
    rows: Rows,
    watermark: Option<i64>,
    port_ended: bool,
}

impl BatchRep {
    /// Wraps rows (and their watermark) to lend them to a plugin.
    pub fn new(rows: Rows, watermark: Option<i64>) -> Self {
        BatchRep {
            rows,
            watermark,
            port_ended: false,
        }
    }

    /// An empty batch of `schema` marking the end of its input port.
    pub fn port_end(schema: arrow::datatypes::SchemaRef, watermark: Option<i64>) -> Self {
        BatchRep {
            rows: Rows::from(RecordBatch::new_empty(schema)),
            watermark,
            port_ended: true,
        }
    }

    pub(crate) fn port_ended(&self) -> bool {
        self.port_ended
    }

    pub(crate) fn rows(&self) -> &Rows {
        &self.rows
    }

    /// Column `index` of the lent rows (filtered, when a selection is
    /// pending), or the error the plugin is told.
    pub(crate) fn column(&self, index: u32) -> Result<ArrayRef, String> {
        match self.rows.column(index as usize) {
            Some(column) => column.map_err(|e| e.to_string()),
            None => Err(format!(
                "column index {index} out of range: the batch has {} columns",
                self.rows.num_columns()
            )),
        }
    }

    /// The lent rows as one batch (for `to-ipc`).
    pub(crate) fn whole(&self) -> wasmtime::Result<RecordBatch> {
        Ok(self.rows.to_batch()?)
    }

    pub(crate) fn watermark(&self) -> Option<i64> {
        self.watermark
    }
}

/// `batch` as an Arrow IPC stream (the `to-ipc` of both contract versions).
pub(crate) fn ipc_bytes(batch: &RecordBatch) -> wasmtime::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Per-store state of one plugin instance.
pub struct HostState {
    node: Arc<str>,
    /// The message of the guest's last panic (the SDK logs it just before
    /// trapping), to name the cause in the trap report.
    pub(crate) last_panic: Option<String>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: Metered,
    log_budget: LogBudget,
    /// The `state` store of a 0.2 plugin (empty for 0.1 ones).
    pub(crate) kv: super::kv::KvStore,
    /// The columns a 0.2 plugin staged during the current call.
    pub(crate) staged: super::stage::Staged,
}

/// The store's limits, and the linear memory its instance holds: every
/// memory's creation and growth goes through `memory_growing`, so the sum
/// of what was granted is what the plugin has (wasm memories never
/// shrink). Read after each call for the metrics.
pub(crate) struct Metered {
    limits: StoreLimits,
    pub(crate) memory_bytes: usize,
}

impl ResourceLimiter for Metered {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        // An allowed growth past the memory's own maximum still fails.
        if allowed && maximum.is_none_or(|m| desired <= m) {
            self.memory_bytes += desired.saturating_sub(current);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// How much a plugin may log: a burst of [`LogBudget::BURST`] lines, then
/// [`LogBudget::PER_SECOND`] a second; the rest is counted and reported as
/// one `log lines suppressed` line, so a plugin logging in a hot loop can't
/// flood stderr (or a log shipper) faster than its time limit stops it.
struct LogBudget {
    tokens: f64,
    last: std::time::Instant,
    suppressed: u64,
}

impl LogBudget {
    const BURST: f64 = 200.0;
    const PER_SECOND: f64 = 100.0;

    fn new() -> Self {
        LogBudget {
            tokens: Self::BURST,
            last: std::time::Instant::now(),
            suppressed: 0,
        }
    }

    /// Whether one more line may go out; `Some(n)` first when `n` lines
    /// were suppressed since the last one that did.
    fn take(&mut self) -> (bool, Option<u64>) {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * Self::PER_SECOND;
        self.tokens = (self.tokens + refill).min(Self::BURST);
        self.last = now;
        if self.tokens < 1.0 {
            self.suppressed += 1;
            return (false, None);
        }
        self.tokens -= 1.0;
        (
            true,
            Some(std::mem::take(&mut self.suppressed)).filter(|n| *n > 0),
        )
    }
}

/// Longest plugin-supplied text (a log line, an error message) carried
/// into weir's messages and logs.
pub(crate) const MAX_TEXT: usize = 4096;

/// `text` cut to [`MAX_TEXT`] bytes at a character boundary, saying how
/// much was left out.
pub(crate) fn bounded(text: String) -> String {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut cut = MAX_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} more bytes)", &text[..cut], text.len() - cut)
}

impl HostState {
    /// A fresh state for `node`. Deny by default: no preopens, no
    /// environment, no arguments, no network, no stdin, output discarded;
    /// `grants` opens named environment variables and read-only
    /// directories. Clocks and randomness are always available.
    pub fn new(node: Arc<str>, limits: &Limits, grants: &Grants) -> Result<Self> {
        let memory =
            usize::try_from(limits.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let mut wasi = WasiCtxBuilder::new();
        // No network, ever: creating a socket and name lookups fail with
        // access-denied (and no address passes the default address check).
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for name in &grants.env {
            if let Ok(value) = std::env::var(name) {
                wasi.env(name, value);
            }
        }
        if grants.stdio {
            wasi.stdout(super::stdio::LogStream::new(node.clone(), "stdout"));
            wasi.stderr(super::stdio::LogStream::new(node.clone(), "stderr"));
        }
        for dir in &grants.dirs {
            let guest = dir.to_string_lossy().into_owned();
            wasi.preopened_dir(dir, &guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| Error::Plugin {
                    node: node.to_string(),
                    batch: crate::BatchRef::Instantiate,
                    kind: crate::FailureKind::Setup,
                    message: format!("can't grant directory {}: {e}", dir.display()),
                })?;
        }
        Ok(HostState {
            node,
            last_panic: None,
            wasi: wasi.build(),
            table: ResourceTable::new(),
            log_budget: LogBudget::new(),
            kv: super::kv::KvStore::new(memory),
            staged: super::stage::Staged::new(memory.saturating_mul(4)),
            limits: Metered {
                limits: StoreLimitsBuilder::new()
                    .memory_size(memory)
                    .table_elements(1 << 20)
                    .instances(64)
                    .tables(64)
                    .memories(8)
                    .trap_on_grow_failure(true)
                    .build(),
                memory_bytes: 0,
            },
        })
    }

    /// Lends `batch` to the guest for one call.
    pub fn lend(&mut self, batch: BatchRep) -> wasmtime::Result<Resource<BatchRep>> {
        Ok(self.table.push(batch)?)
    }

    /// Takes a lent batch back after the call.
    pub fn reclaim(&mut self, batch: Resource<BatchRep>) -> wasmtime::Result<()> {
        self.table.delete(batch)?;
        Ok(())
    }

    pub(crate) fn batch(&self, handle: &Resource<BatchRep>) -> wasmtime::Result<&BatchRep> {
        Ok(self.table.get(handle)?)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl types::HostBatch for HostState {
    fn schema(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<types::Schema> {
        let rep = self.batch(&handle)?;
        // Inputs were checked against the WIT types before the call.
        schema_to_wit(&rep.rows.schema()).map_err(wasmtime::Error::msg)
    }

    fn num_rows(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<u32> {
        Ok(u32::try_from(self.batch(&handle)?.rows.num_rows()).unwrap_or(u32::MAX))
    }

    fn column(
        &mut self,
        handle: Resource<BatchRep>,
        index: u32,
    ) -> wasmtime::Result<Result<types::Column, String>> {
        let rep = self.batch(&handle)?;
        Ok(rep
            .column(index)
            .and_then(|array| column_to_wit(array.as_ref())))
    }

    fn to_ipc(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<Vec<u8>> {
        ipc_bytes(&self.batch(&handle)?.whole()?)
    }

    fn watermark(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<Option<i64>> {
        Ok(self.batch(&handle)?.watermark)
    }

    fn drop(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<()> {
        // The host owns batches; a guest can only drop its borrow, and
        // borrows are never handed out as owned handles.
        let _ = handle;
        Ok(())
    }
}

impl log::Host for HostState {
    fn log(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        if fields.iter().any(|(k, v)| k == "panic" && v == "true") {
            self.last_panic = Some(message.chars().take(1000).collect());
        }
        let node = &*self.node;
        let (allowed, suppressed) = self.log_budget.take();
        if let Some(n) = suppressed {
            tracing::warn!(target: "weir::plugin", node, suppressed = n,
                "{n} log lines suppressed (a plugin may log {} lines a second)", LogBudget::PER_SECOND);
        }
        if !allowed {
            return Ok(());
        }
        let message = bounded(message);
        let fields = bounded(
            fields
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "weir::plugin", node, %fields, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "weir::plugin", node, %fields, "{message}")
            }
            log::Level::Info => tracing::info!(target: "weir::plugin", node, %fields, "{message}"),
            log::Level::Warn => tracing::warn!(target: "weir::plugin", node, %fields, "{message}"),
            log::Level::Error => {
                tracing::error!(target: "weir::plugin", node, %fields, "{message}")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_logging_in_a_loop_gets_its_burst_then_a_count_of_what_was_suppressed() {
        let mut budget = LogBudget::new();
        let allowed = (0..10_000).filter(|_| budget.take().0).count();
        // The burst, and what trickled in while the loop ran.
        assert!((200..260).contains(&allowed), "{allowed}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (ok, suppressed) = budget.take();
        assert!(ok);
        assert_eq!(suppressed, Some(10_000 - allowed as u64));
    }

    #[test]
    fn long_plugin_text_is_cut_at_a_character_boundary_saying_how_much_is_left_out() {
        let text = "é".repeat(5000);
        let cut = bounded(text);
        assert!(cut.len() < MAX_TEXT + 40, "{}", cut.len());
        assert!(
            cut.ends_with("(5904 more bytes)"),
            "{}",
            &cut[cut.len() - 30..]
        );
    }
}
