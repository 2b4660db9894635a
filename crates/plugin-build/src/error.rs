//! What can go wrong building or scaffolding a plugin.

use std::path::{Path, PathBuf};

/// A failed `weir plugin build` or `weir plugin new`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No plugin found, a toolchain missing, or a toolchain failed (its
    /// output included when it was captured).
    #[error("plugin build: {0}")]
    Build(String),
    /// `weir plugin new` refused: a bad name, an existing folder, no SDK.
    #[error("{0}")]
    Scaffold(String),
    /// A file or folder can't be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}
