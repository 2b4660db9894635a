//! Builds every plugin from source (wasmtime's test-programs pattern): the
//! shipped ones in `plugins/` and the test-only ones in `tests/plugins/`,
//! then writes a path constant per plugin into `$OUT_DIR/plugins.rs`.

use std::path::{Path, PathBuf};

use weir_plugin_build::toolchain;

fn build(workspace: &Path, target_dir: &Path) -> Vec<(String, PathBuf)> {
    let toolchain = toolchain::detect(toolchain::TARGET).unwrap_or_else(|e| panic!("{e}"));
    let output = toolchain
        .cargo_build(workspace, target_dir, toolchain::TARGET)
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
    // The sql plugin (DataFusion inside) is built only with WEIR_TEST_SQL=1:
    // a cold build is ~57 CPU-minutes and its first compile by wasmtime
    // minutes more, which CI's budget can't take yet (docs/sql.md). Its
    // tests are ignored without it.
    let with_sql = std::env::var_os("WEIR_TEST_SQL").is_some_and(|v| v == "1");
    println!("cargo:rerun-if-env-changed=WEIR_TEST_SQL");
    let mut workspaces = vec!["plugins", "tests/plugins"];
    if with_sql {
        workspaces.insert(1, "plugins/sql");
    } else {
        consts
            .push_str("/// Not built (WEIR_TEST_SQL=1 builds it).\npub const SQL: &str = \"\";\n");
    }
    for workspace in workspaces {
        for (name, path) in build(&root.join(workspace), &target_dir) {
            consts.push_str(&format!(
                "/// `{name}`, built from `{workspace}/{name}`.\npub const {}: &str = {:?};\n",
                name.to_uppercase().replace('-', "_"),
                path.display().to_string()
            ));
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("plugins.rs"), consts).expect("writing plugins.rs");
}
