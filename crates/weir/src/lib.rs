//! weir: a dataflow runtime for sandboxed data transforms.
//!
//! The crate reads like the data path:
//!
//! ```text
//! manifest ──▶ graph ──▶ exec: source ─▶ plugin (WASM transform) ─▶ sink
//! ```
//!
//! - [`manifest`]: the typed `pipeline.toml`, parsed with every error located.
//! - [`graph`]: the validated DAG, and schema propagation for `weir check`.
//! - [`exec`]: runs the graph, one task per node, bounded channels between.
//! - [`reload`]: hot reload — watches plugin files, builds successors off
//!   the data path, swaps them in at a batch boundary.
//!
//! Below it, in crates of their own (re-exported here under the names the
//! layers use):
//! - [`source`] / [`sink`] (weir-io): one module per kind, registered in
//!   one place.
//! - [`plugin`] (weir-plugin-host): the wasmtime engine, component cache,
//!   sandboxed instances, and the Arrow ↔ WIT boundary.
//! - [`checkpoint`] (weir-core): aligned barriers, checkpoints on disk,
//!   exactly-once restarts.
//!
//! Above it: weir-cli, the `weir` command and all presentation.

pub mod exec;
pub mod graph;
#[cfg(test)]
mod layers;
pub mod manifest;
pub mod reload;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;

// The layers below, under the names the rest of the crate uses: the plugin
// host and io are their own crates (weir-plugin-host, weir-io), the error,
// checkpoints, defaults and paths are weir-core's.
pub(crate) use weir_core::paths;
pub use weir_core::{checkpoint, defaults, error};
pub use weir_core::{BatchRef, Cause, Detail, Error, FailureKind, Result};
pub use weir_io::{sink, source};
/// Kafka consumer-group membership, for `scale_out = "partitions"`.
#[cfg(feature = "kafka")]
pub mod kafka {
    pub use weir_io::{Assignment, Membership};
}
pub use weir_plugin_host as plugin;
pub use weir_plugin_host::bindings;

use std::path::Path;
use std::sync::Arc;

/// Loads, checks and runs the pipeline at `manifest` to completion on a
/// fresh async runtime: the whole of `weir run`, as a function.
pub fn run_file(manifest: &Path, host: &plugin::PluginHost) -> Result<exec::RunSummary> {
    let graph = graph::Graph::new(manifest::Manifest::load(manifest)?)?;
    let prepared = graph.prepare(host)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(manifest, e))?;
    runtime.block_on(exec::run(
        &graph,
        prepared,
        Arc::new(exec::Control::default()),
    ))
}
