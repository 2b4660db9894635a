//! Compiled components on disk, so a restart or a swap back to an earlier
//! version doesn't recompile. Bounded: every hot-reloaded version is a
//! new entry (the 2.8 MB filter plugin compiles to ~8 MB), so past the
//! budget the least recently used entries go, like wasmtime's own cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wasmtime::component::Component;
use wasmtime::Engine;

/// Compiled components on disk, keyed by the component's bytes and the
/// engine's compatibility hash (wasmtime version, target, settings): a
/// restart, or swapping back to an earlier version, doesn't recompile.
#[derive(Clone)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    engine_key: String,
    max_bytes: u64,
}

/// A temporary file older than this was left by a process that died
/// mid-write.
const STALE_TMP: Duration = Duration::from_secs(3600);

impl DiskCache {
    pub(crate) fn new(engine: &Engine, dir: PathBuf, max_bytes: u64) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let cache = DiskCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            max_bytes,
        };
        // A bound lowered since the last run holds from this start, not
        // from the next compile (one directory listing).
        cache.trim();
        cache
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
            Ok(component) => {
                touch(&path);
                Some(component)
            }
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
            let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path));
            if written.is_err() {
                // A full disk must not keep the partial file too.
                let _ = std::fs::remove_file(&tmp);
            }
            written
        };
        if let Err(e) = write() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "can't write the compiled-component cache");
        }
        self.trim();
    }

    /// Deletes the least recently used entries (any engine's) until the
    /// cache holds at most three quarters of its budget, once it holds
    /// more than the budget; and temporary files a dead process left.
    /// The newest entry stays, whatever its size.
    fn trim(&self) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for item in listing.flatten() {
            let path = item.path();
            let Ok(meta) = item.metadata() else { continue };
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            match path.extension().and_then(|e| e.to_str()) {
                Some("cwasm") => entries.push((used, meta.len(), path)),
                Some(ext)
                    if ext.starts_with("tmp")
                        && now.duration_since(used).is_ok_and(|age| age > STALE_TMP) =>
                {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= self.max_bytes {
            return;
        }
        entries.sort();
        entries.pop(); // the newest
        let target = self.max_bytes / 4 * 3;
        for (_, len, path) in entries {
            if total <= target {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                tracing::debug!(path = %path.display(), bytes = len, "evicted a compiled component");
            }
        }
    }
}

/// Marks `path` used now, so [`DiskCache::trim`] keeps it longest.
fn touch(path: &Path) {
    let touched = std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
    if let Err(e) = touched {
        tracing::debug!(path = %path.display(), error = %e, "can't mark a cache entry used");
    }
}
