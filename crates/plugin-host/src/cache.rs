//! Compiled components on disk, so a restart or a swap back to an earlier
//! version doesn't recompile.

use std::path::PathBuf;

use wasmtime::component::Component;
use wasmtime::Engine;

/// Compiled components on disk, keyed by the component's bytes and the
/// engine's compatibility hash (wasmtime version, target, settings): a
/// restart, or swapping back to an earlier version, doesn't recompile.
#[derive(Clone)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    engine_key: String,
}

impl DiskCache {
    pub(crate) fn new(engine: &Engine, dir: PathBuf) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        DiskCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    pub(crate) fn path(&self, hash: &blake3::Hash) -> PathBuf {
        self.dir.join(format!(
            "{}-{}.cwasm",
            &hash.to_hex()[..32],
            self.engine_key
        ))
    }

    pub(crate) fn load(&self, engine: &Engine, hash: &blake3::Hash) -> Option<Component> {
        let path = self.path(hash);
        if !path.is_file() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own
        // output. Only this cache writes here (atomically, under a name
        // keyed by the source's hash and the engine's compatibility hash);
        // wasmtime still checks the header, and anything it rejects is
        // recompiled. The cache directory must not be writable by others.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable cache entry");
                None
            }
        }
    }

    pub(crate) fn store(&self, hash: &blake3::Hash, component: &Component) {
        match component.serialize() {
            Ok(bytes) => self.store_bytes(hash, &bytes),
            Err(e) => tracing::warn!(error = %e, "can't serialize a compiled component"),
        }
    }

    /// Keeps `bytes`, wasmtime's serialized form of the component whose
    /// source hashes to `hash`.
    pub(crate) fn store_bytes(&self, hash: &blake3::Hash, bytes: &[u8]) {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let path = self.path(hash);
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "can't write the compiled-component cache");
        }
    }
}
