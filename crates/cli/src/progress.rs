//! The live progress line of `weir run` on a stream: every few seconds,
//! rows/s per node since the last line, event-time lag where the pipeline
//! has watermarks, and the last checkpoint. A bounded run that ends
//! sooner prints only its final summary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir::exec::{Control, Snapshot};
use weir::graph::NodeKind;

/// A running progress reporter; stops when dropped.
pub(crate) struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Prints a line to stderr every `every` while the run goes on.
    pub(crate) fn start(control: Arc<Control>, every: Duration) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("weir-progress".into())
            .spawn(move || {
                let mut last = (Instant::now(), control.snapshot());
                let tick = Duration::from_millis(50);
                let mut next = Instant::now() + every;
                while !flag.load(Ordering::SeqCst) {
                    std::thread::sleep(tick);
                    if Instant::now() < next {
                        continue;
                    }
                    next += every;
                    let now = control.snapshot();
                    // Nothing runs under this control (a scaled-out run's
                    // slots report in their own summaries).
                    if now.nodes.is_empty() {
                        continue;
                    }
                    eprintln!("{}", line(&last.1, &now, last.0.elapsed()));
                    last = (Instant::now(), now);
                }
            })
            .ok();
        Progress { stop, thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The rows a node moved: a source's out, any other node's in.
pub(crate) fn rows(n: &weir::exec::NodeSummary) -> u64 {
    if n.kind == NodeKind::Source {
        n.rows_out
    } else {
        n.rows_in
    }
}

/// Event-time lag, readable whether the stream is live (seconds) or a
/// replay of old data (days).
fn lag(secs: f64) -> String {
    match secs {
        s if s < 120.0 => format!("{s:.1}s"),
        s if s < 7200.0 => format!("{:.0}m", s / 60.0),
        s if s < 172_800.0 => format!("{:.0}h", s / 3600.0),
        s => format!("{:.0}d", s / 86_400.0),
    }
}

/// One progress line: what changed between two snapshots `took` apart.
pub(crate) fn line(before: &Snapshot, now: &Snapshot, took: Duration) -> String {
    let secs = took.as_secs_f64().max(1e-9);
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let mut parts = Vec::new();
    for node in &now.nodes {
        let was = before
            .nodes
            .iter()
            .find(|b| b.name == node.name)
            .map_or(0, rows);
        let rate = (rows(node).saturating_sub(was)) as f64 / secs;
        let mut part = format!("{} {:.0} rows/s", node.name, rate);
        if let Some(w) = node.watermark {
            part.push_str(&format!(" lag {}", lag((now_us - w).max(0) as f64 / 1e6)));
        }
        // Where the pipeline is slow: batches waiting at this node's
        // input, and the share of the interval it waited for room
        // downstream.
        let queued: u64 = now
            .edges
            .iter()
            .filter(|e| e.to == node.name)
            .map(|e| e.queued)
            .sum();
        if queued > 0 {
            part.push_str(&format!(" queue {queued}"));
        }
        let blocked = |s: &Snapshot| -> f64 {
            s.edges
                .iter()
                .filter(|e| weir::manifest::producer(&e.from).0 == node.name)
                .map(|e| e.backpressure.as_secs_f64())
                .sum()
        };
        let share = (blocked(now) - blocked(before)) / secs;
        if share >= 0.005 {
            part.push_str(&format!(" backpressure {:.0}%", (share * 100.0).min(100.0)));
        }
        parts.push(part);
    }
    let mut text = format!("progress: {}", parts.join(" | "));
    if now.checkpointing {
        match now.last_checkpoint {
            Some((id, age)) => text.push_str(&format!(
                " | checkpoint #{id} {:.1}s ago",
                age.as_secs_f64()
            )),
            None => text.push_str(" | no checkpoint yet"),
        }
    }
    text
}
