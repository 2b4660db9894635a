//! JavaScript plugins: an ES module `plugin.js` exporting `transform`
//! (built with the helper `weir.js`), componentized by ComponentizeJS
//! (StarlingMonkey, a SpiderMonkey build for WASI) against `weir:plugin@0.2.0`.
//!
//! The plugin's files are staged beside the helper, so `plugin.js` imports
//! it as `./weir.js` (which imports its Arrow codec `./weir_arrow.js`); other relative imports work as usual. Packages from
//! npm must be bundled into the plugin's files first.
//!
//! `componentize-js` is, in order: `$WEIR_COMPONENTIZE_JS`, on `PATH`, or
//! where `scripts/setup` installs it (`.toolchains/js`; needs Node.js).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{find_tool, run, stage_wit, toolchains_dir, write, Capture, WIT_V0_2};
use crate::{Error, Result};

const WEIR_JS: &str = include_str!("../../../../plugin-sdk/js/weir.js");
const WEIR_ARROW_JS: &str = include_str!("../../../../plugin-sdk/js/weir_arrow.js");

/// Copies the plugin's files into `to`, skipping build output and
/// dependencies (`target`, `node_modules`, hidden entries).
fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with('.') || text == "target" || text == "node_modules" {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        if source.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
            copy_sources(&source, &dest)?;
        } else {
            std::fs::copy(&source, &dest).map_err(|e| Error::io(&dest, e))?;
        }
    }
    Ok(())
}

/// Builds the JavaScript plugin at `dir` in `stage`; returns the component.
pub(super) fn build(dir: &Path, name: &str, stage: &Path, capture: Capture) -> Result<PathBuf> {
    let tool = find_tool(
        "WEIR_COMPONENTIZE_JS",
        "componentize-js",
        toolchains_dir().join("js/node_modules/.bin/componentize-js"),
        "installs @bytecodealliance/componentize-js into .toolchains/js; needs Node.js",
    )?;
    let src = stage.join("src");
    std::fs::create_dir_all(&src).map_err(|e| Error::io(&src, e))?;
    copy_sources(dir, &src)?;
    write(&src, "weir.js", WEIR_JS)?;
    write(&src, "weir_arrow.js", WEIR_ARROW_JS)?;
    let wit = stage_wit(stage, WIT_V0_2)?;
    let component = stage.join(format!("{name}.wasm"));
    let mut cmd = Command::new(&tool);
    cmd.arg(src.join("plugin.js"))
        .arg("--wit")
        .arg(&wit)
        .args(["--world-name", "plugin"])
        // Plugins get no network: leave out the HTTP client and server.
        .args(["--disable", "http", "fetch-event"])
        .arg("--out")
        .arg(&component)
        .current_dir(stage);
    run(
        cmd,
        &format!("componentize-js (JavaScript plugin {})", dir.display()),
        capture,
    )?;
    Ok(component)
}
