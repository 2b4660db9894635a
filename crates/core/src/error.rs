//! The runtime's error type, one variant per phase of a pipeline's life.

use std::path::PathBuf;

/// Where in a plugin's life a call failed: a phase, or the input batch
/// `process` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchRef {
    /// Making the instance (before `init`).
    Instantiate,
    /// `init`.
    Init,
    /// `describe`.
    Describe,
    /// `process` on the zero-based input batch.
    Batch(u64),
    /// `process` on a batch no longer known (a parallel instance's thread
    /// stopped).
    Process,
    /// `finish`.
    Finish,
    /// `snapshot`.
    Snapshot,
    /// `restore`.
    Restore,
}

impl BatchRef {
    /// The short label: the batch index, or the phase's name.
    pub fn label(&self) -> String {
        match self {
            BatchRef::Instantiate => "instantiate".into(),
            BatchRef::Init => "init".into(),
            BatchRef::Describe => "describe".into(),
            BatchRef::Batch(n) => n.to_string(),
            BatchRef::Process => "process".into(),
            BatchRef::Finish => "finish".into(),
            BatchRef::Snapshot => "snapshot".into(),
            BatchRef::Restore => "restore".into(),
        }
    }
}

/// "on batch 3", or "in init".
impl std::fmt::Display for BatchRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchRef::Batch(n) => write!(f, "on batch {n}"),
            other => write!(f, "in {}", other.label()),
        }
    }
}

/// Compares with the short label: `batch == "0"`, `batch == "init"`.
impl PartialEq<str> for BatchRef {
    fn eq(&self, label: &str) -> bool {
        self.label() == label
    }
}

impl PartialEq<&str> for BatchRef {
    fn eq(&self, label: &&str) -> bool {
        self.label() == *label
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
    #[error("node {node:?}: plugin failed {batch}: {message}")]
    Plugin {
        /// The transform node.
        node: String,
        /// The input batch, or the phase.
        batch: BatchRef,
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

    /// Setting up the machinery failed: the wasm engine, the host's
    /// interfaces, the file watcher.
    #[error("plugin build: {0}")]
    Build(String),

    /// Building a plugin from source failed (`weir dev`, `weir plugin
    /// build`): the toolchain's own error, with its output.
    #[error(transparent)]
    PluginBuild(#[from] weir_plugin_build::Error),

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_failure_names_the_batch_or_the_phase() {
        let on = |batch| Error::Plugin {
            node: "clean".into(),
            batch,
            kind: FailureKind::Error,
            message: "bad".into(),
        };
        assert_eq!(
            on(BatchRef::Batch(3)).to_string(),
            "node \"clean\": plugin failed on batch 3: bad"
        );
        assert_eq!(
            on(BatchRef::Finish).to_string(),
            "node \"clean\": plugin failed in finish: bad"
        );
        assert!(BatchRef::Batch(0) == "0" && BatchRef::Restore == "restore");
    }
}
