//! The bottom of weir: what every other crate shares and nothing in it
//! knows about plugins, files or graphs.
//!
//! - [`error`]: the runtime's error, one variant per phase of a
//!   pipeline's life, and [`BatchRef`], where in a plugin's life a call
//!   failed.
//! - [`checkpoint`]: aligned barriers, checkpoints on disk, exactly-once
//!   restarts — the store and the coordinator, no knowledge of nodes.
//! - [`contain`]: calls into readers of other tools' bytes, with a panic
//!   turned into an error.
//! - [`defaults`] and [`paths`]: defaults in one place; names as a
//!   manifest writes them.

pub mod checkpoint;
pub mod contain;
pub mod defaults;
pub mod error;
pub mod paths;

pub use error::{BatchRef, Cause, Detail, Error, FailureKind, Result};
