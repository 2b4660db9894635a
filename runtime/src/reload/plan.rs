//! Manifest reload: the difference between the running graph and a new
//! manifest, turned into a plan the executor applies at a batch boundary.
//!
//! Only what changed is rebuilt, and everything is built before the
//! pipeline pauses. A change that can't be applied live is refused as a
//! whole with the reason — never half applied:
//! - a source's definition (re-reading it would repeat or skip rows), or
//!   `[pipeline] batch_size` / `max_stack_kb`;
//! - a file sink that would have to start over on the same file (its
//!   settings or its input schema changed): the rows already written would
//!   be lost. Pointing it at a new path restarts it cleanly instead: the
//!   old file is committed, the new one takes the rows from then on.

use std::collections::{BTreeMap, BTreeSet};

use arrow::datatypes::SchemaRef;

use crate::exec::Plan;
use crate::graph::{merge_inputs, same_shape_opt, Graph, NodeKind, Prepared};
use crate::manifest::{OnError, TransformConfig, DEAD_LETTER};
use crate::plugin::PluginHost;
use crate::source::bad::OnBadRecord;
use crate::Result;

/// Each node's output schema (a sink's: its input), where known.
pub type Schemas = BTreeMap<String, Option<SchemaRef>>;

fn definition(t: &TransformConfig) -> TransformConfig {
    // Rewiring a node's inputs does not rebuild it.
    TransformConfig {
        inputs: Vec::new(),
        ..t.clone()
    }
}

/// Diffs `new` against the running `old` graph (whose schemas are
/// `old_schemas`) and builds what changed. `Ok(None)`: nothing changed.
pub fn plan(
    old: &Graph,
    old_schemas: &Schemas,
    new: Graph,
    host: &PluginHost,
) -> Result<Option<Plan>> {
    let (o, m) = (&old.manifest, &new.manifest);
    if o.pipeline == m.pipeline
        && o.sources == m.sources
        && o.transforms == m.transforms
        && o.sinks == m.sinks
    {
        return Ok(None);
    }
    let refuse = |section: &str, name: Option<&str>, key: Option<&str>, why: String| {
        m.located.error(
            section,
            name,
            key,
            format!("{why}; the running pipeline continues unchanged (restart it to apply this)"),
        )
    };
    for (key, changed) in [
        ("batch_size", o.pipeline.batch_size != m.pipeline.batch_size),
        (
            "max_stack_kb",
            o.pipeline.max_stack_kb != m.pipeline.max_stack_kb,
        ),
        ("checkpoint", o.pipeline.checkpoint != m.pipeline.checkpoint),
    ] {
        if changed {
            return Err(refuse(
                "pipeline",
                None,
                Some(key),
                format!("`{key}` can't change while the pipeline runs"),
            ));
        }
    }

    let mut schemas = Schemas::new();
    let mut built = Prepared {
        sources: BTreeMap::new(),
        transforms: BTreeMap::new(),
        sinks: BTreeMap::new(),
        schemas: Schemas::new(),
    };
    let mut changes = Vec::new();
    for (name, kind) in &new.order {
        match kind {
            NodeKind::Source => {
                let config = &m.sources[name];
                match o.sources.get(name) {
                    Some(before) if before == config => {
                        schemas.insert(name.clone(), old_schemas.get(name).cloned().flatten());
                    }
                    Some(_) => {
                        return Err(refuse(
                            "sources",
                            Some(name),
                            None,
                            format!(
                                "source {name:?} changed; a source can't change live (it would \
                                 re-read or skip rows) — add a new source instead"
                            ),
                        ))
                    }
                    None => {
                        let source = new.open_source(name)?;
                        schemas.insert(name.clone(), Some(source.schema()));
                        built.sources.insert(name.clone(), source);
                        changes.push(format!("added source {name}"));
                    }
                }
                if config.on_bad_record() == OnBadRecord::DeadLetter {
                    schemas.insert(
                        format!("{name}{DEAD_LETTER}"),
                        Some(crate::source::bad::source_dead_letter_schema()),
                    );
                }
            }
            NodeKind::Transform => {
                let config = &m.transforms[name];
                let input = merge_inputs(&new, name, &schemas)?;
                let kept = o.transforms.get(name).is_some_and(|before| {
                    definition(before) == definition(config)
                        && merge_inputs(old, name, old_schemas)
                            .is_ok_and(|was| same_shape_opt(was.as_ref(), input.as_ref()))
                });
                if kept {
                    schemas.insert(name.clone(), old_schemas.get(name).cloned().flatten());
                } else {
                    let prepared = new.prepare_transform(host, name, config, input.as_ref())?;
                    schemas.insert(name.clone(), prepared.output.clone());
                    built.transforms.insert(name.clone(), prepared);
                    changes.push(if o.transforms.contains_key(name) {
                        format!("rebuilt transform {name} (its state is handed over)")
                    } else {
                        format!("added transform {name}")
                    });
                }
                if config.on_error == OnError::DeadLetter {
                    schemas.insert(
                        format!("{name}{DEAD_LETTER}"),
                        input.as_ref().map(crate::graph::dead_letter_schema),
                    );
                }
            }
            NodeKind::Sink => {
                let sink = &m.sinks[name];
                let input = merge_inputs(&new, name, &schemas)?;
                let restart = match o.sinks.get(name) {
                    None => false,
                    Some(before) => {
                        let was = merge_inputs(old, name, old_schemas).ok().flatten();
                        let same_input = same_shape_opt(was.as_ref(), input.as_ref());
                        if before.config == sink.config && same_input {
                            schemas.insert(name.clone(), input);
                            continue;
                        }
                        let same_file = before.config.path().map(|p| o.resolve(p))
                            == sink.config.path().map(|p| m.resolve(p));
                        if same_file && sink.config.path().is_some() {
                            let why = if same_input {
                                "its settings changed"
                            } else {
                                "its input schema changed"
                            };
                            return Err(refuse(
                                "sinks",
                                Some(name),
                                None,
                                format!(
                                    "sink {name:?} would have to start its file over ({why}), \
                                     losing the rows already written; give it a new `path` to \
                                     restart it on a new file"
                                ),
                            ));
                        }
                        true
                    }
                };
                let opened = new.open_sink(name, input.as_ref())?;
                schemas.insert(name.clone(), input);
                built.sinks.insert(name.clone(), opened);
                changes.push(if restart {
                    format!("restarted sink {name} (the old output is committed first)")
                } else {
                    format!("added sink {name}")
                });
            }
        }
    }
    let new_names: BTreeSet<&String> = new.order.iter().map(|(n, _)| n).collect();
    let removed: Vec<String> = old
        .order
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !new_names.contains(n))
        .cloned()
        .collect();
    changes.extend(removed.iter().map(|n| format!("removed {n}")));
    if changes.is_empty() {
        changes.push("rewired inputs".into());
    }
    built.schemas = schemas;
    Ok(Some(Plan {
        graph: new,
        built,
        removed,
        changes,
    }))
}
