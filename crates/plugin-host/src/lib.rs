//! weir's plugin host: wasmtime engine policy, compiled components, sandboxed
//! instances, and the Arrow ↔ WIT boundary.
//!
//! - [`engine`]: one engine builder (component model, epoch interruption
//!   with a ticker thread, pooling allocator with fallback).
//! - [`host`]: loads and compiles components (cached by content hash),
//!   checks them against the WIT, instantiates them per node; `tier`
//!   gives hot reload a quick baseline build first (see [`Tier`]).
//! - [`instance`]: one long-lived, sandboxed instance of a transform node.
//! - [`state`]: what a store holds — limits, the deny-by-default WASI
//!   context, the host side of `batch` and `log` (`host_v0_2`: the same
//!   for weir:plugin@0.2.0, and its `state` import over [`kv`]).
//! - [`convert`] / [`output`]: typed columns across the boundary, and the
//!   validation and assembly of everything a plugin returns.
//! - [`compute`]: the `compute` import — whole-column expressions a
//!   guest asks the host to evaluate with Arrow kernels.
//! - [`rows`]: what a node emits — a batch with the plugin's selection
//!   still pending, applied only to the columns someone reads.
//!
//! It knows nothing of graphs, sources or sinks: a node is a name, an
//! instance and its limits.

pub mod bindings;
mod cache;
pub mod code_cache;
pub mod compute;
pub mod convert;
pub mod engine;
pub mod host;
mod host_v0_2;
pub mod inspect;
pub mod instance;
pub mod known;
pub mod kv;
mod lend;
pub mod output;
pub mod pool;
pub mod rows;
pub mod stage;
pub mod state;
pub mod stdio;
mod tier;

mod confine;

pub use confine::{Confinement, Grants, Limits};
pub use engine::EngineConfig;
pub use host::{LoadedPlugin, PluginHost, Tier};
pub use instance::{Emitted, PluginInstance, Ports};
pub use rows::Rows;
pub use state::BatchRep;
pub use weir_core::{BatchRef, Error, FailureKind, Result};
