//! JavaScript plugins: an ES module `plugin.js` exporting `transform`
//! (built with the helper `weir.js`), componentized by ComponentizeJS
//! (StarlingMonkey, a SpiderMonkey build for WASI) against weir's WIT.
//!
//! The plugin's files are staged beside the helper, so `plugin.js` imports
//! it as `./weir.js`; other relative imports work as usual. Packages from
//! npm must be bundled into the plugin's files first.
//!
//! `componentize-js` is, in order: `$WEIR_COMPONENTIZE_JS`, on `PATH`, or
//! where `scripts/setup` installs it (`.toolchains/js`; needs Node.js).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{componentize, install, run, stage, write, Built, Capture, Language, WIT};
use crate::{Error, Result};

const WEIR_JS: &str = include_str!("../../../../plugin-sdk/js/weir.js");

fn componentize_js() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    candidates.extend(std::env::var_os("WEIR_COMPONENTIZE_JS").map(PathBuf::from));
    candidates.push(PathBuf::from("componentize-js"));
    candidates.push(super::toolchains_dir().join("js/node_modules/.bin/componentize-js"));
    super::find_program(&candidates).ok_or_else(|| {
        Error::Build(
            "componentize-js not found for JavaScript plugins: run `scripts/setup` (installs \
             @bytecodealliance/componentize-js into .toolchains/js), or `npm install -g \
             @bytecodealliance/componentize-js`, or set WEIR_COMPONENTIZE_JS"
                .into(),
        )
    })
}

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

/// Builds the JavaScript plugin at `dir` into `out_dir/<name>.wasm`.
pub(super) fn build(
    dir: &Path,
    name: &str,
    out_dir: &Path,
    target_dir: &Path,
    capture: Capture,
) -> Result<Built> {
    let tool = componentize_js()?;
    let stage = stage(target_dir, Language::JavaScript, name)?;
    let src = stage.join("src");
    std::fs::create_dir_all(&src).map_err(|e| Error::io(&src, e))?;
    copy_sources(dir, &src)?;
    write(&src, "weir.js", WEIR_JS)?;
    let wit = stage.join("wit");
    std::fs::create_dir_all(&wit).map_err(|e| Error::io(&wit, e))?;
    write(&wit, "plugin.wit", WIT)?;
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
        .current_dir(&stage);
    run(
        cmd,
        &format!("componentize-js (JavaScript plugin {})", dir.display()),
        capture,
    )?;
    let bytes = std::fs::read(&component).map_err(|e| Error::io(&component, e))?;
    install(out_dir, name, &componentize(bytes)?)
}
