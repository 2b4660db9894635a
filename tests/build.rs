//! Builds every plugin from source (wasmtime's test-programs pattern): the
//! shipped ones in `plugins/` and the test-only ones in `tests/plugins/`,
//! then writes a path constant per plugin into `$OUT_DIR/plugins.rs`.

use std::path::{Path, PathBuf};

use weir_plugin_build::toolchain;

/// The constant naming plugin `name`'s component.
fn constant(name: &str, workspace: &str, path: &Path) -> String {
    format!(
        "/// `{name}`, built from `{workspace}/{name}`.\npub const {}: &str = {:?};\n",
        name.to_uppercase().replace('-', "_"),
        path.display().to_string()
    )
}

/// Builds every plugin of `workspace` (`env`: profile overrides).
fn build(workspace: &Path, target_dir: &Path, env: &[(&str, &str)]) -> Vec<(String, PathBuf)> {
    let toolchain = toolchain::detect(toolchain::TARGET).unwrap_or_else(|e| panic!("{e}"));
    let output = toolchain
        .cargo_build(workspace, target_dir, toolchain::TARGET)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running cargo for {}: {e}", workspace.display()));
    if !output.status.success() {
        panic!(
            "building plugins in {} failed:\n{}",
            workspace.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = std::fs::read_to_string(workspace.join("Cargo.toml")).expect("workspace manifest");
    // A workspace's members, or a one-package workspace's own name (the
    // sql plugin is one: DataFusion brings its own Arrow and profile).
    let names = text
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .or_else(|| text.lines().find(|l| l.trim_start().starts_with("name")))
        .expect("a members or name line");
    names
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|name| {
            let file = toolchain::Toolchain::output_dir(target_dir, toolchain::TARGET)
                .join(format!("{}.wasm", name.replace('-', "_")));
            assert!(file.exists(), "{} was not built", file.display());
            (name.to_string(), file)
        })
        .collect()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().expect("repository root");
    for dir in [
        "plugins",
        "tests/plugins",
        "plugin-sdk",
        "wit",
        "crates/wit-arrow",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=WEIR_GUEST_TOOLCHAIN");
    // One guest target dir for everything: std (when built from source)
    // and the SDK compile once.
    let target_dir = root.join("target/guest");
    let mut consts = String::new();
    for workspace in ["plugins", "tests/plugins"] {
        for (name, path) in build(&root.join(workspace), &target_dir, &[]) {
            consts.push_str(&constant(&name, workspace, &path));
        }
    }
    // The sql plugin (DataFusion inside) at opt-level 0: ~10 CPU-minutes
    // cold where the shipped profile (opt-level 3) takes ~57, which CI's
    // budget can't take. Its tests check results, not speed. A target dir
    // of its own keeps `weir plugin build plugins/sql` (the benchmarks')
    // optimized build from being rebuilt back and forth.
    let sql_profile = [
        ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0"),
        ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256"),
    ];
    let sql_dir = root.join("target/guest-sql-test");
    for (name, path) in build(&root.join("plugins/sql"), &sql_dir, &sql_profile) {
        consts.push_str(&constant(&name, "plugins", &path));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("plugins.rs"), consts).expect("writing plugins.rs");
}
