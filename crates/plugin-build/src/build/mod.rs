//! `weir plugin build DIR`: turns a plugin's sources, in any supported
//! language, into components implementing `weir:plugin/transform`.
//!
//! Each language's module drives its toolchain:
//! - [`rust`]: cargo for `wasm32-wasip2` (or a core-module target).
//! - [`c`]: bindings generated in-process from weir's WIT (wit-bindgen's C
//!   generator), the C helper, clang for `wasm32-wasi`, then componentized
//!   in-process with the WASI adapter.
//! - [`js`]: the JavaScript helper beside the plugin, ComponentizeJS.
//! - [`python`]: the Python helper on the path, componentize-py.
//!
//! weir's WIT and every helper are compiled into the binary, so a build
//! never depends on where weir's sources are.

mod c;
mod js;
mod python;
mod rust;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Language, Result};

/// `weir:plugin@0.2.0` (every Arrow type), as the C, Python and
/// JavaScript toolchains read it. (Rust plugins take it from the SDK.)
pub(crate) const WIT_V0_2: &str = include_str!("../../../../wit/0.2/plugin.wit");

/// A component written by [`build`].
#[derive(Debug, Clone)]
pub struct Built {
    /// The plugin's name: the crate's package name, or the directory's name.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
}

/// Whether a toolchain's output goes to the terminal or into the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capture {
    /// The tool prints as it goes (`weir plugin build`).
    Inherit,
    /// Captured; a failure's message carries the tool's errors (`weir dev`).
    Quiet,
}

/// Builds the plugin at `dir` (a Rust crate or workspace, or a C,
/// JavaScript or Python plugin) and writes one component per plugin to
/// `out_dir/<name>.wasm`. `target_dir` holds intermediate files (default
/// `<dir>/target`); `target` picks a Rust target other than
/// `wasm32-wasip2`.
pub fn build(
    dir: &Path,
    out_dir: &Path,
    target_dir: Option<&Path>,
    target: Option<&str>,
) -> Result<Vec<Built>> {
    build_with(dir, out_dir, target_dir, target, Capture::Inherit)
}

/// [`build`], with the toolchain's output captured: a failure's message
/// carries the compiler's errors (for `weir dev`, which reports them).
pub fn build_quietly(dir: &Path, out_dir: &Path, target_dir: Option<&Path>) -> Result<Vec<Built>> {
    build_with(dir, out_dir, target_dir, None, Capture::Quiet)
}

fn build_with(
    dir: &Path,
    out_dir: &Path,
    target_dir: Option<&Path>,
    target: Option<&str>,
    capture: Capture,
) -> Result<Vec<Built>> {
    let language = Language::detect(dir)?;
    // Tools run inside other directories: relative paths must not move.
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| Error::io(p, e));
    let dir = absolute(dir)?;
    let out_dir = absolute(out_dir)?;
    let target_dir = absolute(
        &target_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("target")),
    )?;
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    if language != Language::Rust {
        if let Some(target) = target {
            return Err(Error::Build(format!(
                "--target {target} applies to Rust plugins; {} is {}",
                dir.display(),
                language.name()
            )));
        }
    }
    let _span =
        tracing::info_span!("build", dir = %dir.display(), lang = language.name()).entered();
    let single = match language {
        Language::Rust => return rust::build(&dir, &out_dir, &target_dir, target, capture),
        Language::C => c::build,
        Language::JavaScript => js::build,
        Language::Python => python::build,
    };
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Build(format!("{}: can't name the plugin", dir.display())))?;
    let stage = stage(&target_dir, language, name)?;
    let component = single(&dir, name, &stage, capture)?;
    let bytes = std::fs::read(&component).map_err(|e| Error::io(&component, e))?;
    Ok(vec![install(&out_dir, name, &componentize(bytes)?)?])
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

/// Writes `component` to `out_dir/<name>.wasm` beside, then renames: a
/// watcher never reads half a file.
fn install(out_dir: &Path, name: &str, component: &[u8]) -> Result<Built> {
    let path = out_dir.join(format!("{name}.wasm"));
    let temp = out_dir.join(format!(".{name}.wasm.tmp"));
    std::fs::write(&temp, component).map_err(|e| Error::io(&temp, e))?;
    std::fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(Built {
        name: name.to_string(),
        path,
        bytes: component.len(),
    })
}

/// A clean directory for one build's intermediate files.
fn stage(target_dir: &Path, language: Language, name: &str) -> Result<PathBuf> {
    let stage = target_dir
        .join(format!("weir-{}", language.name()))
        .join(name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).map_err(|e| Error::io(&stage, e))?;
    }
    std::fs::create_dir_all(&stage).map_err(|e| Error::io(&stage, e))?;
    Ok(stage)
}

/// `stage/wit/plugin.wit`, for the tools that read WIT from files.
fn stage_wit(stage: &Path, contract: &str) -> Result<PathBuf> {
    let wit = stage.join("wit");
    std::fs::create_dir_all(&wit).map_err(|e| Error::io(&wit, e))?;
    write(&wit, "plugin.wit", contract)?;
    Ok(wit)
}

/// Writes `text` to `dir/name`.
fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Runs a toolchain command; on failure the error names `what` and, when
/// captured, carries the tool's output.
fn run(mut cmd: Command, what: &str, capture: Capture) -> Result<()> {
    tracing::debug!(?cmd, "running");
    let program = cmd.get_program().to_owned();
    let spawn_error =
        |e: std::io::Error| Error::Build(format!("can't run {what} ({program:?}): {e}"));
    let (status, output) = match capture {
        Capture::Inherit => {
            // weir's stdout lists what it built; the tool's chatter goes
            // with the logs.
            cmd.stdout(std::io::stderr());
            (cmd.status().map_err(spawn_error)?, String::new())
        }
        Capture::Quiet => {
            let out = cmd.output().map_err(spawn_error)?;
            let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            (out.status, text)
        }
    };
    if status.success() {
        return Ok(());
    }
    let output = output.trim();
    Err(Error::Build(if output.is_empty() {
        format!("{what} failed ({status})")
    } else {
        format!("{what} failed ({status}):\n{output}")
    }))
}

/// A guest tool: `$env`, else `program` on `PATH`, else `installed` (where
/// `scripts/setup` puts it); otherwise an error saying how to get it.
fn find_tool(env: &str, program: &str, installed: PathBuf, how: &str) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os(env)
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.extend([PathBuf::from(program), installed]);
    find_program(&candidates).ok_or_else(|| {
        Error::Build(format!(
            "{program} not found: run `scripts/setup` ({how}), or set {env}"
        ))
    })
}

/// The first of `candidates` found: an absolute path that exists, or a
/// program name on `PATH`.
fn find_program(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates.iter().find_map(|c| {
        if c.is_absolute() {
            return c.is_file().then(|| c.clone());
        }
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(c))
            .find(|p| p.is_file())
    })
}

/// Where `scripts/setup` installs the JavaScript and Python toolchains:
/// `$WEIR_TOOLCHAINS`, else `.toolchains` in the weir checkout this binary
/// was built from.
fn toolchains_dir() -> PathBuf {
    std::env::var_os("WEIR_TOOLCHAINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.toolchains"))
}
