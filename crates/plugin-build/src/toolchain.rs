//! The Rust guest toolchain: how to run `cargo build` for `wasm32-wasip2`.
//!
//! Two ways, tried in order:
//! 1. rustup's `wasm32-wasip2` target (a normal machine: `rustup target add
//!    wasm32-wasip2`).
//! 2. Debian's rustc (`rustc-web`, `cargo-web`, `rust-web-src`, `wasi-libc`)
//!    building `std` from source with `-Zbuild-std`, linked by rustup's
//!    `rust-lld` — for machines where rustup can't download targets.
//!
//! `scripts/setup` installs whichever is reachable. This file uses only
//! `std`: the test crate's build script includes it to build test plugins.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest target weir builds for; its output is already a component.
pub const TARGET: &str = "wasm32-wasip2";

/// A way to build Rust crates for [`TARGET`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's cargo with the target installed.
    Rustup,
    /// Debian's rustc with std built from source; `lld_dir` holds `rust-lld`.
    DebianBuildStd {
        /// Directory containing `rust-lld`.
        lld_dir: PathBuf,
    },
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host's `rustc` (rustup's, when present), ignoring cargo's `RUSTC`
/// override of a build script.
fn host_rustc() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    match home.map(|h| h.join("bin/rustc")) {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("rustc"),
    }
}

/// Finds a usable toolchain, or says how to get one. `WEIR_GUEST_TOOLCHAIN`
/// = `rustup` or `debian` forces one (to test both paths on one machine).
pub fn detect(target: &str) -> Result<Toolchain, String> {
    let forced = std::env::var("WEIR_GUEST_TOOLCHAIN").ok();
    let rustup_allowed = forced.as_deref() != Some("debian");
    let debian_allowed = forced.as_deref() != Some("rustup");
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]));
    if rustup_allowed && installed.is_some_and(|t| t.lines().any(|l| l.trim() == target)) {
        return Ok(Toolchain::Rustup);
    }
    let debian = debian_allowed
        && Path::new("/usr/bin/cargo").exists()
        && Path::new("/usr/bin/rustc").exists()
        && Path::new("/usr/lib/rustlib/src/rust/library").exists();
    if debian {
        let sysroot = output(Command::new(host_rustc()).args(["--print", "sysroot"]))
            .map(|s| PathBuf::from(s.trim()));
        let lld_dir = sysroot.map(|s| s.join("lib/rustlib/x86_64-unknown-linux-gnu/bin"));
        if let Some(lld_dir) = lld_dir.filter(|d| d.join("rust-lld").exists()) {
            return Ok(Toolchain::DebianBuildStd { lld_dir });
        }
    }
    Err(format!(
        "no Rust toolchain for {target}: run `scripts/setup` (it runs `rustup target add {target}`, \
         or installs Debian's rustc-web, cargo-web, rust-web-src and wasi-libc where rustup can't download)"
    ))
}

impl Toolchain {
    /// A `cargo build --release --target TARGET` command for the crate or
    /// workspace at `dir`, writing into `target_dir`. `target` is
    /// [`TARGET`] unless a core-module target is wanted
    /// (`wasm32-wasip1`, `wasm32-unknown-unknown`).
    pub fn cargo_build(&self, dir: &Path, target_dir: &Path, target: &str) -> Command {
        let mut cmd = Command::new(match self {
            Toolchain::Rustup => "cargo",
            Toolchain::DebianBuildStd { .. } => "/usr/bin/cargo",
        });
        // A build script's cargo sets these for the host build; the guest
        // build must not inherit them.
        for var in [
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_MAKEFLAGS",
        ] {
            cmd.env_remove(var);
        }
        // wasm SIMD: wasmtime compiles it to the host's vector units, and
        // LLVM vectorizes plugins' column loops with it.
        let mut rustflags = String::from("-C target-feature=+simd128");
        cmd.args(["build", "--release", "--target", target])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(dir);
        if let Toolchain::DebianBuildStd { lld_dir } = self {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![lld_dir.clone(), PathBuf::from("/usr/bin")];
            paths.extend(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(paths) {
                cmd.env("PATH", joined);
            }
            cmd.env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .arg("-Zbuild-std=std,panic_abort");
            rustflags.push_str(" -L /usr/lib/wasm32-wasi");
        }
        cmd.env("RUSTFLAGS", rustflags);
        c_compiler(&mut cmd, target);
        cmd
    }

    /// Where `cargo_build` leaves the `.wasm` files.
    pub fn output_dir(target_dir: &Path, target: &str) -> PathBuf {
        target_dir.join(target).join("release")
    }
}

/// C code in a Rust plugin (a `-sys` crate: the `sql` plugin's zstd) is
/// compiled by Debian's clang against Debian's wasi-libc, both installed
/// by `scripts/setup`; a user's own `CC_<target>` wins.
fn c_compiler(cmd: &mut Command, target: &str) {
    let var = target.replace('-', "_");
    let clang = Path::new("/usr/bin/clang-14");
    // wasm32-unknown-unknown has no libc to compile C against.
    let no_libc = target == "wasm32-unknown-unknown";
    if no_libc || std::env::var_os(format!("CC_{var}")).is_some() || !clang.exists() {
        return;
    }
    // Debian's clang finds wasi-libc's headers and libraries under /usr.
    cmd.env(format!("CC_{var}"), clang)
        .env(
            format!("CFLAGS_{var}"),
            "--target=wasm32-wasi --sysroot=/usr",
        )
        .env(format!("AR_{var}"), "/usr/bin/llvm-ar-14");
}
