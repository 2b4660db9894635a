//! What `weir check` prints: a line per node with its output schema, or
//! with `--json` the whole graph — nodes, their schema on each output
//! port, and the edges between them.

use std::path::Path;

use arrow::datatypes::SchemaRef;
use serde_json::{json, Value};

use weir::graph::{Graph, NodeKind, Prepared};
use weir::manifest::{output_ref, DEAD_LETTER};

/// The text form: `PATH: ok`, then each node's output schema.
pub(crate) fn render(manifest: &Path, graph: &Graph, prepared: &Prepared) -> String {
    let mut out = format!("{}: ok\n", manifest.display());
    for (name, kind) in &graph.order {
        let schema = match prepared.schemas.get(name) {
            Some(Some(s)) => s
                .fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", "),
            _ => "(known once data flows)".into(),
        };
        out.push_str(&format!("  {:<10} {name:<16} [{schema}]\n", kind.section()));
    }
    out
}

/// A schema as JSON: its fields with their Arrow type (as arrow-rs
/// prints it) and nullability; `null` where it is known only once data
/// flows.
pub(crate) fn schema_json(schema: Option<&SchemaRef>) -> Value {
    match schema {
        Some(s) => Value::Array(
            s.fields()
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name(),
                        "type": f.data_type().to_string(),
                        "nullable": f.is_nullable(),
                    })
                })
                .collect(),
        ),
        None => Value::Null,
    }
}

/// The node's `type` (sources, sinks) or plugin file (transforms).
fn what(graph: &Graph, name: &str, kind: NodeKind) -> (&'static str, Value) {
    let m = &graph.manifest;
    match kind {
        NodeKind::Source => ("type", json!(m.sources[name].kind())),
        NodeKind::Sink => ("type", json!(m.sinks[name].config.kind())),
        NodeKind::Transform => (
            "plugin",
            json!(m.resolve(&m.transforms[name].plugin).display().to_string()),
        ),
    }
}

/// The graph as JSON (`weir check --json`). A node's `ports` holds the
/// schema of each output it has (`main`, and `dead_letter` where its
/// policy sends rows there); a sink's `input` is what it receives.
pub(crate) fn to_json(graph: &Graph, prepared: &Prepared) -> Value {
    let schema = |output: &str| schema_json(prepared.schemas.get(output).and_then(|s| s.as_ref()));
    let nodes: Vec<Value> = graph
        .order
        .iter()
        .map(|(name, kind)| {
            let mut node = json!({ "name": name, "kind": kind.name() });
            let (key, value) = what(graph, name, *kind);
            node[key] = value;
            if *kind == NodeKind::Sink {
                node["input"] = schema(name);
            } else {
                let mut ports = json!({ "main": schema(name) });
                let declared = prepared.transforms.get(name).map(|t| &t.ports.outputs);
                for port in declared.into_iter().flatten().skip(1) {
                    ports[port] = schema(&format!("{name}.{port}"));
                }
                let dead = format!("{name}{DEAD_LETTER}");
                if prepared.schemas.contains_key(&dead) {
                    ports["dead_letter"] = schema(&dead);
                }
                node["ports"] = ports;
            }
            node
        })
        .collect();
    let edges: Vec<Value> = graph
        .order
        .iter()
        .flat_map(|(to, _)| {
            graph.inputs(to).iter().map(move |input| {
                let (from, port) = output_ref(input);
                let first = prepared
                    .transforms
                    .get(from)
                    .and_then(|t| t.ports.outputs.first());
                let port = match port {
                    Some(p) if Some(p) != first.map(String::as_str) => p,
                    _ => "main",
                };
                json!({ "from": from, "port": port, "to": to })
            })
        })
        .collect();
    json!({ "nodes": nodes, "edges": edges })
}
