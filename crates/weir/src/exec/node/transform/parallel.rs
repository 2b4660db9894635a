//! A transform node's parallel instances (`parallelism > 1`): a group of
//! consecutive batches dispatched to sibling instances on their worker
//! threads and the main instance, collected and settled in input order.

use std::sync::Arc;

use crate::plugin::Rows;
use tokio::sync::Notify;

use super::{process_one, LiveTransform};
use crate::exec::message::{Event, Inputs};
use crate::exec::policy::{self, At};
use crate::exec::workers::{Done, Workers};
use crate::exec::NodeStats;
use crate::manifest::{OnError, TransformConfig};
use crate::plugin::{Emitted, PluginInstance};
use crate::{Error, Result};

/// Batches taken from the input together, each with its watermark and
/// the input port it came in on.
pub(super) type Group = Vec<(Rows, Option<i64>, usize)>;

/// Processes `first` and, under `parallelism`, the batches that arrive
/// while it runs: each on its own instance at once, numbered from
/// `node.t.next_batch`. Returns the batches and their outcomes, in order.
pub(super) fn process_group(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    first: (Rows, Option<i64>, usize),
    input: &mut Inputs,
    stats: &NodeStats,
) -> Result<(Group, Vec<policy::Outcome>)> {
    let base = node.t.next_batch;
    // A swap or canary in progress goes batch by batch on the main
    // instance: versions must change at one batch boundary. (A node with
    // parallel instances has one input port: the graph checks.)
    if node.t.siblings.is_empty() || node.slots.successor.is_waiting() || node.canary.is_some() {
        node.set_watermark(first.1);
        let at = At {
            port: first.2,
            index: base,
        };
        let outcome = process_one(name, config, node, &first.0, at, stats)?;
        return Ok((vec![first], vec![outcome]));
    }
    let mut siblings = std::mem::take(&mut node.t.siblings);
    let Dispatched {
        group,
        running,
        on_main,
    } = dispatch(name, config, node, &mut siblings, first, input, stats);
    let on_siblings = collect(name, running, &mut siblings, stats);
    let settled = settle(
        name,
        config,
        node,
        &mut siblings,
        &group,
        on_siblings,
        stats,
    );
    node.t.siblings = siblings;
    let mut outcomes = settled?;
    if let Some(outcome) = on_main {
        outcomes.push(outcome?);
    }
    Ok((group, outcomes))
}

/// A group of batches under way: those on sibling instances (in order),
/// then at most one on the main instance.
struct Dispatched {
    group: Group,
    running: Vec<std::sync::mpsc::Receiver<Done>>,
    on_main: Option<Result<policy::Outcome>>,
}

/// Starts `first` on a sibling, then every batch that arrives before one
/// of them is done on the next free sibling; when none is free, the
/// newest batch runs on the main instance.
fn dispatch(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    siblings: &mut Vec<PluginInstance>,
    first: (Rows, Option<i64>, usize),
    input: &mut Inputs,
    stats: &NodeStats,
) -> Dispatched {
    let base = node.t.next_batch;
    let runtime = tokio::runtime::Handle::try_current().ok();
    let done = Arc::new(Notify::new());
    let workers = node
        .workers
        .get_or_insert_with(|| Workers::new(name, siblings.len()));
    let mut group = vec![first];
    let mut running = Vec::new();
    let mut on_main = None;
    loop {
        let k = group.len() - 1;
        let index = base + k as u64;
        let Some(mut sibling) = siblings.pop() else {
            // Every sibling is busy: the newest batch runs here.
            node.set_watermark(group[k].1);
            let at = At { port: 0, index };
            on_main = Some(process_one(name, config, node, &group[k].0, at, stats));
            break;
        };
        sibling.set_watermark(group[k].1);
        match workers.run(running.len(), sibling, group[k].0.clone(), index, &done) {
            Ok(result) => running.push(result),
            Err(sibling) => {
                siblings.push(sibling);
                node.set_watermark(group[k].1);
                let at = At { port: 0, index };
                on_main = Some(process_one(name, config, node, &group[k].0, at, stats));
                break;
            }
        }
        // Take the next batch if it arrives before a running one is done;
        // never hold a finished batch back waiting for input. A barrier
        // or watermark ends the group: it waits for the group's outputs.
        let next = match &runtime {
            Some(rt) => rt.block_on(async {
                tokio::select! {
                    event = input.next() => event,
                    () = done.notified() => None,
                }
            }),
            None => input.try_next(),
        };
        match next {
            Some(Event::Batch(batch, w, _)) => group.push((batch, w, 0)),
            Some(other) => {
                input.unread(other);
                break;
            }
            None => break,
        }
    }
    Dispatched {
        group,
        running,
        on_main,
    }
}

/// Waits for every sibling's batch, in order; the instances go back to
/// `siblings`.
fn collect(
    name: &str,
    running: Vec<std::sync::mpsc::Receiver<Done>>,
    siblings: &mut Vec<PluginInstance>,
    stats: &NodeStats,
) -> Vec<Result<Vec<Emitted>>> {
    let mut on_siblings = Vec::with_capacity(running.len());
    for result in running {
        match result.recv() {
            Ok((instance, outcome)) => {
                stats.called(&instance);
                siblings.push(instance);
                on_siblings.push(outcome);
            }
            Err(_) => on_siblings.push(Err(Error::Plugin {
                node: name.to_string(),
                batch: crate::BatchRef::Process,
                kind: crate::FailureKind::Trap,
                message: "a parallel instance's thread stopped".into(),
            })),
        }
    }
    on_siblings
}

/// The siblings' results as outcomes: a batch that failed on a sibling
/// goes through the failure policy (bisection, dead letters) on the main
/// instance, and the trapped sibling starts afresh.
fn settle(
    name: &str,
    config: &TransformConfig,
    node: &mut LiveTransform,
    siblings: &mut [PluginInstance],
    group: &Group,
    on_siblings: Vec<Result<Vec<Emitted>>>,
    stats: &NodeStats,
) -> Result<Vec<policy::Outcome>> {
    let base = node.t.next_batch;
    let mut outcomes = Vec::with_capacity(group.len());
    for (k, result) in on_siblings.into_iter().enumerate() {
        let index = base + k as u64;
        let batch = &group[k].0;
        match result {
            Ok(outputs) => {
                node.observe(batch, 0);
                outcomes.push(policy::Outcome {
                    outputs,
                    ..Default::default()
                });
            }
            Err(e) if config.on_error == OnError::Fail => return Err(e),
            Err(_) => {
                if let Some(e) = siblings
                    .iter_mut()
                    .filter(|s| s.trapped())
                    .find_map(|s| s.recover().err())
                {
                    return Err(e);
                }
                node.set_watermark(group[k].1);
                let at = At { port: 0, index };
                outcomes.push(process_one(name, config, node, batch, at, stats)?);
            }
        }
    }
    Ok(outcomes)
}
