//! Schema propagation at fan-in: every input of a node must agree.

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

/// The schema flowing into `node`: its inputs' common schema, `None` when
/// some input's schema is unknown before data. Inputs that disagree on
/// column names or types are an error naming both and the first clash.
pub fn merge_inputs(
    graph: &Graph,
    node: &str,
    schemas: &BTreeMap<String, Option<SchemaRef>>,
) -> Result<Option<SchemaRef>> {
    let inputs = graph.inputs(node);
    let mut merged: Option<(&str, SchemaRef)> = None;
    for input in inputs {
        let Some(Some(schema)) = schemas.get(input) else {
            return Ok(None);
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
    Ok(merged.map(|(_, s)| s))
}
