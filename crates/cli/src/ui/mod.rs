//! `weir run --ui ADDR`: a live view of the running pipeline in the
//! browser. One page (`index.html`, compiled into the binary: no CDN, no
//! build step) draws the graph (`/graph.svg`, laid out by layout-rs) and
//! fills each node with its figures from `/events`, a server-sent event
//! stream of the pipeline's state twice a second. `/state` answers the
//! same state once, for scripts.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use weir::exec::{Control, Snapshot};

use crate::progress::rows;

const PAGE: &str = include_str!("index.html");
/// How often `/events` sends the state.
const EVERY: Duration = Duration::from_millis(500);

/// The live view's server; stops when dropped (open event streams end).
pub(crate) struct UiServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

/// What the page is served with.
struct Shared {
    control: Arc<Control>,
    svg: String,
    title: String,
    stop: Arc<AtomicBool>,
}

impl UiServer {
    /// Serves the live view of `control`'s pipeline, drawn as `svg`.
    pub(crate) fn start(
        addr: SocketAddr,
        control: Arc<Control>,
        svg: String,
        title: String,
    ) -> anyhow::Result<UiServer> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            anyhow::anyhow!(
                "can't serve the live view on {addr}: {e} (is another process on that port?)"
            )
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("ui: {addr} is not an IP address"))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            control,
            svg,
            title,
            stop: stop.clone(),
        });
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("weir-ui".into())
            .spawn(move || serve(&serving, &shared))?;
        Ok(UiServer {
            server,
            stop,
            thread: Some(thread),
            addr,
        })
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|()| unreachable!("static, valid headers"))
}

fn serve(server: &tiny_http::Server, shared: &Arc<Shared>) {
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let (body, kind) = match path.as_str() {
            "/" | "/index.html" => (
                PAGE.replace("{{title}}", &html_escape(&shared.title)),
                "text/html; charset=utf-8",
            ),
            "/graph.svg" => (shared.svg.clone(), "image/svg+xml"),
            "/state" => (
                state(&shared.control.snapshot(), None, Duration::ZERO).to_string(),
                "application/json",
            ),
            "/events" => {
                // A stream per browser tab, on its own thread: the
                // accept loop stays free.
                let shared = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("weir-ui-events".into())
                    .spawn(move || events(request, &shared));
                continue;
            }
            _ => {
                let _ = request
                    .respond(tiny_http::Response::from_string("not found\n").with_status_code(404));
                continue;
            }
        };
        let _ = request.respond(
            tiny_http::Response::from_string(body).with_header(header("Content-Type", kind)),
        );
    }
}

/// Server-sent events: the state every [`EVERY`] until the run ends or
/// the browser goes away. Written by hand on the raw connection: the
/// response writer's chunked encoder would hold small events back.
fn events(request: tiny_http::Request, shared: &Shared) {
    let mut out = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                Connection: close\r\n\r\n";
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let mut before: Option<(Instant, Snapshot)> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        let now = shared.control.snapshot();
        let took = before.as_ref().map_or(Duration::ZERO, |(t, _)| t.elapsed());
        let data = state(&now, before.as_ref().map(|(_, s)| s), took);
        if write!(out, "data: {data}\n\n")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
        before = Some((Instant::now(), now));
        let until = Instant::now() + EVERY;
        while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = write!(out, "event: end\ndata: {{}}\n\n").and_then(|()| out.flush());
}

/// The pipeline's state as the page reads it; rates against `before`,
/// `took` earlier.
fn state(now: &Snapshot, before: Option<&Snapshot>, took: Duration) -> Value {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let nodes: Vec<Value> = now
        .nodes
        .iter()
        .map(|n| {
            let was = before
                .and_then(|b| b.nodes.iter().find(|o| o.name == n.name))
                .map(rows);
            let rate = match was {
                Some(was) if took > Duration::ZERO => {
                    rows(n).saturating_sub(was) as f64 / took.as_secs_f64()
                }
                _ => 0.0,
            };
            let queued: u64 = now
                .edges
                .iter()
                .filter(|e| e.to == n.name)
                .map(|e| e.queued)
                .sum();
            json!({
                "name": n.name,
                "kind": n.kind.name(),
                "rows": rows(n),
                "rows_per_second": rate,
                "queued": queued,
                "lag_seconds": n.watermark.map(|w| ((unix_ms * 1000 - w).max(0)) as f64 / 1e6),
                "failed_batches": n.failed_batches,
                "dead_lettered_rows": n.dead_rows,
                "bad_records": n.bad_records,
                "version": n.versions.current,
                "swaps": n.versions.history.iter()
                    .map(|(at, v)| json!({ "at_ms": at, "version": v }))
                    .collect::<Vec<_>>(),
                "rejected_versions": n.rejected_versions,
            })
        })
        .collect();
    let checkpoint = now.checkpoints.as_ref().map(|c| {
        json!({
            "completed": c.completed,
            "last": c.last.as_ref().map(|l| json!({
                "id": l.id,
                "age_seconds": (unix_ms as f64 - l.unix_ms as f64).max(0.0) / 1e3,
                "took_seconds": l.took.as_secs_f64(),
                "bytes": l.bytes,
            })),
        })
    });
    json!({ "nodes": nodes, "checkpoint": checkpoint })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
