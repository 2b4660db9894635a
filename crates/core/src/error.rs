//! The runtime's error type, one variant per phase of a pipeline's life.
//!
//! A failure met in a library (a Parquet decode error, an I/O error, a
//! PostgreSQL error, a wasmtime trap) stays typed: it is the variant's
//! `cause`, reachable through [`std::error::Error::source`] for code that
//! matches on it (downcast to `parquet::errors::ParquetError`,
//! `postgres::Error`, ...). Every message also reads whole on its own — a
//! node's dead letters, logs and run summary print one line — so the
//! cause's text is folded in after weir's context, and [`report`] prints a
//! chain without repeating a cause its parent already ends with.

use std::fmt::Display;
use std::path::PathBuf;

/// The library error under a node's failure, kept typed.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A message, and the library error it folds in, if any: the body of the
/// variants that are not about a node.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Detail {
    /// What went wrong, whole (the cause's text included).
    pub message: String,
    /// The library error, typed.
    #[source]
    pub cause: Option<Cause>,
}

impl Detail {
    /// A message of weir's own, with no library error under it.
    pub fn new(message: impl Into<String>) -> Self {
        Detail {
            message: message.into(),
            cause: None,
        }
    }

    /// `context: cause`, keeping `cause` typed.
    pub fn from(context: impl Display, cause: impl Into<Cause>) -> Self {
        let cause = cause.into();
        Detail {
            message: format!("{context}: {cause}"),
            cause: Some(cause),
        }
    }
}

/// An error and its causes on one line, `a: b: c`, for a person to read.
/// A cause whose text its parent already ends with (folded in, as weir's
/// own errors do) is not repeated.
pub fn report<'a>(
    chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut line = String::new();
    for e in chain {
        let text = e.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        // Below a weir error that folds its cause in, everything is said.
        let folds = match e.downcast_ref::<Error>() {
            Some(weir) => weir.folds_its_cause(),
            None => e.is::<Detail>(),
        };
        if folds {
            break;
        }
    }
    line
}

/// The chain under `e`, `e` first: the argument [`report`] takes.
pub fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

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
    #[error(transparent)]
    Manifest(Detail),

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
        /// The engine's error, if it was one.
        #[source]
        cause: Option<Cause>,
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
        /// The library error (reader, decoder, client), if it was one.
        #[source]
        cause: Option<Cause>,
    },

    /// A sink failed to write its output.
    #[error("sink {node:?}: {message}")]
    Sink {
        /// The sink node.
        node: String,
        /// What went wrong, naming the file.
        message: String,
        /// The library error (writer, client), if it was one.
        #[source]
        cause: Option<Cause>,
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
    Checkpoint(#[source] Detail),

    /// Setting up the machinery failed: the wasm engine, the host's
    /// interfaces, the file watcher.
    #[error("plugin build: {0}")]
    Build(#[source] Detail),

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
    /// Whether this error's text already says all that its causes do (the
    /// library error is folded into the message), so that [`report`] need
    /// not go below it. Only a plugin build's error, shown as its own,
    /// keeps causes of its own.
    pub fn folds_its_cause(&self) -> bool {
        !matches!(self, Error::PluginBuild(_))
    }

    /// A source error of weir's own for `node`.
    pub fn source(node: &str, message: impl Display) -> Self {
        Error::Source {
            node: node.to_string(),
            message: message.to_string(),
            cause: None,
        }
    }

    /// A source error for `node`: `context: cause`, the cause kept typed.
    pub fn source_from(node: &str, context: impl Display, cause: impl Into<Cause>) -> Self {
        let Detail { message, cause } = Detail::from(context, cause);
        Error::Source {
            node: node.to_string(),
            message,
            cause,
        }
    }

    /// A sink error of weir's own for `node`.
    pub fn sink(node: &str, message: impl Display) -> Self {
        Error::Sink {
            node: node.to_string(),
            message: message.to_string(),
            cause: None,
        }
    }

    /// A sink error for `node`: `context: cause`, the cause kept typed.
    pub fn sink_from(node: &str, context: impl Display, cause: impl Into<Cause>) -> Self {
        let Detail { message, cause } = Detail::from(context, cause);
        Error::Sink {
            node: node.to_string(),
            message,
            cause,
        }
    }

    /// A manifest error of weir's own (the message names file, line, key).
    pub fn manifest(message: impl Into<String>) -> Self {
        Error::Manifest(Detail::new(message))
    }

    /// A checkpoint error of weir's own.
    pub fn checkpoint(message: impl Into<String>) -> Self {
        Error::Checkpoint(Detail::new(message))
    }

    /// A checkpoint error: `context: cause`, the cause kept typed.
    pub fn checkpoint_from(context: impl Display, cause: impl Into<Cause>) -> Self {
        Error::Checkpoint(Detail::from(context, cause))
    }

    /// A set-up error of weir's own (engine, host interfaces, watcher).
    pub fn build(message: impl Into<String>) -> Self {
        Error::Build(Detail::new(message))
    }

    /// A set-up error: `context: cause`, the cause kept typed.
    pub fn build_from(context: impl Display, cause: impl Into<Cause>) -> Self {
        Error::Build(Detail::from(context, cause))
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

    #[test]
    fn a_library_error_is_folded_into_the_message_and_kept_typed_as_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Error::source_from("orders", "in/orders.csv", io);
        assert_eq!(
            e.to_string(),
            "source \"orders\": in/orders.csv: no such file"
        );
        let cause = std::error::Error::source(&e).expect("a source");
        let io = cause
            .downcast_ref::<std::io::Error>()
            .expect("the io::Error, typed");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_report_does_not_repeat_a_cause_its_parent_folded_in() {
        let e = Error::checkpoint_from("ckpt/3", std::io::Error::other("disk full"));
        // Error -> Detail -> io::Error: all three end in "disk full".
        assert_eq!(report(chain(&e)), "checkpoint: ckpt/3: disk full");
        let pg_like = Error::Sink {
            node: "load".into(),
            message: "orders: committing: duplicate key (Key (id)=(1) already exists.)".into(),
            cause: Some("db error: ERROR: duplicate key".into()),
        };
        assert_eq!(
            report(chain(&pg_like)),
            "sink \"load\": orders: committing: duplicate key (Key (id)=(1) already exists.)",
            "a cause the message renders its own way is not repeated either"
        );
        let bare = Error::checkpoint("the checkpoint thread stopped");
        assert_eq!(
            report(chain(&bare)),
            "checkpoint: the checkpoint thread stopped"
        );
    }

    #[test]
    fn a_report_joins_causes_that_are_not_folded_in() {
        #[derive(Debug, thiserror::Error)]
        #[error("loading the manifest")]
        struct Outer(#[source] Error);
        let e = Outer(Error::manifest("pipeline.toml:3: unknown key `foo`"));
        assert_eq!(
            report(chain(&e)),
            "loading the manifest: pipeline.toml:3: unknown key `foo`"
        );
    }
}
