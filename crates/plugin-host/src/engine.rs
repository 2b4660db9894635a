//! Engine policy, in one place.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Strategy,
};

use crate::code_cache::CodeCache;
use crate::{Error, Result};

/// How often the epoch advances: the granularity of call timeouts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings (per-node limits live in the store).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Use the pooling allocator (falls back to on-demand if the machine
    /// refuses the address-space reservation).
    pub pooling: bool,
    /// Largest wasm stack a call may use, in bytes.
    pub max_wasm_stack: usize,
    /// Where compiled components are kept between runs (`None`: compile
    /// every run). Default: `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir`,
    /// else `~/.cache/weir`; `WEIR_CACHE_DIR=off` disables it.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Bytes of compiled components `cache_dir` keeps; past it, the least
    /// recently used are deleted. Default: `$WEIR_CACHE_MAX_MB` MiB, else
    /// [`weir_core::defaults::CACHE_MAX_MB`].
    pub cache_max_bytes: u64,
}

/// The default compiled-component cache bound (see
/// [`EngineConfig::cache_max_bytes`]). A value that is not a number is
/// ignored, with a warning.
pub fn default_cache_max_bytes() -> u64 {
    let mb = match std::env::var("WEIR_CACHE_MAX_MB") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().unwrap_or_else(|_| {
            tracing::warn!(value = %v, "WEIR_CACHE_MAX_MB is not a number of MiB; using {}",
                weir_core::defaults::CACHE_MAX_MB);
            weir_core::defaults::CACHE_MAX_MB
        }),
        _ => weir_core::defaults::CACHE_MAX_MB,
    };
    mb.saturating_mul(1 << 20)
}

/// The default compiled-component cache directory (see
/// [`EngineConfig::cache_dir`]).
pub fn default_cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    // An empty variable (`WEIR_CACHE_DIR=` in a shell) is unset, not the
    // current directory: 300 MB compiled artifacts must not land there.
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    match set("WEIR_CACHE_DIR") {
        Some(dir) if dir == "off" => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => set("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("weir")),
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            pooling: true,
            max_wasm_stack: weir_core::defaults::MAX_STACK_KB << 10,
            cache_dir: default_cache_dir(),
            cache_max_bytes: default_cache_max_bytes(),
        }
    }
}

impl EngineConfig {
    /// The engine for a pipeline whose plugin calls may use `max_stack_kb`
    /// of wasm stack (`[pipeline] max_stack_kb`; at least 64).
    pub fn with_max_stack_kb(max_stack_kb: usize) -> Self {
        EngineConfig {
            max_wasm_stack: max_stack_kb.max(64) << 10,
            ..EngineConfig::default()
        }
    }
}

fn base_config(cfg: &EngineConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(cfg.max_wasm_stack)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true);
    c
}

fn pooling() -> PoolingAllocationConfig {
    let mut p = PoolingAllocationConfig::default();
    // Slots, not reservations, for instances: a CPython component holds
    // ~17 core instances, so 1,024 capped a pipeline at ~60 Python nodes
    // (fewer with `parallelism` or mid hot reload). Memories are the
    // costly slots (virtual address space each) and are capped per node
    // by the store's limiter, not here.
    p.total_component_instances(512)
        .total_core_instances(4096)
        .total_memories(512)
        .total_tables(1024)
        // Function tables of big components: the sql plugin (DataFusion)
        // starts with 60,762 entries, over the default 20,000. Address
        // space only: 1,024 tables x 131,072 x 8 bytes is reserved, and a
        // table's pages are touched as it is used.
        .table_elements(1 << 17)
        // Its instance's VM context (one entry per function) is 1.9 MB,
        // over the default 1 MB; the bound is bookkeeping, not a reservation.
        .max_core_instance_size(8 << 20)
        .max_component_instance_size(8 << 20)
        .max_memories_per_component(8)
        .max_tables_per_component(32)
        .max_core_instances_per_component(32)
        .max_memory_size(4 << 30);
    p
}

/// Builds the engine all plugins share.
pub fn new_engine(cfg: &EngineConfig) -> Result<Engine> {
    let fail = |e: wasmtime::Error| Error::build_from("can't create the wasm engine", e);
    if cfg.pooling {
        let mut c = base_config(cfg);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling()));
        match Engine::new(&c) {
            Ok(engine) => return Ok(engine),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation")
            }
        }
    }
    Engine::new(&base_config(cfg)).map_err(fail)
}

/// The baseline engine: Winch, a single-pass compiler, makes code ~5×
/// faster than Cranelift (the 2.8 MB filter plugin: 0.32 vs 1.85 s), code
/// that runs slower. A hot-reloaded version starts on it while Cranelift
/// builds the optimized code in the background. On-demand allocation: a
/// baseline instance lives seconds, and a second pool would reserve the
/// address space again. `None` where Winch can't run.
pub fn baseline_engine(cfg: &EngineConfig) -> Option<Engine> {
    let mut c = base_config(cfg);
    // On one thread: a fifth less CPU than on the shared pool (104 vs 130
    // ms for the stamp test plugin), CPU the pipeline is using meanwhile.
    c.strategy(Strategy::Winch).parallel_compilation(false);
    // What Winch can't compile (the trampolines between host and wasm)
    // Cranelift still does: without its optimizations, 6-10 % less CPU
    // per baseline build (stamp test plugin 70 vs 78 ms, filter 492-500
    // vs 521-528 ms), for stubs that only move arguments.
    c.cranelift_opt_level(OptLevel::None);
    match Engine::new(&c) {
        Ok(engine) => Some(engine),
        Err(e) => {
            tracing::warn!(error = %e, "no baseline compiler here; new versions wait for Cranelift");
            None
        }
    }
}

/// An engine whose compiled code [`new_engine`]'s engine loads: the same
/// settings, compiling on the calling thread only. wasmtime's parallel
/// compilation runs on a shared thread pool, which a lowered thread
/// priority wouldn't reach; the background optimizer compiles here, at its
/// own low priority, and deserializes into the pipeline's engine.
/// It instantiates nothing, so it allocates on demand: a pool would
/// reserve the pipeline's address space a second time, and the allocator
/// is not part of the compiled code's compatibility.
/// Its compiles share `code`, Cranelift's incremental cache: a version
/// after a small edit compiles only the functions that changed.
pub fn background_engine(cfg: &EngineConfig, code: Arc<CodeCache>) -> Result<Engine> {
    let fail = |e: wasmtime::Error| Error::build_from("can't create the background compiler", e);
    let mut c = base_config(cfg);
    c.parallel_compilation(false);
    c.enable_incremental_compilation(code).map_err(fail)?;
    Engine::new(&c).map_err(fail)
}

/// Lowers the calling thread's scheduling priority to the lowest, so the
/// work it does takes only the CPU the pipeline leaves: Linux's
/// `SCHED_IDLE` (runs when a core has nothing else to run), else nice 19.
/// Linux keeps both per thread; elsewhere this does nothing.
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id, with
        // a parameter struct that lives across the call.
        #[allow(unsafe_code)]
        let lowered = unsafe {
            let tid = libc::gettid();
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) == 0
                || libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) == 0
        };
        if !lowered {
            tracing::debug!(error = %std::io::Error::last_os_error(), "can't lower the thread's priority");
        }
    }
}

/// Advances the engines' epochs every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engines`.
    pub fn start(engines: &[&Engine]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engines: Vec<Engine> = engines.iter().map(|&e| e.clone()).collect();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })
            .ok();
        EpochTicker { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Epoch ticks for a wall-clock budget (at least one).
pub fn ticks(timeout: Duration) -> u64 {
    (timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_background_engines_code_loads_into_the_pipelines_engine() {
        for pooling in [true, false] {
            let cfg = EngineConfig {
                pooling,
                cache_dir: None,
                ..EngineConfig::default()
            };
            let pipeline = new_engine(&cfg).unwrap();
            let code = Arc::new(CodeCache::new(1 << 20));
            let background = background_engine(&cfg, code).unwrap();
            let key = |engine: &Engine| {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                engine.precompile_compatibility_hash().hash(&mut h);
                h.finish()
            };
            assert_eq!(key(&pipeline), key(&background), "pooling = {pooling}");
        }
    }
}
