//! Names as a manifest writes them: file paths, and SQL identifiers.

use std::path::{Path, PathBuf};

/// Resolves `path` against `base` unless it is absolute.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// An SQL identifier as SQLite and PostgreSQL read it: `"name"`, with
/// quotes doubled.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}
