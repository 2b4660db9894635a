//! C plugins: every `*.c` of the plugin directory, with the C helper
//! (`plugin-sdk/c/weir.{h,c}`) and bindings generated in-process from
//! weir's WIT by wit-bindgen's C generator, compiled by clang for
//! `wasm32-wasi` into a core module, then componentized with the WASI
//! adapter.
//!
//! clang is, in order: `$WEIR_CLANG`; `$WASI_SDK_PATH/bin/clang` (with the
//! SDK's sysroot); `clang`, `clang-19` … `clang-14` on `PATH` — Debian's
//! clang finds Debian's `wasi-libc` on its own (`scripts/setup` installs
//! clang-14, lld-14, libclang-rt-14-dev-wasm32 and wasi-libc).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, write, Capture, WIT_V0_2};
use crate::{Error, Result};

/// The helper, `plugin-sdk/c`: its header, then its sources.
const WEIR_H: &str = include_str!("../../../../plugin-sdk/c/weir.h");
const HELPER: [(&str, &str); 8] = [
    (
        "weir_internal.h",
        include_str!("../../../../plugin-sdk/c/weir_internal.h"),
    ),
    ("weir.c", include_str!("../../../../plugin-sdk/c/weir.c")),
    (
        "weir_config.c",
        include_str!("../../../../plugin-sdk/c/weir_config.c"),
    ),
    (
        "weir_batch.c",
        include_str!("../../../../plugin-sdk/c/weir_batch.c"),
    ),
    (
        "weir_output.c",
        include_str!("../../../../plugin-sdk/c/weir_output.c"),
    ),
    (
        "weir_describe.c",
        include_str!("../../../../plugin-sdk/c/weir_describe.c"),
    ),
    (
        "weir_arrow.c",
        include_str!("../../../../plugin-sdk/c/weir_arrow.c"),
    ),
    (
        "weir_arrow_write.c",
        include_str!("../../../../plugin-sdk/c/weir_arrow_write.c"),
    ),
];

/// The bindings of the `plugin` world: `plugin.h`, `plugin.c` and the
/// component-type object `plugin_component_type.o`, written to `stage`.
fn generate_bindings(stage: &Path) -> Result<()> {
    let fail = |e: anyhow::Error| Error::Build(format!("generating C bindings: {e:#}"));
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("plugin.wit", WIT_V0_2).map_err(fail)?;
    let world = resolve
        .select_world(&[package], Some("plugin"))
        .map_err(fail)?;
    let mut files = wit_bindgen_core::Files::default();
    let mut generator = wit_bindgen_c::Opts {
        // The helper drops the borrowed batch for the plugin.
        autodrop_borrows: wit_bindgen_c::Enabled::Yes,
        ..Default::default()
    }
    .build();
    generator
        .generate(&mut resolve, world, &mut files)
        .map_err(fail)?;
    for (name, bytes) in files.iter() {
        write(stage, name, bytes)?;
    }
    Ok(())
}

/// A clang that targets `wasm32-wasi`, with the flags it needs.
fn clang() -> Result<(PathBuf, Vec<String>)> {
    if let Some(clang) = std::env::var_os("WEIR_CLANG") {
        return Ok((PathBuf::from(clang), Vec::new()));
    }
    if let Some(sdk) = std::env::var_os("WASI_SDK_PATH").map(PathBuf::from) {
        let sysroot = sdk.join("share/wasi-sysroot");
        return Ok((
            sdk.join("bin/clang"),
            vec![format!("--sysroot={}", sysroot.display())],
        ));
    }
    let candidates: Vec<PathBuf> = std::iter::once("clang".to_string())
        .chain((14..=19).rev().map(|v| format!("clang-{v}")))
        .map(PathBuf::from)
        .collect();
    super::find_program(&candidates)
        .map(|clang| (clang, Vec::new()))
        .ok_or_else(|| {
            Error::Build(
                "no clang found for C plugins: run `scripts/setup` (installs Debian's clang-14, \
                 lld-14, libclang-rt-14-dev-wasm32 and wasi-libc), or set WASI_SDK_PATH or \
                 WEIR_CLANG"
                    .into(),
            )
        })
}

/// Builds the C plugin at `dir` in `stage`; returns the core module.
pub(super) fn build(dir: &Path, name: &str, stage: &Path, capture: Capture) -> Result<PathBuf> {
    generate_bindings(stage)?;
    write(stage, "weir.h", WEIR_H)?;
    let mut helper = Vec::new();
    for (name, text) in HELPER {
        let path = write(stage, name, text)?;
        if name.ends_with(".c") {
            helper.push(path);
        }
    }
    let (clang, flags) = clang()?;
    let module = stage.join(format!("{name}.core.wasm"));
    let mut cmd = Command::new(&clang);
    cmd.args(["--target=wasm32-wasi", "-O2", "-mexec-model=reactor"])
        .args(&flags)
        .args(["-Wall", "-Wextra", "-Wno-unused-parameter"])
        .arg("-I")
        .arg(stage)
        .arg("-I")
        .arg(dir)
        .args(crate::language::c_sources(dir)?)
        .args(helper)
        .arg(stage.join("plugin.c"))
        .arg(stage.join("plugin_component_type.o"))
        .arg("-o")
        .arg(&module)
        .current_dir(dir);
    run(
        cmd,
        &format!("{} (C plugin {})", clang.display(), dir.display()),
        capture,
    )?;
    Ok(module)
}
