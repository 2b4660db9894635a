//! Hot reload: plugins and the manifest swap live without losing,
//! repeating or reordering a row.
//!
//! The [`Controller`] watches every plugin file the manifest names, the
//! manifest itself, and in `weir dev` the source crates of local plugins.
//!
//! - **A plugin file changes**: the controller compiles the new component,
//!   instantiates it with the node's limits, runs `init` with the node's
//!   config and checks `describe` still gives the same output schema — all
//!   off the data path, while the node keeps processing on the old version.
//!   The ready successor waits in the node's [`Successor`] slot; the node
//!   takes it at its next batch boundary (`exec::handover::take_over`): the old version's
//!   `snapshot` is handed to the new one's `restore`, and the new version
//!   processes that batch. If it fails on that first batch, the batch is
//!   re-run on the old version and the new one is dropped. With
//!   `--canary N` the new version first runs in shadow on N batches beside
//!   the old one (`exec::handover::shadow`) and is promoted only if it never failed.
//! - **Tiers**: a version compiled for the first time starts on Winch's
//!   baseline code, ~5× quicker to build than Cranelift's, so it takes over
//!   within tens of milliseconds on a busy machine. The [`optimize`]
//!   thread, at the lowest OS priority, builds the optimized code, which
//!   replaces the baseline at a later batch boundary the same way (state
//!   handed over, through the canary if one is set). A version compiled
//!   before comes optimized from the cache at once.
//! - **The manifest changes**: the new graph is diffed against the running
//!   one ([`plan`]); only changed nodes are rebuilt, off the data path; the
//!   executor pauses at batch boundaries, applies the plan and resumes
//!   (see [`crate::exec`]). Sources keep their position.

mod dev;
mod node;
mod optimize;
mod plan;
mod watch;

pub use crate::exec::{Diff, Plan, Ready, Recent, Reporter, Successor};
pub use plan::plan;
pub use watch::{Controller, Options};
