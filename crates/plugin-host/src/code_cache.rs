//! Cranelift's incremental cache for the background optimizer: the
//! machine code of each function, keyed by its IR. A hot-reloaded version
//! after a small edit shares most functions with the one before (the
//! standard library, the SDK, arrow-rs), so its optimized build compiles
//! only what changed: the stamp test plugin's build after a one-line edit
//! takes ~0.12 CPU-s against ~0.4 cold (BENCHMARKS.md, "Hot reload").
//!
//! Held in memory, two generations deep: entries go to the young map;
//! when it holds half the budget the old map is dropped and the young one
//! takes its place. A lookup that finds an entry in the old map moves it
//! back into the young one. What a recent build used stays; what no build
//! has used for a while goes; the whole never holds more than the budget.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Bytes of cached code kept at most (both generations together).
pub const CODE_CACHE_BYTES: usize = 128 << 20;

/// A bounded in-memory [`wasmtime::CacheStore`].
#[derive(Debug)]
pub struct CodeCache {
    budget: usize,
    maps: Mutex<Generations>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<Vec<u8>, Vec<u8>>,
    young_bytes: usize,
    old: HashMap<Vec<u8>, Vec<u8>>,
}

/// Functions found in the cache and compiled, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reuse {
    /// Functions whose code came from the cache.
    pub reused: u64,
    /// Functions compiled (and offered to the cache).
    pub compiled: u64,
}

impl Reuse {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Reuse) -> Reuse {
        Reuse {
            reused: self.reused.saturating_sub(earlier.reused),
            compiled: self.compiled.saturating_sub(earlier.compiled),
        }
    }
}

impl CodeCache {
    /// An empty cache holding at most `budget` bytes of keys and code.
    pub fn new(budget: usize) -> Self {
        CodeCache {
            budget,
            maps: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Counts of reused and compiled functions so far.
    pub fn reuse(&self) -> Reuse {
        Reuse {
            reused: self.hits.load(Ordering::Relaxed),
            compiled: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Bytes held now (keys and values, both generations).
    #[cfg(test)]
    fn bytes(&self) -> usize {
        let Ok(maps) = self.maps.lock() else {
            return 0;
        };
        let old: usize = maps.old.iter().map(|(k, v)| k.len() + v.len()).sum();
        maps.young_bytes + old
    }

    fn lookup(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut maps = self.maps.lock().ok()?;
        if let Some(value) = maps.young.get(key) {
            return Some(value.clone());
        }
        let value = maps.old.remove(key)?;
        let copy = value.clone();
        maps.keep(key.to_vec(), value, self.budget);
        Some(copy)
    }
}

impl Generations {
    fn keep(&mut self, key: Vec<u8>, value: Vec<u8>, budget: usize) {
        let size = key.len() + value.len();
        if size > budget / 2 {
            return;
        }
        // The same key again (two nodes compiling alike at once): only
        // what is held counts.
        if let Some(replaced) = self.young.remove(&key) {
            self.young_bytes -= key.len() + replaced.len();
        }
        if self.young_bytes + size > budget / 2 {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young_bytes += size;
        self.young.insert(key, value);
    }
}

impl wasmtime::CacheStore for CodeCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let found = self.lookup(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let Ok(mut maps) = self.maps.lock() else {
            return false;
        };
        maps.keep(key.to_vec(), value, self.budget);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    fn entry(n: u8, size: usize) -> (Vec<u8>, Vec<u8>) {
        (vec![n; 8], vec![n; size - 8])
    }

    #[test]
    fn an_inserted_function_is_found_and_counted_as_reused() {
        let cache = CodeCache::new(1 << 20);
        let (k, v) = entry(1, 100);
        assert!(cache.get(&k).is_none());
        assert!(cache.insert(&k, v.clone()));
        assert_eq!(cache.get(&k).as_deref(), Some(&v[..]));
        assert_eq!(
            cache.reuse(),
            Reuse {
                reused: 1,
                compiled: 1
            }
        );
    }

    #[test]
    fn the_cache_never_holds_more_than_its_budget() {
        let cache = CodeCache::new(10_000);
        for n in 0..=255u8 {
            let (k, v) = entry(n, 1_000);
            cache.insert(&k, v);
            assert!(cache.bytes() <= 10_000, "{} bytes after {n}", cache.bytes());
        }
        let (k, _) = entry(255, 1_000);
        assert!(cache.get(&k).is_some(), "the newest entry is kept");
        let (k, _) = entry(0, 1_000);
        assert!(cache.get(&k).is_none(), "the oldest is gone");
    }

    #[test]
    fn an_entry_used_again_survives_the_next_generation() {
        let cache = CodeCache::new(4_000);
        let (first, value) = entry(0, 1_000);
        cache.insert(&first, value.clone());
        // Fill the young generation so `first` ages into the old one...
        for n in 1..=2u8 {
            let (k, v) = entry(n, 1_000);
            cache.insert(&k, v);
        }
        // ...then use it: it moves back to the young generation and
        // outlives the entries inserted beside it.
        assert!(cache.get(&first).is_some());
        for n in 3..=4u8 {
            let (k, v) = entry(n, 1_000);
            cache.insert(&k, v);
        }
        assert_eq!(cache.get(&first).as_deref(), Some(&value[..]));
    }

    #[test]
    fn a_function_larger_than_half_the_budget_is_not_kept() {
        let cache = CodeCache::new(1_000);
        let (k, v) = entry(1, 600);
        cache.insert(&k, v);
        assert!(cache.get(&k).is_none());
        assert_eq!(cache.bytes(), 0);
    }
}
