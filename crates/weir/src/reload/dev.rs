//! `weir dev`: rebuilding a local plugin (in any language `weir plugin
//! build` knows) when its sources change.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};
use weir_plugin_build::{self as build, Language};

/// Whether a change to `path` is a change to the crate at `dir`'s sources
/// (not its build output).
pub(super) fn is_source_of(dir: &Path, path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(dir) else {
        return false;
    };
    let generated = rest
        .components()
        .next()
        .is_some_and(|c| c.as_os_str() == "target");
    let source = Language::ALL.iter().any(|l| l.is_source(path));
    source && !generated
}

/// Rebuilds the crate at `dir` with `weir plugin build` and installs the
/// component at each of `outputs` (atomically: a watcher never sees half a
/// file). On a compile error nothing is installed and the error carries
/// the compiler's messages.
pub(super) fn rebuild(
    dir: &Path,
    outputs: &[PathBuf],
    target_dir: Option<&Path>,
) -> Result<Duration> {
    let started = Instant::now();
    let staging = dir.join("target").join("weir-dev");
    let built = build::build_quietly(dir, &staging, target_dir)?;
    for output in outputs {
        let name = output.file_name();
        let component = built
            .iter()
            .find(|b| b.path.file_name() == name)
            .or_else(|| (built.len() == 1).then(|| &built[0]))
            .ok_or_else(|| {
                Error::build(format!(
                    "{} builds {} components; none is named like {}",
                    dir.display(),
                    built.len(),
                    output.display()
                ))
            })?;
        let temp = output.with_extension("wasm.weir-dev.tmp");
        std::fs::copy(&component.path, &temp).map_err(|e| Error::io(&temp, e))?;
        std::fs::rename(&temp, output).map_err(|e| Error::io(output, e))?;
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_source_files_of_any_language_outside_target() {
        let dir = Path::new("/p/dedupe");
        assert!(is_source_of(dir, Path::new("/p/dedupe/src/lib.rs")));
        assert!(is_source_of(dir, Path::new("/p/dedupe/Cargo.toml")));
        assert!(is_source_of(dir, Path::new("/p/dedupe/plugin.py")));
        assert!(is_source_of(dir, Path::new("/p/dedupe/plugin.c")));
        assert!(is_source_of(dir, Path::new("/p/dedupe/plugin.js")));
        assert!(!is_source_of(dir, Path::new("/p/dedupe/target/x/lib.rs")));
        assert!(!is_source_of(dir, Path::new("/p/dedupe/src/lib.rs.swp")));
        assert!(!is_source_of(dir, Path::new("/p/other/src/lib.rs")));
    }
}
