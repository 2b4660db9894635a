//! `scale_out = "partitions"`: one pipeline per partition of a Kafka
//! topic, each with its own state, checkpoint directory and transactional
//! id, and the partitions shared among every process started with the
//! manifest through the source's consumer group.
//!
//! This process joins the group as a member that reads nothing; the group
//! gives it partitions. For each one it runs the pipeline on that
//! partition alone, resumed from `<checkpoint dir>/slot-<partition>` —
//! a directory every process must reach. When the group takes a partition
//! away (a process joined, or this one is stopping), its pipeline stops
//! the way Ctrl-C stops one (final checkpoint, transaction committed)
//! before the partition is given up; when a process dies, the group gives
//! its partitions to the others after `session_timeout_ms`, and they
//! resume them from the dead one's last checkpoint.
//!
//! Keyed state (dedupe, windows, joins) is then per partition: it is
//! correct as long as records with the same key are in the same partition
//! (producers partitioning by key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use weir::exec::{self, Control, RunSummary};
use weir::graph::Graph;
use weir::kafka::{Assignment, Membership};
use weir::manifest::Manifest;
use weir::plugin::PluginHost;
use weir::sink::SinkConfig;
use weir::source::{KafkaSourceConfig, ScaleOut, SourceConfig};

/// The source a manifest scales out by, if any.
pub(crate) fn scaled_source(m: &Manifest) -> Option<(&str, &KafkaSourceConfig)> {
    m.sources.iter().find_map(|(name, s)| match s {
        SourceConfig::Kafka(c) if c.scale_out == Some(ScaleOut::Partitions) => {
            Some((name.as_str(), c.as_ref()))
        }
        _ => None,
    })
}

/// The manifest of the pipeline on `partition` alone.
fn slot_manifest(m: &Manifest, source: &str, partition: i32) -> anyhow::Result<Manifest> {
    let mut slot = m.clone();
    let checkpoint = slot.pipeline.checkpoint.as_mut().context(
        "scale_out = \"partitions\" moves each partition's state between processes through \
         its checkpoints: add [pipeline.checkpoint] with a `dir` every process reaches",
    )?;
    checkpoint.dir = checkpoint.dir.join(format!("slot-{partition}"));
    let group = match slot.sources.get_mut(source) {
        Some(SourceConfig::Kafka(c)) => {
            c.scale_out = None;
            c.partitions = Some(vec![partition]);
            // The group is the slots' membership; each slot's own offset
            // commits (for lag monitoring) go to a group of their own.
            c.group = format!("{}.slots", c.group);
            c.group.clone()
        }
        _ => anyhow::bail!("source {source:?} is not a kafka source"),
    };
    for (name, sink) in slot.sinks.iter_mut() {
        if let SinkConfig::Kafka(c) = &mut sink.config {
            let base = c
                .transactional_id
                .clone()
                .unwrap_or_else(|| format!("weir.{name}.{group}"));
            c.transactional_id = Some(format!("{base}.slot-{partition}"));
        }
        if let Some(path) = sink.config.path_mut() {
            *path = with_slot(path, partition);
        }
    }
    Ok(slot)
}

/// `out/orders.parquet` → `out/orders.slot-3.parquet`.
fn with_slot(path: &Path, partition: i32) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.slot-{partition}.{}", ext.to_string_lossy()),
        None => format!("{stem}.slot-{partition}"),
    };
    path.with_file_name(name)
}

/// A partition's pipeline, running on its own thread.
struct Slot {
    control: Arc<Control>,
    thread: JoinHandle<anyhow::Result<RunSummary>>,
}

/// What the slots have done, shared with the group's callback.
#[derive(Default)]
struct Slots {
    running: BTreeMap<i32, Slot>,
    finished: Vec<RunSummary>,
    failed: Option<anyhow::Error>,
}

impl Slots {
    fn start(
        &mut self,
        m: &Manifest,
        source: &str,
        partition: i32,
        host: &PluginHost,
        runtime: &tokio::runtime::Handle,
    ) {
        if self.running.contains_key(&partition) {
            // Assigned again without a revocation between: the slot runs
            // on. A second pipeline on the partition would resume from the
            // checkpoint the first is still writing after, and fence its
            // producer mid-transaction.
            tracing::info!(partition, "slot already running here");
            return;
        }
        let control = Arc::new(Control::default());
        let (m, source, host, runtime, c) = (
            m.clone(),
            source.to_string(),
            host.clone(),
            runtime.clone(),
            control.clone(),
        );
        let thread = std::thread::spawn(move || {
            let graph = Graph::new(slot_manifest(&m, &source, partition)?)?;
            let prepared = graph.prepare(&host)?;
            Ok(runtime.block_on(exec::run(&graph, prepared, c))?)
        });
        tracing::info!(partition, "slot started");
        self.running.insert(partition, Slot { control, thread });
    }

    fn stop(&mut self, partition: i32) {
        let Some(slot) = self.running.remove(&partition) else {
            return;
        };
        slot.control.request_stop();
        match slot.thread.join() {
            Ok(Ok(summary)) => self.finished.push(summary),
            Ok(Err(e)) => {
                tracing::error!(partition, error = %format!("{e:#}"), "slot failed");
                self.failed
                    .get_or_insert(e.context(format!("the pipeline of partition {partition}")));
            }
            Err(_) => {
                self.failed.get_or_insert(anyhow::anyhow!(
                    "the pipeline of partition {partition} panicked"
                ));
            }
        }
        tracing::info!(partition, "slot stopped and checkpointed");
    }

    /// Slots whose pipeline ended by itself (failed, or its input ended).
    fn reap(&mut self) {
        let done: Vec<i32> = self
            .running
            .iter()
            .filter(|(_, s)| s.thread.is_finished())
            .map(|(p, _)| *p)
            .collect();
        for p in done {
            self.stop(p);
        }
    }
}

/// Runs this process's share of the partitions until Ctrl-C (or a slot
/// fails); the summary adds up every slot's.
pub(crate) fn run(
    graph: &Graph,
    host: &PluginHost,
    control: &Arc<Control>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<RunSummary> {
    let m = &graph.manifest;
    let (source, config) = scaled_source(m).context("no source with scale_out")?;
    // Fails early on a manifest no slot could run.
    slot_manifest(m, source, 0)?;
    let slots = Arc::new(Mutex::new(Slots::default()));
    let (shared, manifest, name, host2, handle) = (
        slots.clone(),
        m.clone(),
        source.to_string(),
        host.clone(),
        runtime.handle().clone(),
    );
    let membership = Membership::join(source, config, move |change| {
        let Ok(mut slots) = shared.lock() else { return };
        match change {
            Assignment::Assigned(partitions) => {
                eprintln!("weir: this process runs partitions {partitions:?}");
                for p in partitions {
                    slots.start(&manifest, &name, p, &host2, &handle);
                }
            }
            Assignment::Revoked(partitions) => {
                for p in partitions {
                    slots.stop(p);
                }
            }
        }
    })?;
    while !control.stopping() {
        membership.poll(Duration::from_millis(100));
        let Ok(mut s) = slots.lock() else { break };
        s.reap();
        if s.failed.is_some() {
            control.request_stop();
        }
    }
    let mut s = slots.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let running: Vec<i32> = s.running.keys().copied().collect();
    for p in running {
        s.stop(p);
    }
    drop(s);
    // Leaving the group hands the partitions to the others at once.
    drop(membership);
    let mut s = slots.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    if let Some(e) = s.failed.take() {
        return Err(e);
    }
    let mut summary = merge(std::mem::take(&mut s.finished));
    summary.stopped = true;
    Ok(summary)
}

/// One summary for every slot's run: rows and times added up per node.
fn merge(summaries: Vec<RunSummary>) -> RunSummary {
    let mut all = summaries.into_iter();
    let Some(mut total) = all.next() else {
        return RunSummary {
            elapsed: Duration::ZERO,
            nodes: Vec::new(),
            peak_rss: exec::peak_rss(),
            checkpoint: None,
            load: None,
            stopped: true,
        };
    };
    for s in all {
        total.elapsed = total.elapsed.max(s.elapsed);
        for (t, n) in total.nodes.iter_mut().zip(s.nodes) {
            t.rows_in += n.rows_in;
            t.rows_out += n.rows_out;
            t.batches_in += n.batches_in;
            t.batches_out += n.batches_out;
            t.bytes_in += n.bytes_in;
            t.bytes_out += n.bytes_out;
            t.busy += n.busy;
            t.failed_batches += n.failed_batches;
            t.dead_rows += n.dead_rows;
            t.bad_records += n.bad_records;
        }
        if let (Some(t), Some(c)) = (&mut total.checkpoint, s.checkpoint) {
            t.completed += c.completed;
        }
    }
    total.peak_rss = exec::peak_rss();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_assigned_twice_keeps_its_running_slot() {
        // A slot that runs until told to stop, as a pipeline on a stream.
        let control = Arc::new(Control::default());
        let c = control.clone();
        let thread = std::thread::spawn(move || {
            while !c.stopping() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(merge(Vec::new()))
        });
        let mut slots = Slots::default();
        slots.running.insert(
            3,
            Slot {
                control: control.clone(),
                thread,
            },
        );
        let m = Manifest::parse(
            "[sources.s]\ntype = \"generate\"\n\n[sinks.out]\ntype = \"blackhole\"\ninputs = [\"s\"]\n",
            Path::new("pipeline.toml"),
        )
        .unwrap();
        let host = PluginHost::new(&weir::plugin::EngineConfig::default()).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        slots.start(&m, "s", 3, &host, runtime.handle());
        assert_eq!(slots.running.len(), 1);
        assert!(Arc::ptr_eq(&control, &slots.running[&3].control));
        assert!(!control.stopping(), "the running slot was stopped");
        slots.stop(3);
        assert!(slots.failed.is_none(), "{:?}", slots.failed);
        assert_eq!(slots.finished.len(), 1);
    }

    #[test]
    fn a_slot_s_file_gets_its_partition_before_the_extension() {
        let p = super::with_slot(std::path::Path::new("out/orders.parquet"), 3);
        assert_eq!(p, std::path::Path::new("out/orders.slot-3.parquet"));
    }
}
