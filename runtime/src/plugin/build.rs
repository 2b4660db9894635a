//! `weir plugin build DIR`: builds a Rust plugin crate (or a workspace of
//! them) into components, componentizing core modules in-process.

use std::path::{Path, PathBuf};

use super::toolchain::{self, Toolchain};
use crate::{Error, Result};

/// A component written by [`build`].
#[derive(Debug, Clone)]
pub struct Built {
    /// The crate's package name.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
}

/// Package names of the cdylib crates at `dir` (a crate or a workspace).
fn packages(dir: &Path) -> Result<Vec<String>> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        Error::Build(format!(
            "{}: {e} (expected a Rust plugin crate)",
            manifest.display()
        ))
    })?;
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| Error::Build(format!("{}: {}", manifest.display(), e.message())))?;
    let mut names = Vec::new();
    if let Some(name) = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
    {
        names.push(name.to_string());
    }
    let members = doc
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    for member in members.iter().filter_map(|m| m.as_str()) {
        for path in glob::glob(&dir.join(member).to_string_lossy())
            .map_err(|e| Error::Build(e.to_string()))?
            .flatten()
        {
            names.extend(packages(&path)?);
        }
    }
    Ok(names)
}

/// Turns a core wasm module into a component (adding the WASI preview 1
/// adapter when the module imports `wasi_snapshot_preview1`); components
/// pass through unchanged.
pub fn componentize(bytes: Vec<u8>) -> Result<Vec<u8>> {
    if wasmparser::Parser::is_component(&bytes) {
        return Ok(bytes);
    }
    if !wasmparser::Parser::is_core_wasm(&bytes) {
        return Err(Error::Build("not a WebAssembly module or component".into()));
    }
    let imports_wasi_p1 = wasmparser::Parser::new(0)
        .parse_all(&bytes)
        .filter_map(|p| match p {
            Ok(wasmparser::Payload::ImportSection(s)) => Some(s),
            _ => None,
        })
        .flat_map(|s| s.into_imports())
        .any(|i| i.is_ok_and(|i| i.module == "wasi_snapshot_preview1"));
    let fail = |e: anyhow::Error| Error::Build(format!("componentizing: {e:#}"));
    let mut encoder = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .map_err(fail)?
        .validate(true);
    if imports_wasi_p1 {
        encoder = encoder
            .adapter(
                "wasi_snapshot_preview1",
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
            .map_err(fail)?;
    }
    encoder.encode().map_err(fail)
}

/// The compiler's diagnostics in cargo's stderr, without its progress
/// lines ("Compiling …").
fn compiler_errors(stderr: &str) -> String {
    let diagnostics: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("Compiling")
                || t.starts_with("Finished")
                || t.starts_with("Updating")
                || t.starts_with("Locking")
                || t.starts_with("Blocking"))
        })
        .collect();
    if diagnostics.is_empty() {
        String::new()
    } else {
        format!(":\n{}", diagnostics.join("\n"))
    }
}

/// Builds the crate or workspace at `dir` for `target` (default
/// `wasm32-wasip2`) and writes one component per plugin crate to
/// `out_dir/<package>.wasm`, componentizing core modules.
pub fn build(
    dir: &Path,
    out_dir: &Path,
    target_dir: Option<&Path>,
    target: Option<&str>,
) -> Result<Vec<Built>> {
    build_with(dir, out_dir, target_dir, target, false)
}

/// [`build`], with cargo's output captured: a failure's message carries
/// the compiler's errors (for `weir dev`, which reports them itself).
pub fn build_quietly(dir: &Path, out_dir: &Path, target_dir: Option<&Path>) -> Result<Vec<Built>> {
    build_with(dir, out_dir, target_dir, None, true)
}

fn build_with(
    dir: &Path,
    out_dir: &Path,
    target_dir: Option<&Path>,
    target: Option<&str>,
    capture: bool,
) -> Result<Vec<Built>> {
    let target = target.unwrap_or(toolchain::TARGET);
    let names = packages(dir)?;
    if names.is_empty() {
        return Err(Error::Build(format!("{}: no package found", dir.display())));
    }
    let toolchain = toolchain::detect(target).map_err(Error::Build)?;
    // cargo runs inside `dir`: a relative target dir must not move with it.
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| Error::io(p, e));
    let target_dir = absolute(
        &target_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("target")),
    )?;
    tracing::info!(dir = %dir.display(), ?toolchain, "building plugin");
    let mut cargo = toolchain.cargo_build(dir, &target_dir, target);
    let (status, errors) = if capture {
        let out = cargo
            .output()
            .map_err(|e| Error::Build(format!("can't run cargo: {e}")))?;
        (
            out.status,
            compiler_errors(&String::from_utf8_lossy(&out.stderr)),
        )
    } else {
        let status = cargo
            .status()
            .map_err(|e| Error::Build(format!("can't run cargo: {e}")))?;
        (status, String::new())
    };
    if !status.success() {
        return Err(Error::Build(format!(
            "cargo build failed for {} ({status}){errors}",
            dir.display()
        )));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let release = Toolchain::output_dir(&target_dir, target);
    let mut built = Vec::new();
    for name in names {
        let artifact = release.join(format!("{}.wasm", name.replace('-', "_")));
        if !artifact.exists() {
            // Not a cdylib (e.g. a shared library crate in the workspace).
            continue;
        }
        let bytes = std::fs::read(&artifact).map_err(|e| Error::io(&artifact, e))?;
        let component = componentize(bytes)?;
        let path = out_dir.join(format!("{name}.wasm"));
        // Write beside, then rename: a watcher never reads half a file.
        let temp = out_dir.join(format!(".{name}.wasm.tmp"));
        std::fs::write(&temp, &component).map_err(|e| Error::io(&temp, e))?;
        std::fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
        built.push(Built {
            name,
            path,
            bytes: component.len(),
        });
    }
    if built.is_empty() {
        return Err(Error::Build(format!(
            "{}: no .wasm produced; is the crate type `cdylib`?",
            dir.display()
        )));
    }
    Ok(built)
}
