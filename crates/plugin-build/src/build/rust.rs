//! Rust plugins: a crate (or a workspace of them) built with cargo for
//! `wasm32-wasip2`, or for a core-module target that weir componentizes.

use std::path::Path;

use super::{componentize, install, Built, Capture};
use crate::toolchain::{self, Toolchain};
use crate::{Error, Result};

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

/// The compiler's diagnostics in cargo's stderr, without its progress
/// lines ("Compiling …").
pub(super) fn compiler_errors(stderr: &str) -> String {
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
/// `wasm32-wasip2`) and installs one component per plugin crate in
/// `out_dir` as `<package>.wasm`.
pub(super) fn build(
    dir: &Path,
    out_dir: &Path,
    target_dir: &Path,
    target: Option<&str>,
    capture: Capture,
) -> Result<Vec<Built>> {
    let target = target.unwrap_or(toolchain::TARGET);
    let names = packages(dir)?;
    if names.is_empty() {
        return Err(Error::Build(format!("{}: no package found", dir.display())));
    }
    let toolchain = toolchain::detect(target).map_err(Error::Build)?;
    tracing::info!(dir = %dir.display(), ?toolchain, "building plugin");
    let mut cargo = toolchain.cargo_build(dir, target_dir, target);
    let (status, errors) = match capture {
        Capture::Quiet => {
            let out = cargo
                .output()
                .map_err(|e| Error::Build(format!("can't run cargo: {e}")))?;
            (
                out.status,
                compiler_errors(&String::from_utf8_lossy(&out.stderr)),
            )
        }
        Capture::Inherit => {
            let status = cargo
                .status()
                .map_err(|e| Error::Build(format!("can't run cargo: {e}")))?;
            (status, String::new())
        }
    };
    if !status.success() {
        return Err(Error::Build(format!(
            "cargo build failed for {} ({status}){errors}",
            dir.display()
        )));
    }
    let release = Toolchain::output_dir(target_dir, target);
    let mut built = Vec::new();
    for name in names {
        let artifact = release.join(format!("{}.wasm", name.replace('-', "_")));
        if !artifact.exists() {
            // Not a cdylib (e.g. a shared library crate in the workspace).
            continue;
        }
        let bytes = std::fs::read(&artifact).map_err(|e| Error::io(&artifact, e))?;
        built.push(install(out_dir, &name, &componentize(bytes)?)?);
    }
    if built.is_empty() {
        return Err(Error::Build(format!(
            "{}: no .wasm produced; is the crate type `cdylib`?",
            dir.display()
        )));
    }
    Ok(built)
}
