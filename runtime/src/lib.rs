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
//! - [`source`] / [`sink`]: one module per kind, registered in one place.
//! - [`plugin`]: the wasmtime engine, component cache, sandboxed instances,
//!   and the Arrow ↔ WIT boundary.
//! - [`exec`]: runs the graph, one task per node, bounded channels between.
//! - [`checkpoint`]: aligned barriers, checkpoints on disk, exactly-once
//!   restarts.
//! - [`reload`]: hot reload — watches plugin files, builds successors off
//!   the data path, swaps them in at a batch boundary.

pub mod bindings;
pub mod checkpoint;
mod contain;
pub mod defaults;
pub mod error;
pub mod exec;
pub mod graph;
#[cfg(test)]
mod layers;
pub mod manifest;
mod paths;
pub mod plugin;
pub mod reload;
pub mod sink;
pub mod source;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;

pub use error::{BatchRef, Error, FailureKind, Result};
pub mod cli;

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
