//! The run summary as `weir run` prints it: one line per node, the
//! totals, what a stop left behind, and checkpoint delivery.

use std::fmt::Write as _;

use serde_json::{json, Value};

use weir::exec::{CheckpointSummary, NodeSummary, RunSummary};
use weir::graph::NodeKind;

/// The whole summary, for the terminal.
pub fn render(summary: &RunSummary) -> String {
    let mut out = format!(
        "{:<16} {:<10} {:>12} {:>12} {:>10} {:>14}\n",
        "node", "kind", "rows in", "rows out", "busy", "rows/s"
    );
    for n in &summary.nodes {
        out.push_str(&node_line(n));
        out.push('\n');
    }
    out.push_str(&totals(summary));
    if summary.stopped {
        out.push_str(&stop(summary.checkpoint.as_ref()));
    }
    if let Some(c) = &summary.checkpoint {
        out.push_str(&checkpoints(c));
    }
    out
}

fn node_line(n: &NodeSummary) -> String {
    let rows = if n.kind == NodeKind::Source {
        n.rows_out
    } else {
        n.rows_in
    };
    let secs = n.busy.as_secs_f64();
    let rate = if secs > 0.0 {
        format!("{:.0}", rows as f64 / secs)
    } else {
        "-".into()
    };
    let kind = n.kind.name();
    let rows_in = if n.kind == NodeKind::Source {
        "-".to_string()
    } else {
        n.rows_in.to_string()
    };
    let rows_out = if n.kind == NodeKind::Sink {
        "-".to_string()
    } else {
        n.rows_out.to_string()
    };
    let mut line = format!(
        "{:<16} {:<10} {:>12} {:>12} {:>9.1}ms {:>14}",
        n.name,
        kind,
        rows_in,
        rows_out,
        secs * 1000.0,
        rate
    );
    if n.kind == NodeKind::Source && n.dead_rows > 0 {
        let _ = write!(line, "  bad records: {}", n.dead_rows);
    }
    if n.failed_batches > 0 {
        let _ = write!(
            line,
            "  failed batches: {}, dead-lettered rows: {}",
            n.failed_batches, n.dead_rows
        );
    }
    if n.swaps > 0 {
        let _ = write!(
            line,
            "  swaps: {} (longest switch {:.2}ms)",
            n.swaps,
            n.longest_switch.as_secs_f64() * 1e3
        );
    }
    line
}

fn totals(summary: &RunSummary) -> String {
    let total = summary
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Source)
        .map(|n| n.rows_out)
        .sum::<u64>();
    let secs = summary.elapsed.as_secs_f64();
    let mut line = format!(
        "{total} rows in {:.3}s ({:.0} rows/s)",
        secs,
        if secs > 0.0 { total as f64 / secs } else { 0.0 }
    );
    if let Some(load) = summary.load {
        // Said apart so that rows/s reads as data time, and a slow first
        // compile (a JS or Python plugin) is not a mystery.
        let _ = write!(
            line,
            ", after {:.3}s loading and compiling plugins",
            load.as_secs_f64()
        );
    }
    if let Some(bytes) = summary.peak_rss {
        let _ = write!(line, ", peak memory {} MiB", bytes >> 20);
    }
    line
}

/// What a stop on request left behind, said plainly.
fn stop(checkpoint: Option<&CheckpointSummary>) -> String {
    match checkpoint {
        Some(c) => format!(
            "\nstopped before the input ended: saved as checkpoint #{} (open windows and \
             plugin state kept, not emitted); run again to continue where it stopped",
            c.last.unwrap_or_default()
        ),
        None => "\nstopped before the input ended, without checkpoints: the rows above were \
                 written and plugin state (open windows) was flushed as final; a new run \
                 starts from the beginning of the input"
            .to_string(),
    }
}

fn checkpoints(c: &CheckpointSummary) -> String {
    let mut out = format!("\ncheckpoints: {} taken", c.completed);
    if let Some(last) = c.last {
        let _ = write!(out, ", last #{last}");
    }
    if let Some(from) = c.resumed_from {
        let _ = write!(out, "; resumed from #{from}");
    }
    let sources: Vec<String> = c
        .sources
        .iter()
        .map(|(name, d)| format!("{name} {d}"))
        .collect();
    let sinks: Vec<String> = c
        .sinks
        .iter()
        .map(|(name, once)| {
            format!(
                "{name} {}",
                if *once {
                    "exactly-once"
                } else {
                    "at-least-once"
                }
            )
        })
        .collect();
    let _ = write!(
        out,
        "\ndelivery across a crash: sources {}; sinks {}",
        sources.join(", "),
        sinks.join(", ")
    );
    out
}

/// The summary as JSON (`weir run --summary-json`): the run, each node's
/// figures, and the delivery guarantees under checkpoints. Durations are
/// seconds, sizes bytes, watermarks µs since the Unix epoch.
pub fn to_json(summary: &RunSummary) -> Value {
    let sources: u64 = summary
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Source)
        .map(|n| n.rows_out)
        .sum();
    json!({
        "status": if summary.stopped { "stopped" } else { "completed" },
        "elapsed_seconds": summary.elapsed.as_secs_f64(),
        "load_seconds": summary.load.map(|d| d.as_secs_f64()),
        "rows": sources,
        "peak_rss_bytes": summary.peak_rss,
        "nodes": summary.nodes.iter().map(node_json).collect::<Vec<_>>(),
        "checkpoints": summary.checkpoint.as_ref().map(checkpoints_json),
    })
}

/// What `--summary-json` holds when the run failed: the error as printed.
pub fn failed_json(error: &str) -> Value {
    json!({ "status": "failed", "error": error })
}

fn node_json(n: &NodeSummary) -> Value {
    let kind = n.kind.name();
    let mut node = json!({
        "name": n.name,
        "kind": kind,
        "rows_in": n.rows_in,
        "rows_out": n.rows_out,
        "batches_in": n.batches_in,
        "batches_out": n.batches_out,
        "bytes_in": n.bytes_in,
        "bytes_out": n.bytes_out,
        "busy_seconds": n.busy.as_secs_f64(),
        "failed_batches": n.failed_batches,
        "dead_lettered_rows": n.dead_rows,
        "watermark_us": n.watermark,
    });
    if let Some(policy) = n.policy {
        node["policy"] = json!(policy);
    }
    if n.kind == NodeKind::Source {
        node["bad_records"] = json!(n.bad_records);
    }
    if n.kind == NodeKind::Transform {
        node["swaps"] = json!(n.swaps);
        node["rejected_versions"] = json!(n.rejected_versions);
        node["longest_switch_seconds"] = json!(n.longest_switch.as_secs_f64());
        if let Some(calls) = &n.calls {
            node["plugin_calls"] = json!(calls.calls());
            node["plugin_call_seconds"] = json!(calls.total.as_secs_f64());
        }
        node["plugin_memory_bytes"] = json!(n.plugin_memory);
    }
    node
}

fn checkpoints_json(c: &CheckpointSummary) -> Value {
    json!({
        "completed": c.completed,
        "last": c.last,
        "resumed_from": c.resumed_from,
        "delivery": {
            "sources": c.sources.iter().map(|(name, d)| (name.clone(), json!(d.to_string())))
                .collect::<serde_json::Map<_, _>>(),
            "sinks": c.sinks.iter().map(|(name, once)| {
                (name.clone(), json!(if *once { "exactly-once" } else { "at-least-once" }))
            }).collect::<serde_json::Map<_, _>>(),
        },
    })
}
