//! Tiered compilation for hot reload. A new version's first build is
//! Winch's, ~5× quicker to make than Cranelift's, so it takes over within
//! a few tens of milliseconds even while the pipeline keeps every core
//! busy; Cranelift's optimized build follows from a thread of the lowest
//! priority, and replaces it at a later batch boundary like any new
//! version (the reload controller drives both steps). The optimizer keeps
//! each function's code in an incremental cache ([`crate::code_cache`]),
//! so after the first version it compiles only what an edit changed; a
//! version whose code it has nearly all compiled before skips the baseline
//! tier and builds optimized at once ([`crate::known`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Component;

use crate::code_cache::Reuse;
use crate::host::{check_component, read_plugin, rejected, wasm_error, LoadedPlugin, Tier};
use crate::known::{Bodies, Coverage};
use crate::{PluginHost, Result};

impl PluginHost {
    /// Loads the component at `path` for a hot reload: its optimized build
    /// when one is at hand (loaded before, or in the disk cache) or quick
    /// to make (its code nearly all in the incremental cache), else a
    /// [`Tier::Baseline`] build; [`optimize`](Self::optimize) makes the
    /// optimized one. Without a baseline compiler, [`load`](Self::load).
    pub fn load_quick(&self, path: &Path) -> Result<Arc<LoadedPlugin>> {
        let Some(tiers) = &self.tiers else {
            return self.load(path);
        };
        let bytes = read_plugin(path)?;
        let hash = blake3::hash(&bytes);
        if let Some(hit) = self.cached(&hash) {
            return Ok(hit);
        }
        if self.disk.as_ref().is_some_and(|d| d.path(&hash).is_file()) {
            return self.load(path);
        }
        let started = Instant::now();
        let known = tiers.known.knows_file(path).then(|| Bodies::of(&bytes));
        let coverage = known.as_ref().and_then(|b| tiers.known.coverage(path, b));
        if let (Some(coverage), Some(bodies)) = (coverage.filter(Coverage::warm), &known) {
            let loaded = self.build_optimized(path, hash, &bytes, bodies)?;
            tracing::info!(plugin = %path.display(), version = &hash.to_hex()[..12],
                ms = started.elapsed().as_millis() as u64,
                new_functions = coverage.bodies - coverage.known_bodies,
                "loaded an optimized build at once: its code was nearly all compiled before");
            return Ok(loaded);
        }
        let baseline = || -> std::result::Result<LoadedPlugin, String> {
            check_component(path, &bytes)?;
            let component = Component::new(&tiers.baseline, &bytes).map_err(wasm_error)?;
            self.link_loaded(path, hash, component, Tier::Baseline)
        };
        let loaded = baseline().map_err(|message| rejected(path, message))?;
        tracing::info!(plugin = %path.display(), version = &hash.to_hex()[..12],
            ms = started.elapsed().as_millis() as u64, "loaded a baseline build");
        Ok(Arc::new(loaded))
    }

    /// The optimized build of `plugin`, compiled on the calling thread
    /// only (the reload controller calls this from a thread of the lowest
    /// priority) and cached like [`load`](Self::load)'s. `Ok(None)` when
    /// the file now holds another version: that one is on its way.
    pub fn optimize(&self, plugin: &Arc<LoadedPlugin>) -> Result<Option<Arc<LoadedPlugin>>> {
        let Some(tiers) = &self.tiers else {
            return Ok(Some(plugin.clone()));
        };
        if plugin.tier == Tier::Optimized {
            return Ok(Some(plugin.clone()));
        }
        let path = plugin.path.as_path();
        let bytes = read_plugin(path)?;
        let hash = blake3::hash(&bytes);
        if hash != plugin.hash {
            return Ok(None);
        }
        let started = Instant::now();
        let before = tiers.code.reuse();
        let loaded = self.build_optimized(path, hash, &bytes, &Bodies::of(&bytes))?;
        // Counted across the process: a build on another node at the same
        // moment adds to these.
        let reuse = tiers.code.reuse().since(before);
        tracing::info!(plugin = %path.display(), version = &hash.to_hex()[..12],
            ms = started.elapsed().as_millis() as u64, functions_reused = reuse.reused,
            functions_compiled = reuse.compiled, "optimized build ready");
        Ok(Some(loaded))
    }

    /// `bytes` compiled by the background engine (through the incremental
    /// cache, on the calling thread), cached in memory and on disk, its
    /// `bodies` noted as compiled.
    fn build_optimized(
        &self,
        path: &Path,
        hash: blake3::Hash,
        bytes: &[u8],
        bodies: &Bodies,
    ) -> Result<Arc<LoadedPlugin>> {
        let Some(tiers) = &self.tiers else {
            return self.load(path);
        };
        let compile = || -> std::result::Result<LoadedPlugin, String> {
            check_component(path, bytes)?;
            let serialized = tiers
                .background
                .precompile_component(bytes)
                .map_err(wasm_error)?;
            let component = self.deserialize_or_compile(path, bytes, &serialized)?;
            tiers.known.record(path, bodies);
            if let Some(disk) = &self.disk {
                disk.store_bytes(&hash, &serialized);
            }
            self.link_loaded(path, hash, component, Tier::Optimized)
        };
        self.cached_or(hash, compile)
            .map_err(|message| rejected(path, message))
    }

    /// Functions the background optimizer took from its incremental cache
    /// and compiled, since this host was made (`None` without tiers).
    pub fn code_reuse(&self) -> Option<Reuse> {
        self.tiers.as_ref().map(|t| t.code.reuse())
    }

    /// `serialized` (the background engine's output) loaded into the
    /// pipeline's engine; should the two engines ever disagree, the
    /// component is compiled again by the pipeline's engine.
    fn deserialize_or_compile(
        &self,
        path: &Path,
        bytes: &[u8],
        serialized: &[u8],
    ) -> std::result::Result<Component, String> {
        // SAFETY: `serialized` is wasmtime's own output, made a moment ago
        // in this process by an engine of the same settings; wasmtime
        // still checks its header and settings.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(&self.engine, serialized) };
        loaded.or_else(|e| {
            tracing::warn!(plugin = %path.display(), error = %e,
                "the background build doesn't load; compiling again");
            check_component(path, bytes)?;
            Component::new(&self.engine, bytes).map_err(wasm_error)
        })
    }
}
