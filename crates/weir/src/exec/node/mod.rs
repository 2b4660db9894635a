//! What each node's task does with its batches: one file per node kind
//! (the parallel instances of a transform run on `super::workers`). A task returns its node when the pipeline pauses for a manifest
//! reload (the node lives on in the next generation) and `None` when the
//! node is done (input ended: transforms ran `finish`, sinks committed).

mod sink;
mod source;
mod transform;

use std::sync::Arc;
use std::time::Instant;

use crate::plugin::Rows;

use super::message::{send, Edge, Msg};
use super::{Control, Generation, NodeStats};
use crate::checkpoint::Coordinator;

pub(super) use sink::run_sink;
pub(super) use source::run_source;
pub(crate) use transform::LiveTransform;
pub(super) use transform::{run_transform, TransformOutputs};

/// Sends rows with their watermark; `false` once no consumer is listening.
/// Rows for a sink leave with their pending selection applied (see
/// [`Edge::whole`]), counted as the sender's busy time.
fn send_batch(outputs: &[Edge], batch: &Rows, watermark: Option<i64>, stats: &NodeStats) -> bool {
    if batch.is_deferred() && outputs.iter().any(|e| e.whole) {
        let started = Instant::now();
        // Applied once, shared by every clone of the rows; an error here
        // is the sink's to report when it asks again.
        let _ = batch.to_batch();
        stats.busy(started.elapsed());
    }
    send(outputs, &Msg::Batch(batch.clone(), watermark))
}

/// What a node task needs besides its own node: the run's control, its
/// generation, its counters, and the checkpoint coordinator if any.
pub(in crate::exec) struct Context {
    pub name: String,
    pub stats: Arc<NodeStats>,
    pub control: Arc<Control>,
    pub generation: Arc<Generation>,
    pub checkpoints: Option<Arc<Coordinator>>,
    /// Where the checkpoints are kept, and this node's state-store runs
    /// (with `checkpoints`).
    pub checkpoint_dir: Option<std::path::PathBuf>,
    pub state_dir: Option<std::path::PathBuf>,
}

/// How a node's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::exec) enum TaskEnd {
    /// Its input ended (a transform ran `finish`), or the pipeline stops.
    Done,
    /// Paused for a reload: the node lives on in the next generation (a
    /// source keeps its position, a transform skips `finish`, a sink
    /// doesn't commit).
    Paused,
}
