//! Resuming a run from its newest checkpoint, before any data moves:
//! sinks publish that checkpoint's files and drop anything written after
//! it, sources seek, plugins take their state back.

use std::sync::Arc;

use crate::checkpoint::{self, Coordinator, Loaded, NodeState};
use crate::graph::{Graph, Prepared};
use crate::{Error, Result};

/// Starts the coordinator of a checkpointed pipeline, after resuming
/// `live` from the newest checkpoint; `(None, None)` without checkpoints.
pub(super) fn resume(
    graph: &Graph,
    live: &mut Prepared,
) -> Result<(Option<Arc<Coordinator>>, Option<Loaded>)> {
    let m = &graph.manifest;
    let (Some(config), Some(dir)) = (&m.pipeline.checkpoint, m.checkpoint_dir()) else {
        return Ok((None, None));
    };
    let loaded = checkpoint::latest(&dir)?;
    let fail =
        |node: &str, e: &dyn std::fmt::Display| {
            Error::checkpoint(format!(
            "can't resume node {node:?} from {}: {e}; if the pipeline changed so that it can't \
             continue from there, move {} away to start over",
            loaded.as_ref().map_or(dir.clone(), |l| l.path.clone()).display(),
            dir.display()
        ))
        };
    if let Some(loaded) = &loaded {
        tracing::info!(checkpoint = loaded.id, dir = %dir.display(), finished = loaded.finished,
            "resuming from the last checkpoint");
        for (name, state) in &loaded.nodes {
            match state {
                NodeState::Source { position, .. } => {
                    let Some(source) = live.sources.get_mut(name) else {
                        tracing::warn!(node = %name, "the checkpoint has a source the manifest no longer has");
                        continue;
                    };
                    match position {
                        Some(position) => source.seek(position).map_err(|e| fail(name, &e))?,
                        None => tracing::warn!(node = %name, delivery = %source.delivery(),
                            "this source can't resume mid-way; it starts over"),
                    }
                }
                NodeState::Transform {
                    state, next_batch, ..
                } => {
                    let Some(node) = live.transforms.get_mut(name) else {
                        tracing::warn!(node = %name, "the checkpoint has a transform the manifest no longer has");
                        continue;
                    };
                    if let Some(state) = state {
                        node.instance.restore(state).map_err(|e| fail(name, &e))?;
                    }
                    node.next_batch = *next_batch;
                }
                NodeState::Sink(state) => {
                    // The checkpoint is durable: its files are published
                    // (again: renaming is idempotent).
                    for rename in &state.pending {
                        rename.apply().map_err(|e| fail(name, &e))?;
                    }
                    match live.sinks.get_mut(name) {
                        Some(sink) => sink.resume(state)?,
                        None => {
                            tracing::warn!(node = %name, "the checkpoint has a sink the manifest no longer has")
                        }
                    }
                }
            }
        }
        for name in graph.order.iter().map(|(n, _)| n) {
            if !loaded.nodes.contains_key(name) {
                tracing::warn!(node = %name, "not in the checkpoint (added since?): starts fresh");
            }
        }
    }
    // A sink with nothing in the checkpoint still clears temporary files
    // a killed run left.
    for (name, sink) in live.sinks.iter_mut() {
        let covered = loaded.as_ref().is_some_and(|l| l.nodes.contains_key(name));
        if !covered {
            sink.resume(&checkpoint::SinkState::default())?;
        }
    }
    let nodes = graph.order.iter().map(|(n, _)| n.clone()).collect();
    let coordinator = Coordinator::start(config, dir, nodes, loaded.as_ref().map_or(0, |l| l.id))?;
    Ok((Some(Arc::new(coordinator)), loaded))
}
