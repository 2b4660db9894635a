//! The compiled-component cache on disk.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use weir::plugin::{EngineConfig, PluginHost};
use weir_tests::{new_version, plugins, Scratch};

fn host_with_cache(dir: &Path) -> PluginHost {
    PluginHost::new(&EngineConfig {
        cache_dir: Some(dir.to_path_buf()),
        ..EngineConfig::default()
    })
    .unwrap()
}

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_compiled_component_is_kept_and_reused_by_the_next_host() {
    let scratch = Scratch::new();
    let cache = scratch.path("cache");
    let first = host_with_cache(&cache)
        .load(Path::new(plugins::RENAME))
        .unwrap();
    let files = entries(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    // Written by a rename, so a rewrite is a new inode (loading touches
    // the entry's time: the eviction order).
    let inode = std::fs::metadata(&files[0]).unwrap().ino();
    // A new host (as after a restart) loads the same bytes from disk.
    let second = host_with_cache(&cache)
        .load(Path::new(plugins::RENAME))
        .unwrap();
    assert_eq!(first.hash, second.hash);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().ino(),
        inode,
        "not rewritten"
    );
}

#[test]
fn a_corrupt_cache_entry_is_recompiled_not_trusted() {
    let scratch = Scratch::new();
    let cache = scratch.path("cache");
    host_with_cache(&cache)
        .load(Path::new(plugins::SELECT))
        .unwrap();
    let files = entries(&cache);
    std::fs::write(&files[0], b"not a compiled component").unwrap();
    let host = host_with_cache(&cache);
    let plugin = host.load(Path::new(plugins::SELECT)).unwrap();
    let mut instance = host
        .instantiate(
            &plugin,
            "t",
            &toml::from_str("plugin = \"x\"\ninputs = [\"y\"]").unwrap(),
            scratch.path("").as_path(),
        )
        .unwrap();
    instance.init(r#"{"columns":["a"]}"#).unwrap();
    assert!(
        std::fs::read(&files[0]).unwrap().len() > 1000,
        "the entry was rewritten"
    );
}

#[test]
fn past_its_budget_the_cache_evicts_the_least_recently_used_entry() {
    let scratch = Scratch::new();
    let cache = scratch.path("cache");
    let source = std::fs::read(plugins::RENAME).unwrap();
    let version = |tag: &str| scratch.write(&format!("{tag}.wasm"), new_version(&source, tag));
    let (a, b, c) = (version("a"), version("b"), version("c"));
    let pause = || std::thread::sleep(Duration::from_millis(50));
    let unbounded = host_with_cache(&cache);
    let a_version = unbounded.load(&a).unwrap().version();
    pause();
    let b_version = unbounded.load(&b).unwrap().version();
    let two: u64 = entries(&cache)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    pause();
    // A restart on a bounded cache uses `a` again, then compiles `c`:
    // three entries pass the budget, and `b`, used least recently, goes.
    let bounded = PluginHost::new(&EngineConfig {
        cache_dir: Some(cache.clone()),
        cache_max_bytes: two / 2 * 29 / 10,
        ..EngineConfig::default()
    })
    .unwrap();
    bounded.load(&a).unwrap();
    pause();
    let c_version = bounded.load(&c).unwrap().version();
    // An entry's name starts with the component's hash.
    let kept = |version: &str| {
        entries(&cache).iter().any(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(version)
        })
    };
    assert!(
        kept(&a_version) && kept(&c_version),
        "{:?}",
        entries(&cache)
    );
    assert!(!kept(&b_version), "{:?}", entries(&cache));
}
