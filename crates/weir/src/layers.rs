//! The direction rule inside the `weir` crate, checked: every `crate::…`
//! path in a module's code (not its comments or tests) names a module of a
//! lower layer, never one above it or beside it. The layers below `manifest`
//! are crates of their own (weir-core, weir-io, weir-plugin-host), kept
//! below by cargo itself; here they are the names `lib.rs` re-exports them
//! under. DEVELOPERS.md explains the layers.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, bottom first. A module may use modules of lower layers
/// only; modules of one layer don't use each other (the plugin host and
/// io are peers: neither knows the other).
const LAYERS: &[&[&str]] = &[
    &["error", "defaults", "paths"],
    &["checkpoint"],
    &["plugin", "bindings", "source", "sink"],
    &["manifest"],
    &["graph"],
    &["exec"],
    &["reload"],
    &["fuzz"],
];

/// Items re-exported at the crate root, and the module they live in.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("FailureKind", "error"),
];

/// Modules that are one component across two names.
fn component(module: &str) -> &str {
    match module {
        "bindings" => "plugin",
        other => other,
    }
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The code of a file up to its `#[cfg(test)]` module, with its doc
/// comments (a doc link to a module above is a dependency on it too) but
/// without plain comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|line| {
            let doc = line.trim_start().starts_with("///") || line.trim_start().starts_with("//!");
            if doc {
                line
            } else {
                line.split("//").next().unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::`.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            // `crate::{a::b, c}`: the first segment of each path.
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .map(|path| path.trim().split("::").next().unwrap_or_default())
                .collect(),
            None => vec![rest
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap_or_default()],
        };
        for name in names {
            let name = ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == name)
                .map_or(name, |(_, module)| module);
            if layer(name).is_some() {
                used.insert(name.to_string());
            }
        }
    }
    used
}

/// Every `(file, module it may not use)` under `src`.
fn violations(src: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let module = rel.split('/').next().unwrap().trim_end_matches(".rs");
            let Some(from) = layer(module) else {
                continue; // lib.rs, main.rs: the crate's top
            };
            let text = std::fs::read_to_string(&path).unwrap();
            for used in used_modules(&code(&text)) {
                if component(&used) == component(module) {
                    continue;
                }
                if layer(&used).is_some_and(|to| to >= from) {
                    found.push((rel.clone(), used));
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn no_module_uses_a_module_above_or_beside_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports against the direction (file → module; see DEVELOPERS.md, \"Layers\"): {found:#?}"
    );
}

#[test]
fn the_check_sees_grouped_nested_and_root_imports() {
    let code = code(
        "use crate::exec::Plan;\nuse crate::{graph::Graph, Error};\n// crate::cli in a comment\n/// see [`crate::sink`]\nlet x = crate::reload::plan(1);",
    );
    let used: Vec<_> = used_modules(&code).into_iter().collect();
    assert_eq!(used, ["error", "exec", "graph", "reload", "sink"]);
}
