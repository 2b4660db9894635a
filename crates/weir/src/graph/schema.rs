//! Schema propagation: each output port's schema under its reference
//! (`node`, `node.port`), and at fan-in every input of a port must agree.

use std::collections::BTreeMap;

use arrow::datatypes::SchemaRef;

use super::Graph;
use crate::{Error, Result};

fn shape(schema: &SchemaRef) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect()
}

/// Whether two schemas have the same column names and types, in order
/// (metadata and nullability aside): what a running node can tolerate.
pub fn same_shape(a: &SchemaRef, b: &SchemaRef) -> bool {
    shape(a) == shape(b)
}

/// Like [`same_shape`] for schemas that may be unknown before data.
pub fn same_shape_opt(a: Option<&SchemaRef>, b: Option<&SchemaRef>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_shape(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Records a node's output schemas: its first port under `node` (and
/// `node.PORT`), every other port under `node.PORT`.
pub fn insert_outputs(
    schemas: &mut BTreeMap<String, Option<SchemaRef>>,
    node: &str,
    ports: &[String],
    outputs: &[Option<SchemaRef>],
) {
    for (i, port) in ports.iter().enumerate() {
        let schema = outputs.get(i).cloned().flatten();
        if i == 0 {
            schemas.insert(node.to_string(), schema.clone());
        }
        schemas.insert(format!("{node}.{port}"), schema);
    }
}

/// The schema flowing into `node`: its inputs' common schema, `None` when
/// some input's schema is unknown before data. Inputs that disagree on
/// column names or types are an error naming both and the first clash.
pub fn merge_inputs(
    graph: &Graph,
    node: &str,
    schemas: &BTreeMap<String, Option<SchemaRef>>,
) -> Result<Option<SchemaRef>> {
    merge(graph, node, graph.inputs(node).iter(), schemas)
}

/// The common schema of `inputs` (output references) flowing into one
/// input port of `node`; see [`merge_inputs`]. A reference to an output
/// port its node doesn't have is an error naming the ones it has.
pub fn merge<'a>(
    graph: &Graph,
    node: &str,
    inputs: impl Iterator<Item = &'a String>,
    schemas: &BTreeMap<String, Option<SchemaRef>>,
) -> Result<Option<SchemaRef>> {
    let mut merged: Option<(&str, SchemaRef)> = None;
    let mut unknown = false;
    for input in inputs {
        let schema = match schemas.get(input) {
            Some(Some(schema)) => schema,
            Some(None) => {
                unknown = true;
                continue;
            }
            None => return Err(no_such_port(graph, node, input, schemas)),
        };
        match &merged {
            None => merged = Some((input, schema.clone())),
            Some((first, expected)) => {
                let (a, b) = (shape(expected), shape(schema));
                if a != b {
                    let clash = a
                        .iter()
                        .zip(&b)
                        .find(|(x, y)| x != y)
                        .map(|((n1, t1), (n2, t2))| {
                            format!("column {n1:?} ({t1}) from {first:?} meets {n2:?} ({t2}) from {input:?}")
                        })
                        .unwrap_or_else(|| {
                            format!("{first:?} has {} columns, {input:?} has {}", a.len(), b.len())
                        });
                    let line = graph
                        .manifest
                        .located
                        .line_of(
                            if graph.manifest.sinks.contains_key(node) {
                                "sinks"
                            } else {
                                "transforms"
                            },
                            Some(node),
                            Some("inputs"),
                        )
                        .map(|l| format!(" (at {}:{l})", graph.manifest.path.display()))
                        .unwrap_or_default();
                    return Err(Error::Schema {
                        node: node.to_string(),
                        message: format!("inputs disagree at fan-in: {clash}{line}"),
                    });
                }
            }
        }
    }
    Ok(merged.filter(|_| !unknown).map(|(_, s)| s))
}

/// `input` names an output port its node doesn't have.
fn no_such_port(
    graph: &Graph,
    node: &str,
    input: &str,
    schemas: &BTreeMap<String, Option<SchemaRef>>,
) -> Error {
    let (from, _) = crate::manifest::output_ref(input);
    let prefix = format!("{from}.");
    let ports: Vec<&str> = schemas
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .collect();
    let section = if graph.manifest.sinks.contains_key(node) {
        "sinks"
    } else {
        "transforms"
    };
    graph.manifest.located.error(
        section,
        Some(node),
        Some("inputs"),
        format!(
            "input {input:?}: {from:?} has no such output port (its ports: {}); \
             \"{from}\" alone is its first",
            if ports.is_empty() {
                "none but the first".to_string()
            } else {
                ports.join(", ")
            }
        ),
    )
}
