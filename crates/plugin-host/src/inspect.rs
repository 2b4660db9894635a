//! `weir plugin inspect FILE`: what a component imports and exports, and
//! whether weir can run it.

use std::fmt::Write as _;
use std::path::Path;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::Engine;

use super::host::PluginHost;
use crate::{Error, Result};

fn describe_item(engine: &Engine, name: &str, item: &ComponentItem, out: &mut String) {
    match item {
        ComponentItem::ComponentInstance(instance) => {
            let _ = writeln!(out, "  {name}");
            for (export, item) in instance.exports(engine) {
                let kind = match item.ty {
                    ComponentItem::ComponentFunc(_) => "func",
                    ComponentItem::Resource(_) => "resource",
                    ComponentItem::Type(_) => "type",
                    _ => "item",
                };
                let _ = writeln!(out, "    {kind} {export}");
            }
        }
        ComponentItem::ComponentFunc(_) => {
            let _ = writeln!(out, "  func {name}");
        }
        _ => {
            let _ = writeln!(out, "  {name}");
        }
    }
}

/// A human-readable report on the component at `path`.
pub fn inspect(host: &PluginHost, path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut out = String::new();
    let _ = writeln!(out, "{}", path.display());
    let _ = writeln!(out, "  size:    {} bytes", bytes.len());
    let _ = writeln!(out, "  version: {}", &blake3::hash(&bytes).to_hex()[..12]);
    if wasmparser::Parser::is_core_wasm(&bytes) {
        let _ = writeln!(
            out,
            "  a core module, not a component: `weir plugin build` componentizes it"
        );
        return Ok(out);
    }
    let engine = host.engine();
    let component = Component::new(engine, &bytes).map_err(|e| Error::PluginLoad {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
        cause: None,
    })?;
    let ty = component.component_type();
    let _ = writeln!(out, "imports:");
    for (name, item) in ty.imports(engine) {
        describe_item(engine, name, &item.ty, &mut out);
    }
    let _ = writeln!(out, "exports:");
    for (name, item) in ty.exports(engine) {
        describe_item(engine, name, &item.ty, &mut out);
    }
    let verdict = match host.load(path) {
        Ok(plugin) => format!(
            "runs on weir (implements weir:plugin@{} `plugin`)",
            plugin.contract()
        ),
        Err(e) => format!("can't run on weir: {e}"),
    };
    let _ = writeln!(out, "verdict: {verdict}");
    Ok(out)
}
