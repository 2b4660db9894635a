//! Python plugins: a module `plugin.py` that registers its class with
//! `weir.export`, componentized by componentize-py (CPython for WASI,
//! pre-initialized with the plugin imported) against `weir:plugin@0.2.0`.
//!
//! The plugin directory is on the module path, so its other modules and
//! pure-Python packages vendored into it are importable; the helper `weir`
//! (with its Arrow codec `weir_arrow`) comes first.
//!
//! `componentize-py` is, in order: `$WEIR_COMPONENTIZE_PY`, on `PATH`, or
//! where `scripts/setup` installs it (`.toolchains/python`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{find_tool, run, stage_wit, toolchains_dir, write, Capture, WIT_V0_2};
use crate::Result;

const WEIR_PY: &str = include_str!("../../../../plugin-sdk/python/weir.py");
const WEIR_ARROW_PY: &str = include_str!("../../../../plugin-sdk/python/weir_arrow.py");

/// The module componentize-py wraps: it imports the plugin (which
/// registers its class) and exposes the export class.
const ENTRY: &str = "\
import plugin  # noqa: F401  registers the plugin's class with weir.export
from weir import Transform  # noqa: F401  the weir:plugin/transform export
";

/// Builds the Python plugin at `dir` in `stage`; returns the component.
pub(super) fn build(dir: &Path, name: &str, stage: &Path, capture: Capture) -> Result<PathBuf> {
    let tool = find_tool(
        "WEIR_COMPONENTIZE_PY",
        "componentize-py",
        toolchains_dir().join("python/bin/componentize-py"),
        "installs componentize-py into .toolchains/python",
    )?;
    let wit = stage_wit(stage, WIT_V0_2)?;
    write(stage, "weir.py", WEIR_PY)?;
    write(stage, "weir_arrow.py", WEIR_ARROW_PY)?;
    write(stage, "weir_main.py", ENTRY)?;
    let component = stage.join(format!("{name}.wasm"));
    let mut cmd = Command::new(&tool);
    cmd.arg("--wit-path")
        .arg(&wit)
        .args(["--world", "plugin", "componentize", "weir_main"])
        .arg("--python-path")
        .arg(stage)
        .arg("--python-path")
        .arg(dir)
        .arg("--output")
        .arg(&component)
        // A user's virtualenv would add its site-packages to the plugin.
        .env_remove("VIRTUAL_ENV")
        .current_dir(stage);
    run(
        cmd,
        &format!("componentize-py (Python plugin {})", dir.display()),
        capture,
    )?;
    Ok(component)
}
