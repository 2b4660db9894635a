//! `weir run --metrics ADDR`: `/metrics` in the Prometheus text format
//! (version 0.0.4), encoded by `prometheus-client`.
//!
//! Nothing on the data path knows about Prometheus: the nodes keep their
//! relaxed atomic counters (the same ones the progress line and the run
//! summary read) and each scrape reads them through a
//! [`Control::snapshot`], so metrics cost nothing between scrapes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use weir::exec::{Control, NodeSummary, Snapshot, CALL_SECONDS_BUCKETS};
use weir::graph::NodeKind;

mod process;
use process::process;

/// The metrics endpoint; stops serving when dropped.
pub(crate) struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    /// Where it listens (the port the OS picked for `:0`).
    pub(crate) addr: SocketAddr,
}

impl MetricsServer {
    /// Listens on `addr` and serves `control`'s metrics until dropped.
    pub(crate) fn start(addr: SocketAddr, control: Arc<Control>) -> anyhow::Result<MetricsServer> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            anyhow::anyhow!("can't serve metrics on {addr}: {e} (is another process on that port?)")
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("metrics: {addr} is not an IP address"))?;
        let server = Arc::new(server);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Pipeline {
            control,
            started: SystemTime::now(),
        }));
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("weir-metrics".into())
            .spawn(move || serve(&serving, &registry))?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr,
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, registry: &Registry) {
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("");
        let response = match path {
            "/metrics" => {
                let mut text = String::new();
                match prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
                    Ok(()) => tiny_http::Response::from_string(text).with_header(header(
                        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    )),
                    Err(_) => {
                        tiny_http::Response::from_string("encoding failed\n").with_status_code(500)
                    }
                }
            }
            _ => tiny_http::Response::from_string("weir serves /metrics\n").with_status_code(404),
        };
        let _ = request.respond(response);
    }
}

fn header(content_type: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        .unwrap_or_else(|()| unreachable!("a static, valid header"))
}

/// Reads a snapshot of the running pipeline at each scrape.
struct Pipeline {
    control: Arc<Control>,
    started: SystemTime,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pipeline")
    }
}

pub(super) type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One metric family: its descriptor, then a sample per label set.
pub(super) fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help, unit, kind): (&str, &str, Option<Unit>, MetricType),
    samples: impl IntoIterator<Item = (Labels<'a>, M)>,
) -> Result<(), std::fmt::Error> {
    let samples: Vec<_> = samples.into_iter().collect();
    if samples.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, unit.as_ref(), kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

pub(super) fn counter(name: &'static str, help: &'static str, unit: Option<Unit>) -> Desc {
    (name, help, unit, MetricType::Counter)
}

pub(super) fn gauge(name: &'static str, help: &'static str, unit: Option<Unit>) -> Desc {
    (name, help, unit, MetricType::Gauge)
}

pub(super) type Desc = (&'static str, &'static str, Option<Unit>, MetricType);

fn node_labels(n: &NodeSummary) -> Labels<'_> {
    vec![("node", n.name.as_str()), ("kind", n.kind.name())]
}

/// A per-node counter over the nodes `pick` has a value for.
fn per_node<N>(
    encoder: &mut DescriptorEncoder<'_>,
    desc: Desc,
    nodes: &[NodeSummary],
    pick: impl Fn(&NodeSummary) -> Option<N>,
) -> Result<(), std::fmt::Error>
where
    ConstCounter<N>: EncodeMetric,
{
    let samples = nodes
        .iter()
        .filter_map(|n| pick(n).map(|v| (node_labels(n), ConstCounter::new(v))));
    family(encoder, desc, samples)
}

impl Collector for Pipeline {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snapshot = self.control.snapshot();
        let e = &mut encoder;
        nodes(e, &snapshot.nodes)?;
        failures(e, &snapshot.nodes)?;
        plugins(e, &snapshot.nodes)?;
        edges(e, &snapshot)?;
        checkpoints(e, &snapshot)?;
        lag(e, &snapshot.nodes)?;
        process(e, self.started)
    }
}

fn nodes(e: &mut DescriptorEncoder<'_>, nodes: &[NodeSummary]) -> Result<(), std::fmt::Error> {
    let input = |n: &NodeSummary| n.kind != NodeKind::Source;
    let output = |n: &NodeSummary| n.kind != NodeKind::Sink;
    per_node(
        e,
        counter("weir_node_received_rows", "Rows a node received.", None),
        nodes,
        |n| input(n).then_some(n.rows_in),
    )?;
    per_node(
        e,
        counter("weir_node_sent_rows", "Rows a node emitted.", None),
        nodes,
        |n| output(n).then_some(n.rows_out),
    )?;
    per_node(
        e,
        counter(
            "weir_node_received",
            "Arrow memory of the batches a node received.",
            Some(Unit::Bytes),
        ),
        nodes,
        |n| input(n).then_some(n.bytes_in),
    )?;
    per_node(
        e,
        counter(
            "weir_node_sent",
            "Arrow memory of the batches a node emitted.",
            Some(Unit::Bytes),
        ),
        nodes,
        |n| output(n).then_some(n.bytes_out),
    )?;
    per_node(
        e,
        counter(
            "weir_node_received_batches",
            "Batches a node received.",
            None,
        ),
        nodes,
        |n| input(n).then_some(n.batches_in),
    )?;
    per_node(
        e,
        counter("weir_node_sent_batches", "Batches a node emitted.", None),
        nodes,
        |n| output(n).then_some(n.batches_out),
    )?;
    per_node(
        e,
        counter(
            "weir_node_busy",
            "Time a node spent on its own work: reading, plugin calls, writing.",
            Some(Unit::Seconds),
        ),
        nodes,
        |n| Some(n.busy.as_secs_f64()),
    )
}

fn failures(e: &mut DescriptorEncoder<'_>, nodes: &[NodeSummary]) -> Result<(), std::fmt::Error> {
    fn with_policy(n: &NodeSummary, v: u64) -> (Labels<'_>, ConstCounter) {
        let mut labels = node_labels(n);
        labels.push(("policy", n.policy.unwrap_or("none")));
        (labels, ConstCounter::new(v))
    }
    family(
        e,
        counter(
            "weir_plugin_failed_batches",
            "Batches a transform's plugin failed on (error, trap, limit, malformed output), by \
             the node's on_error policy.",
            None,
        ),
        nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Transform)
            .map(|n| with_policy(n, n.failed_batches)),
    )?;
    family(
        e,
        counter(
            "weir_source_bad_records",
            "Records a source could not read, by its on_bad_record policy.",
            None,
        ),
        nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Source)
            .map(|n| with_policy(n, n.bad_records)),
    )?;
    per_node(
        e,
        counter(
            "weir_dead_lettered_rows",
            "Rows a node sent to NODE.dead_letter (a source's bad records included).",
            None,
        ),
        nodes,
        |n| (n.kind != NodeKind::Sink).then_some(n.dead_rows),
    )
}

fn plugins(e: &mut DescriptorEncoder<'_>, nodes: &[NodeSummary]) -> Result<(), std::fmt::Error> {
    let transforms: Vec<&NodeSummary> = nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Transform)
        .collect();
    if !transforms.is_empty() {
        let mut metric = e.encode_descriptor(
            "weir_plugin_call_duration",
            "Time a plugin's process call took, in the plugin (its work and the columns it \
             fetched).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for n in &transforms {
            let calls = n.calls.clone().unwrap_or_default();
            // Per bucket, not cumulative: the encoder sums them into the
            // `le` series.
            let buckets: Vec<(f64, u64)> = CALL_SECONDS_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .enumerate()
                .map(|(k, bound)| (bound, calls.counts.get(k).copied().unwrap_or(0)))
                .collect();
            metric
                .encode_family(&vec![("node", n.name.as_str())])?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                calls.total.as_secs_f64(),
                calls.calls(),
                &buckets,
                None,
            )?;
        }
    }
    let per_transform = |pick: fn(&NodeSummary) -> u64| {
        transforms
            .iter()
            .map(move |n| (vec![("node", n.name.as_str())], ConstCounter::new(pick(n))))
    };
    family(
        e,
        counter(
            "weir_plugin_swaps",
            "Hot swaps to a new plugin version.",
            None,
        ),
        per_transform(|n| n.swaps),
    )?;
    family(
        e,
        counter(
            "weir_plugin_rejected_versions",
            "New plugin versions rejected (load, init, first batch, canary or replay \
             failed); the running one was kept.",
            None,
        ),
        per_transform(|n| n.rejected_versions),
    )?;
    family(
        e,
        gauge(
            "weir_plugin_memory",
            "Linear memory of the node's largest plugin instance.",
            Some(Unit::Bytes),
        ),
        transforms.iter().filter_map(|n| {
            n.plugin_memory
                .map(|m| (vec![("node", n.name.as_str())], ConstGauge::new(m as i64)))
        }),
    )
}

fn edges(e: &mut DescriptorEncoder<'_>, snapshot: &Snapshot) -> Result<(), std::fmt::Error> {
    family(
        e,
        gauge(
            "weir_edge_queued_messages",
            "Messages (batches, watermarks, barriers) a producer sent on an edge that the \
             consumer has not taken yet.",
            None,
        ),
        snapshot.edges.iter().map(|edge| {
            (
                vec![("from", edge.from.as_str()), ("to", edge.to.as_str())],
                ConstGauge::new(edge.queued as i64),
            )
        }),
    )?;
    family(
        e,
        counter(
            "weir_edge_backpressure",
            "Time a producer waited for room on a full edge (its consumer is slower).",
            Some(Unit::Seconds),
        ),
        snapshot.edges.iter().map(|edge| {
            (
                vec![("from", edge.from.as_str()), ("to", edge.to.as_str())],
                ConstCounter::new(edge.backpressure.as_secs_f64()),
            )
        }),
    )
}

fn checkpoints(e: &mut DescriptorEncoder<'_>, snapshot: &Snapshot) -> Result<(), std::fmt::Error> {
    let Some(status) = &snapshot.checkpoints else {
        return Ok(());
    };
    family(
        e,
        counter(
            "weir_checkpoints",
            "Checkpoints completed in this run.",
            None,
        ),
        [(vec![], ConstCounter::new(status.completed))],
    )?;
    let Some(last) = &status.last else {
        return Ok(());
    };
    family(
        e,
        gauge(
            "weir_checkpoint_last_duration",
            "How long the newest checkpoint took, from request to durable.",
            Some(Unit::Seconds),
        ),
        [(vec![], ConstGauge::new(last.took.as_secs_f64()))],
    )?;
    family(
        e,
        gauge(
            "weir_checkpoint_last_size",
            "Bytes the newest checkpoint wrote (plugin state and metadata).",
            Some(Unit::Bytes),
        ),
        [(vec![], ConstGauge::new(last.bytes as i64))],
    )?;
    family(
        e,
        gauge(
            "weir_checkpoint_last_success_timestamp",
            "When the newest checkpoint became durable.",
            Some(Unit::Seconds),
        ),
        [(vec![], ConstGauge::new(last.unix_ms as f64 / 1e3))],
    )
}

fn lag(e: &mut DescriptorEncoder<'_>, nodes: &[NodeSummary]) -> Result<(), std::fmt::Error> {
    let now_us = unix_secs(SystemTime::now()) * 1e6;
    family(
        e,
        gauge(
            "weir_source_event_time_lag",
            "Wall clock minus a source's event-time watermark.",
            Some(Unit::Seconds),
        ),
        nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Source)
            .filter_map(|n| {
                let w = n.watermark? as f64;
                Some((
                    vec![("node", n.name.as_str())],
                    ConstGauge::new(((now_us - w) / 1e6).max(0.0)),
                ))
            }),
    )
}

pub(super) fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}
