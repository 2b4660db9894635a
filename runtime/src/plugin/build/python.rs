//! Python plugins: a module `plugin.py` that registers its class with
//! `weir.export`, componentized by componentize-py (CPython for WASI,
//! pre-initialized with the plugin imported) against weir's WIT.
//!
//! The plugin directory is on the module path, so its other modules and
//! pure-Python packages vendored into it are importable; the helper `weir`
//! comes first.
//!
//! `componentize-py` is, in order: `$WEIR_COMPONENTIZE_PY`, on `PATH`, or
//! where `scripts/setup` installs it (`.toolchains/python`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{componentize, install, run, stage, write, Built, Capture, Language, WIT};
use crate::{Error, Result};

const WEIR_PY: &str = include_str!("../../../../plugin-sdk/python/weir.py");

/// The module componentize-py wraps: it imports the plugin (which
/// registers its class) and exposes the export class.
const ENTRY: &str = "\
import plugin  # noqa: F401  registers the plugin's class with weir.export
from weir import Transform  # noqa: F401  the weir:plugin/transform export
";

fn componentize_py() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    candidates.extend(std::env::var_os("WEIR_COMPONENTIZE_PY").map(PathBuf::from));
    candidates.push(PathBuf::from("componentize-py"));
    candidates.push(super::toolchains_dir().join("python/bin/componentize-py"));
    super::find_program(&candidates).ok_or_else(|| {
        Error::Build(
            "componentize-py not found for Python plugins: run `scripts/setup` (installs it \
             into .toolchains/python), or `pip install componentize-py`, or set \
             WEIR_COMPONENTIZE_PY"
                .into(),
        )
    })
}

/// Builds the Python plugin at `dir` into `out_dir/<name>.wasm`.
pub(super) fn build(
    dir: &Path,
    name: &str,
    out_dir: &Path,
    target_dir: &Path,
    capture: Capture,
) -> Result<Built> {
    let tool = componentize_py()?;
    let stage = stage(target_dir, Language::Python, name)?;
    let wit = stage.join("wit");
    std::fs::create_dir_all(&wit).map_err(|e| Error::io(&wit, e))?;
    write(&wit, "plugin.wit", WIT)?;
    write(&stage, "weir.py", WEIR_PY)?;
    write(&stage, "weir_main.py", ENTRY)?;
    let component = stage.join(format!("{name}.wasm"));
    let mut cmd = Command::new(&tool);
    cmd.arg("--wit-path")
        .arg(&wit)
        .args(["--world", "plugin", "componentize", "weir_main"])
        .arg("--python-path")
        .arg(&stage)
        .arg("--python-path")
        .arg(dir)
        .arg("--output")
        .arg(&component)
        // A user's virtualenv would add its site-packages to the plugin.
        .env_remove("VIRTUAL_ENV")
        .current_dir(&stage);
    run(
        cmd,
        &format!("componentize-py (Python plugin {})", dir.display()),
        capture,
    )?;
    let bytes = std::fs::read(&component).map_err(|e| Error::io(&component, e))?;
    install(out_dir, name, &componentize(bytes)?)
}
