//! The runtime's error type, one variant per phase of a pipeline's life.

use std::path::PathBuf;

/// Where a plugin failed: "on batch 3" (`process`), or "in finish".
fn at(batch: &str) -> String {
    if batch.bytes().all(|b| b.is_ascii_digit()) && !batch.is_empty() {
        format!("on batch {batch}")
    } else {
        format!("in {batch}")
    }
}

/// Everything that can go wrong, by phase.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest can't be read, parsed or validated. The message names
    /// the file, line and key, and says how to fix it.
    #[error("{0}")]
    Manifest(String),

    /// Schemas don't line up across the graph (found by `weir check`).
    #[error("schema check failed at {node:?}: {message}")]
    Schema {
        /// The node whose input or output doesn't fit.
        node: String,
        /// What doesn't fit.
        message: String,
    },

    /// A plugin file can't be loaded, compiled, or linked against the WIT.
    #[error("plugin {path}: {message}")]
    PluginLoad {
        /// The `.wasm` file.
        path: PathBuf,
        /// Why it was rejected.
        message: String,
    },

    /// A plugin failed (error result, trap, limit, or a malformed output).
    #[error("node {node:?}: plugin failed {}: {message}", at(batch))]
    Plugin {
        /// The transform node.
        node: String,
        /// Zero-based index of the input batch, or the phase (`init`,
        /// `describe`, `finish`, `snapshot`, `restore`, …).
        batch: String,
        /// How it failed.
        kind: FailureKind,
        /// The plugin's error or the trap.
        message: String,
    },

    /// A source failed to read its input.
    #[error("source {node:?}: {message}")]
    Source {
        /// The source node.
        node: String,
        /// What went wrong, naming the file.
        message: String,
    },

    /// A sink failed to write its output.
    #[error("sink {node:?}: {message}")]
    Sink {
        /// The sink node.
        node: String,
        /// What went wrong, naming the file.
        message: String,
    },

    /// A node's own work panicked (a bug in weir or in a library it uses,
    /// met on some input): the run stops, naming the node.
    #[error(
        "node {node:?} ({kind}) panicked: {message} — a bug in weir, not in your data or \
         plugin; please report it with the input that caused it"
    )]
    Panicked {
        /// The node.
        node: String,
        /// `sources`, `transforms` or `sinks`.
        kind: &'static str,
        /// The panic message.
        message: String,
    },

    /// A checkpoint can't be written, read or resumed from.
    #[error("checkpoint: {0}")]
    Checkpoint(String),

    /// Building a plugin from source failed.
    #[error("plugin build: {0}")]
    Build(String),

    /// Plain I/O outside any node.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// How a plugin call failed; decides whether the instance survives and
/// whether bisecting the batch can isolate bad rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The plugin returned an error; the instance is intact.
    Error,
    /// The plugin trapped (panic, unreachable, stack overflow); the
    /// instance is discarded.
    Trap,
    /// The call exceeded a limit (time or memory); the instance is
    /// discarded. A property of the batch as a whole, not of a row.
    Limit,
    /// The plugin returned a malformed batch; the instance is intact.
    Malformed,
    /// The node could not be set up (instantiate, init).
    Setup,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A source error for `node`.
    pub fn source(node: &str, message: impl std::fmt::Display) -> Self {
        Error::Source {
            node: node.to_string(),
            message: message.to_string(),
        }
    }

    /// A sink error for `node`.
    pub fn sink(node: &str, message: impl std::fmt::Display) -> Self {
        Error::Sink {
            node: node.to_string(),
            message: message.to_string(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
