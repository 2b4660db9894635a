//! Loading plugins: read, hash, compile (once per content hash), and check
//! against the WIT world before any data moves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use super::cache::DiskCache;
use super::code_cache::{CodeCache, CODE_CACHE_BYTES};
use super::engine::{background_engine, baseline_engine, new_engine, EngineConfig, EpochTicker};
use super::instance::PluginInstance;
use super::state::HostState;
use super::{Confinement, Grants, Limits};
use crate::bindings::{v0_2, Plugin, PluginPre};
use crate::{Error, Result};

/// Interfaces a plugin may import. WASI filesystem and environment are
/// linked but empty unless the node's `grants` open them. `wasi:sockets`
/// is linked because language runtimes import it whether or not a plugin
/// uses it (CPython's does), but every call is denied by the store's
/// context. Anything else is refused when the component is loaded, naming
/// the interface, so `weir check` catches it before data moves.
const GRANTABLE: &[&str] = &[
    "weir:plugin/",
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// A compiled, linked plugin, ready to instantiate any number of times.
pub struct LoadedPlugin {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// BLAKE3 of the file: the version's identity in logs and caches.
    pub hash: blake3::Hash,
    /// How its code was compiled.
    pub tier: Tier,
    /// The engine it was compiled for, which its instances run in.
    pub(crate) engine: Engine,
    pub(crate) pre: Pre,
}

/// How a component's code was compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Cranelift, optimizing: what every version runs in the end.
    Optimized,
    /// Winch, quick to compile and slower to run: a hot-reloaded version
    /// runs on it until its optimized build is ready
    /// ([`PluginHost::load_quick`], [`PluginHost::optimize`]).
    Baseline,
}

/// A component linked against the contract version it was built for.
pub(crate) enum Pre {
    /// `weir:plugin@0.1.0`: the first contract (a subset of Arrow's types).
    V0_1(PluginPre<HostState>),
    /// `weir:plugin@0.2.0`: every Arrow type, ports, the state store.
    V0_2(v0_2::PluginPre<HostState>),
}

/// The contract versions a component may export, newest first.
pub const CONTRACTS: &[&str] = &["0.2.0", "0.1.0"];

impl LoadedPlugin {
    /// The `weir:plugin` version the component was built against.
    pub fn contract(&self) -> &'static str {
        match self.pre {
            Pre::V0_1(_) => "0.1.0",
            Pre::V0_2(_) => "0.2.0",
        }
    }

    /// A short version id for logs (first 12 hex digits of the hash).
    pub fn version(&self) -> String {
        self.hash.to_hex()[..12].to_string()
    }
}

/// The engine, linker and compiled-component cache shared by every node.
/// Cloning is cheap and shares all of it (the reload controller holds a
/// clone).
#[derive(Clone)]
pub struct PluginHost {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    /// The quick tier for hot reload, and the engine that builds the
    /// optimized code behind it (`None`: every version waits for
    /// Cranelift).
    pub(crate) tiers: Option<Arc<Tiers>>,
    pub(crate) cache: Arc<Mutex<HashMap<blake3::Hash, Arc<LoadedPlugin>>>>,
    /// One gate per component being compiled: a second load of the same
    /// bytes waits for the first compile instead of repeating it (the sql
    /// plugin compiles for minutes; two test threads did it twice).
    compiling: Arc<Mutex<HashMap<blake3::Hash, Arc<Mutex<()>>>>>,
    pub(crate) disk: Option<DiskCache>,
    _ticker: Arc<EpochTicker>,
}

/// The engines of tiered compilation (see [`Tier`]).
pub(crate) struct Tiers {
    pub(crate) baseline: Engine,
    pub(crate) baseline_linker: Linker<HostState>,
    pub(crate) background: Engine,
    /// The background engine's incremental cache.
    pub(crate) code: Arc<CodeCache>,
    /// The function bodies `code` holds the code of.
    pub(crate) known: crate::known::KnownBodies,
}

pub(crate) fn wasm_error(e: wasmtime::Error) -> String {
    format!("{e:?}")
}

/// What `path` is instead of a component, and how to get one from it: a
/// plugin's folder or one of its source files is built with `weir plugin
/// build`.
fn not_a_component(path: &Path) -> String {
    use weir_plugin_build::Language;
    let build_hint = |dir: &Path| {
        format!(
            "build it with `weir plugin build {}` and set `plugin` to the .wasm it writes \
             (or add `build = \"{}\"` and run `weir dev`, which rebuilds it on every save)",
            dir.display(),
            dir.display()
        )
    };
    if path.is_dir() {
        return match Language::detect(path) {
            Ok(lang) => format!(
                "a folder holding a {} plugin's sources, not a component; {}",
                lang.name(),
                build_hint(path)
            ),
            Err(_) => "a folder, not a WebAssembly component; `plugin` names a .wasm file".into(),
        };
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let language = match ext {
        "rs" | "toml" => Some("Rust"),
        "c" | "h" => Some("C"),
        "js" | "mjs" => Some("JavaScript"),
        "py" => Some("Python"),
        _ => None,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| {
            if d.ends_with("src") {
                d.parent().unwrap_or(d)
            } else {
                d
            }
        })
        .unwrap_or(Path::new("."));
    match language {
        Some(language) => format!(
            "a {language} source file, not a WebAssembly component; {}",
            build_hint(dir)
        ),
        None => "not a WebAssembly component (a .wasm file `weir plugin build` writes)".into(),
    }
}

impl PluginHost {
    /// Creates the engine and links the host interfaces: `weir:plugin/log`,
    /// the `batch` resource, and WASI preview 2 (every capability denied
    /// by the per-store context).
    pub fn new(config: &EngineConfig) -> Result<PluginHost> {
        let engine = new_engine(config)?;
        let linker = link(&engine)?;
        let tiers = match baseline_engine(config) {
            Some(baseline) => {
                let code = Arc::new(CodeCache::new(CODE_CACHE_BYTES));
                Some(Arc::new(Tiers {
                    baseline_linker: link(&baseline)?,
                    baseline,
                    background: background_engine(config, code.clone())?,
                    code,
                    known: Default::default(),
                }))
            }
            None => None,
        };
        let ticker = match &tiers {
            Some(t) => EpochTicker::start(&[&engine, &t.baseline]),
            None => EpochTicker::start(&[&engine]),
        };
        let disk = config
            .cache_dir
            .clone()
            .map(|dir| DiskCache::new(&engine, dir, config.cache_max_bytes));
        Ok(PluginHost {
            engine,
            linker,
            tiers,
            cache: Arc::default(),
            compiling: Arc::default(),
            disk,
            _ticker: Arc::new(ticker),
        })
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads the component at `path`, compiling it unless a component with
    /// the same bytes was loaded before.
    pub fn load(&self, path: &Path) -> Result<Arc<LoadedPlugin>> {
        let bytes = read_plugin(path)?;
        let hash = blake3::hash(&bytes);
        self.cached_or(hash, || self.compile(path, &bytes, hash))
            .map_err(|message| rejected(path, message))
    }

    /// The optimized build of `hash` from memory, else `make`'s, kept for
    /// the next load. One `make` at a time per hash: a second caller waits
    /// for the first and takes its result.
    pub(crate) fn cached_or(
        &self,
        hash: blake3::Hash,
        make: impl FnOnce() -> Result<LoadedPlugin, String>,
    ) -> Result<Arc<LoadedPlugin>, String> {
        if let Some(hit) = self.cached(&hash) {
            return Ok(hit);
        }
        let gate = self
            .compiling
            .lock()
            .ok()
            .map(|mut gates| gates.entry(hash).or_default().clone());
        let _compiling = gate.as_ref().map(|g| g.lock());
        // Whoever held the gate before may have compiled it meanwhile.
        if let Some(hit) = self.cached(&hash) {
            return Ok(hit);
        }
        let compiled = make().map(Arc::new);
        if let Ok(loaded) = &compiled {
            if let Ok(mut cache) = self.cache.lock() {
                cache.insert(hash, loaded.clone());
            }
        }
        if let Ok(mut gates) = self.compiling.lock() {
            gates.remove(&hash);
        }
        compiled
    }

    /// The optimized build of `hash`, if one was loaded.
    pub(crate) fn cached(&self, hash: &blake3::Hash) -> Option<Arc<LoadedPlugin>> {
        self.cache.lock().ok().and_then(|c| c.get(hash).cloned())
    }

    fn compile(
        &self,
        path: &Path,
        bytes: &[u8],
        hash: blake3::Hash,
    ) -> Result<LoadedPlugin, String> {
        check_component(path, bytes)?;
        let started = Instant::now();
        let cached = self.disk.as_ref().and_then(|d| d.load(&self.engine, &hash));
        let from_disk = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, bytes).map_err(wasm_error)?;
                if let Some(disk) = &self.disk {
                    disk.store(&hash, &component);
                }
                component
            }
        };
        let loaded = self.link_loaded(path, hash, component, Tier::Optimized)?;
        tracing::info!(plugin = %path.display(), version = &hash.to_hex()[..12],
            ms = started.elapsed().as_millis() as u64, from_disk, "loaded");
        Ok(loaded)
    }

    /// Checks what `component` imports and links it for its tier's engine.
    pub(crate) fn link_loaded(
        &self,
        path: &Path,
        hash: blake3::Hash,
        component: Component,
        tier: Tier,
    ) -> Result<LoadedPlugin, String> {
        let (engine, linker) = match (tier, &self.tiers) {
            (Tier::Baseline, Some(t)) => (&t.baseline, &t.baseline_linker),
            _ => (&self.engine, &self.linker),
        };
        let denied: Vec<String> = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .filter(|name| !GRANTABLE.iter().any(|prefix| name.starts_with(prefix)))
            .collect();
        if !denied.is_empty() {
            return Err(format!(
                "imports {}, which weir never grants to plugins (allowed: weir:plugin, and WASI \
                 io, cli, clocks, random, filesystem and sockets — whose access the node's `grants` \
                 control; sockets are always denied)",
                denied.join(", ")
            ));
        }
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            format!(
                "imports something the host does not provide (weir grants weir:plugin/log and \
                 deny-by-default WASI 0.2): {}",
                wasm_error(e)
            )
        })?;
        let pre = link_contract(engine, &component, pre)?;
        Ok(LoadedPlugin {
            path: path.to_path_buf(),
            hash,
            tier,
            engine: engine.clone(),
            pre,
        })
    }

    /// A fresh, sandboxed instance of `plugin` for `node` (not yet
    /// `init`ed), with the node's limits and grants; relative granted
    /// directories resolve against `base_dir`.
    pub fn instantiate<'a>(
        &self,
        plugin: &Arc<LoadedPlugin>,
        node: &str,
        confinement: impl Into<Confinement<'a>>,
        base_dir: &Path,
    ) -> Result<PluginInstance> {
        let confinement = confinement.into();
        let mut grants = confinement.grants.clone();
        for dir in &mut grants.dirs {
            *dir = weir_core::paths::resolve(base_dir, dir);
        }
        let sandbox = Arc::new(Sandbox {
            node: Arc::from(node),
            limits: confinement.limits.clone(),
            grants,
        });
        PluginInstance::start(plugin.clone(), sandbox)
    }
}

/// A linker with every host interface: `weir:plugin` (both contract
/// versions), the `batch` resource, and WASI preview 2 (every capability
/// denied by the per-store context).
fn link(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    let fail = |e: wasmtime::Error| Error::build_from("can't link host interfaces", e);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(fail)?;
    Plugin::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state).map_err(fail)?;
    v0_2::Plugin::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state)
        .map_err(fail)?;
    crate::lend::link(&mut linker).map_err(fail)?;
    crate::stage::link(&mut linker).map_err(fail)?;
    Ok(linker)
}

/// A load of `path` refused for `message`.
pub(crate) fn rejected(path: &Path, message: String) -> Error {
    Error::PluginLoad {
        path: path.to_path_buf(),
        message,
        // wasmtime's error is rendered whole, its causes included
        // (`{e:?}`), as the message.
        cause: None,
    }
}

/// The bytes of the plugin file at `path`.
pub(crate) fn read_plugin(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(rejected(path, not_a_component(path)));
    }
    std::fs::read(path).map_err(|e| {
        rejected(
            path,
            match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "no such file; build it with `weir plugin build` or fix `plugin`".to_string()
                }
                _ => e.to_string(),
            },
        )
    })
}

/// Refuses what is not a component, saying what it is instead.
pub(crate) fn check_component(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(
            "a core wasm module, not a component; `weir plugin build` componentizes it".into(),
        );
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(not_a_component(path));
    }
    Ok(())
}

/// The contract version `component` exports `transform` for, linked.
fn link_contract(
    engine: &Engine,
    component: &Component,
    pre: wasmtime::component::InstancePre<HostState>,
) -> Result<Pre, String> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let version = CONTRACTS
        .iter()
        .find(|v| exports.contains(&format!("weir:plugin/transform@{v}")));
    let wrong_world = |e: wasmtime::Error| {
        format!(
            "does not implement the weir:plugin@{} `plugin` world (see wit/): {}",
            version.unwrap_or(&CONTRACTS[0]),
            wasm_error(e)
        )
    };
    match version {
        Some(&"0.2.0") => Ok(Pre::V0_2(v0_2::PluginPre::new(pre).map_err(wrong_world)?)),
        Some(_) => Ok(Pre::V0_1(PluginPre::new(pre).map_err(wrong_world)?)),
        None => Err(format!(
            "exports no weir:plugin transform (it exports {}); weir runs components built \
             against weir:plugin@{} (see wit/)",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            },
            CONTRACTS.join(" or @")
        )),
    }
}

/// What every instance of one node is made with.
pub(crate) struct Sandbox {
    pub(crate) node: Arc<str>,
    pub(crate) limits: Limits,
    pub(crate) grants: Grants,
}

impl Sandbox {
    /// A new store for this node, limits applied.
    pub(crate) fn store(&self, engine: &Engine) -> Result<Store<HostState>> {
        let state = HostState::new(self.node.clone(), &self.limits, &self.grants)?;
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        // What one call may hand the host (a snapshot, an output): as much
        // as the plugin may hold, rather than wasmtime's 128 MiB, so a
        // plugin within its memory limit never fails for the size of its
        // state. The limit it guards against (a guest making the host
        // allocate without bound) is the memory limit already.
        store.set_hostcall_fuel(usize::try_from(self.limits.memory_mb << 20).unwrap_or(usize::MAX));
        store.epoch_deadline_trap();
        store.set_epoch_deadline(super::engine::ticks(std::time::Duration::from_millis(
            self.limits.timeout_ms,
        )));
        Ok(store)
    }
}
