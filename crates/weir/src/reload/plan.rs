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
use crate::manifest::{TransformConfig, DEAD_LETTER};
use crate::plugin::PluginHost;
use crate::source::bad::OnBadRecord;
use crate::{Error, Result};

/// Each node's output schema (a sink's: its input), where known.
pub type Schemas = BTreeMap<String, Option<SchemaRef>>;

fn definition(t: &TransformConfig) -> TransformConfig {
    // Rewiring a one-port node's inputs does not rebuild it; rewiring a
    // node's named ports does (which slot feeds which port is the node's).
    TransformConfig {
        inputs: match t.inputs.named() {
            true => t.inputs.clone(),
            false => Default::default(),
        },
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
    let mut planner = Planner {
        old,
        old_schemas,
        new: &new,
        host,
        schemas: Schemas::new(),
        built: Prepared {
            sources: BTreeMap::new(),
            transforms: BTreeMap::new(),
            sinks: BTreeMap::new(),
            schemas: Schemas::new(),
        },
        changes: Vec::new(),
    };
    planner.pipeline()?;
    for (name, kind) in &new.order {
        match kind {
            NodeKind::Source => planner.source(name)?,
            NodeKind::Transform => planner.transform(name)?,
            NodeKind::Sink => planner.sink(name)?,
        }
    }
    let removed = planner.removed();
    let Planner {
        schemas,
        mut built,
        changes,
        ..
    } = planner;
    built.schemas = schemas;
    Ok(Some(Plan {
        graph: new,
        built,
        removed,
        changes,
    }))
}

/// A plan being made: node by node in the new graph's order, each node's
/// output schema known before its consumers are looked at.
struct Planner<'a> {
    old: &'a Graph,
    old_schemas: &'a Schemas,
    new: &'a Graph,
    host: &'a PluginHost,
    /// The new graph's schemas so far.
    schemas: Schemas,
    /// The nodes built new.
    built: Prepared,
    /// What changed, for the log.
    changes: Vec<String>,
}

impl Planner<'_> {
    /// A change refused: located in the new manifest, saying the running
    /// pipeline goes on.
    fn refuse(&self, section: &str, name: Option<&str>, key: Option<&str>, why: String) -> Error {
        self.new.manifest.located.error(
            section,
            name,
            key,
            format!("{why}; the running pipeline continues unchanged (restart it to apply this)"),
        )
    }

    /// `[pipeline]` settings that can't change live.
    fn pipeline(&self) -> Result<()> {
        let (o, m) = (&self.old.manifest.pipeline, &self.new.manifest.pipeline);
        for (key, changed) in [
            ("batch_size", o.batch_size != m.batch_size),
            ("max_stack_kb", o.max_stack_kb != m.max_stack_kb),
            ("checkpoint", o.checkpoint != m.checkpoint),
        ] {
            if changed {
                return Err(self.refuse(
                    "pipeline",
                    None,
                    Some(key),
                    format!("`{key}` can't change while the pipeline runs"),
                ));
            }
        }
        Ok(())
    }

    /// A source: kept as it is, or opened when new; a changed one is
    /// refused.
    fn source(&mut self, name: &String) -> Result<()> {
        let config = &self.new.manifest.sources[name];
        match self.old.manifest.sources.get(name) {
            Some(before) if before == config => {
                let schema = self.old_schemas.get(name).cloned().flatten();
                self.schemas.insert(name.clone(), schema);
            }
            Some(_) => {
                return Err(self.refuse(
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
                let source = self.new.open_source(name)?;
                self.schemas.insert(name.clone(), Some(source.schema()));
                self.built.sources.insert(name.clone(), source);
                self.changes.push(format!("added source {name}"));
            }
        }
        if config.on_bad_record() == OnBadRecord::DeadLetter {
            self.schemas.insert(
                format!("{name}{DEAD_LETTER}"),
                Some(crate::source::bad::source_dead_letter_schema()),
            );
        }
        Ok(())
    }

    /// A transform: kept when its definition and input shape are the same,
    /// otherwise built (a successor its state is handed over to).
    fn transform(&mut self, name: &String) -> Result<()> {
        let config = &self.new.manifest.transforms[name];
        let inputs = self.new.wired_inputs(name, &self.schemas)?;
        let kept = self
            .old
            .manifest
            .transforms
            .get(name)
            .is_some_and(|before| {
                definition(before) == definition(config)
                    && self
                        .old
                        .wired_inputs(name, self.old_schemas)
                        .is_ok_and(|was| {
                            was.len() == inputs.len()
                                && was.iter().zip(&inputs).all(|((p, a), (q, b))| {
                                    p == q && same_shape_opt(a.as_ref(), b.as_ref())
                                })
                        })
            });
        if kept {
            // Every output port's schema (`name`, `name.PORT`) carries over.
            let prefix = format!("{name}.");
            for (key, schema) in self.old_schemas {
                if key == name || key.starts_with(&prefix) {
                    self.schemas.insert(key.clone(), schema.clone());
                }
            }
        } else {
            let prepared = self.new.prepare_transform(self.host, name, &self.schemas)?;
            prepared.insert_schemas(name, config, &mut self.schemas);
            self.built.transforms.insert(name.clone(), prepared);
            self.changes
                .push(if self.old.manifest.transforms.contains_key(name) {
                    format!("rebuilt transform {name} (its state is handed over)")
                } else {
                    format!("added transform {name}")
                });
        }
        Ok(())
    }

    /// A sink: kept when its config and input shape are the same; opened
    /// when new or restarted on a new file; refused when it would have to
    /// start its file over.
    fn sink(&mut self, name: &String) -> Result<()> {
        let (o, m) = (&self.old.manifest, &self.new.manifest);
        let sink = &m.sinks[name];
        let input = merge_inputs(self.new, name, &self.schemas)?;
        let restart = match o.sinks.get(name) {
            None => false,
            Some(before) => {
                let was = merge_inputs(self.old, name, self.old_schemas)
                    .ok()
                    .flatten();
                let same_input = same_shape_opt(was.as_ref(), input.as_ref());
                if before.config == sink.config && same_input {
                    self.schemas.insert(name.clone(), input);
                    return Ok(());
                }
                let same_file = before.config.path().map(|p| o.resolve(p))
                    == sink.config.path().map(|p| m.resolve(p));
                if same_file && sink.config.path().is_some() {
                    let why = if same_input {
                        "its settings changed"
                    } else {
                        "its input schema changed"
                    };
                    return Err(self.refuse(
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
        let opened = self.new.open_sink(name, input.as_ref())?;
        self.schemas.insert(name.clone(), input);
        self.built.sinks.insert(name.clone(), opened);
        self.changes.push(if restart {
            format!("restarted sink {name} (the old output is committed first)")
        } else {
            format!("added sink {name}")
        });
        Ok(())
    }

    /// The running nodes the new graph doesn't have; every change logged.
    fn removed(&mut self) -> Vec<String> {
        let new_names: BTreeSet<&String> = self.new.order.iter().map(|(n, _)| n).collect();
        let removed: Vec<String> = self
            .old
            .order
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !new_names.contains(n))
            .cloned()
            .collect();
        self.changes
            .extend(removed.iter().map(|n| format!("removed {n}")));
        if self.changes.is_empty() {
            self.changes.push("rewired inputs".into());
        }
        removed
    }
}
