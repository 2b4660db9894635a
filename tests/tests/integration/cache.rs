//! The compiled-component cache on disk.

use std::path::Path;

use weir::plugin::{EngineConfig, PluginHost};
use weir_tests::{plugins, Scratch};

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
    let stamp = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    // A new host (as after a restart) loads the same bytes from disk.
    let second = host_with_cache(&cache)
        .load(Path::new(plugins::RENAME))
        .unwrap();
    assert_eq!(first.hash, second.hash);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        stamp,
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
