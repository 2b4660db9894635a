//! `type = "http"`: an ingest endpoint. Clients POST rows — NDJSON, CSV
//! (with a header line) or an Arrow IPC stream, told apart by
//! `Content-Type` — and the pipeline takes them as a stream.
//!
//! Accepted rows wait in a queue bounded by `max_queued_rows`; when the
//! pipeline can't keep up the queue fills and requests are answered
//! `429 Too Many Requests` with `Retry-After`, so backpressure reaches
//! the clients instead of memory. A `200` means the rows are queued in
//! this process: a crash before the next checkpoint loses them
//! (at-most-once; the run summary says so).
//!
//! | answer | when |
//! |---|---|
//! | 200 `{"accepted": N}` | queued |
//! | 400 | the body doesn't decode against `schema` (the reason is in the body) |
//! | 401 | `bearer_env` is set and the request lacks that token |
//! | 404 / 405 | another path / not a POST |
//! | 413 | the body is over `max_body_bytes` |
//! | 415 | a `Content-Type` it doesn't read |
//! | 429 + `Retry-After` | the queue is full |

use std::collections::VecDeque;
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::lines::{decode, LineFormat};
use super::schema::{cast_to, declared, ColumnDecl};
use super::{Delivery, Source, SourceContext};
use crate::{Error, Result};

/// A `type = "http"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `address`: where to listen, `host:port` (port 0: any free port,
    /// logged at start).
    pub address: String,
    /// `path`: the endpoint's path (default `/`).
    #[serde(default = "root")]
    pub path: String,
    /// `schema`: the columns every request's rows must fit.
    pub schema: Vec<ColumnDecl>,
    /// `max_body_bytes`: the largest request body taken (default 16 MiB).
    #[serde(default = "max_body_bytes")]
    pub max_body_bytes: u64,
    /// `max_queued_rows`: accepted rows waiting for the pipeline before
    /// requests get 429 (default 100,000).
    #[serde(default = "max_queued_rows")]
    pub max_queued_rows: usize,
    /// `retry_after_s`: the `Retry-After` of a 429 (default 1).
    #[serde(default = "retry_after_s")]
    pub retry_after_s: u64,
    /// `bearer_env`: the environment variable holding the token clients
    /// must send as `Authorization: Bearer …` (never logged).
    pub bearer_env: Option<String>,
    /// `batch_size`: the most rows per batch, overriding `[pipeline]`.
    pub batch_size: Option<usize>,
    /// `max_delay_ms`: the longest accepted rows wait for their batch to
    /// fill (default 100).
    #[serde(default = "max_delay_ms")]
    pub max_delay_ms: u64,
    /// `threads`: request-handling threads (default 2).
    #[serde(default = "threads")]
    pub threads: usize,
}

fn root() -> String {
    "/".into()
}
fn max_body_bytes() -> u64 {
    16 << 20
}
fn max_queued_rows() -> usize {
    100_000
}
fn retry_after_s() -> u64 {
    1
}
fn max_delay_ms() -> u64 {
    100
}
fn threads() -> usize {
    2
}

/// Accepted rows waiting for the pipeline, each batch with its arrival.
#[derive(Default)]
struct Queue {
    batches: VecDeque<(RecordBatch, Instant)>,
    rows: usize,
}

struct Shared {
    node: String,
    config: HttpConfig,
    schema: SchemaRef,
    token: Option<String>,
    queue: Mutex<Queue>,
    arrived: Condvar,
    stop: AtomicBool,
}

struct HttpSource {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    max_rows: usize,
}

impl HttpConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let token = match &self.bearer_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                Error::source(
                    ctx.name,
                    format!("`bearer_env` names {var:?}, which is not set in the environment"),
                )
            })?),
            None => None,
        };
        let server = tiny_http::Server::http(&self.address).map_err(|e| {
            Error::source_from(ctx.name, format!("can't listen on {}", self.address), e)
        })?;
        let server = Arc::new(server);
        if let Some(addr) = server.server_addr().to_ip() {
            tracing::info!(node = %ctx.name, address = %addr, path = %self.path, "listening for rows");
        }
        let shared = Arc::new(Shared {
            node: ctx.name.to_string(),
            config: self.clone(),
            schema: declared(&self.schema),
            token,
            queue: Mutex::new(Queue::default()),
            arrived: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let threads = (0..self.threads.max(1))
            .filter_map(|i| {
                let (shared, server) = (shared.clone(), server.clone());
                std::thread::Builder::new()
                    .name(format!("weir-{}-http-{i}", ctx.name))
                    .spawn(move || serve(&shared, &server))
                    .ok()
            })
            .collect();
        Ok(Box::new(HttpSource {
            shared,
            server,
            threads,
            max_rows: self.batch_size.unwrap_or(ctx.batch_size).max(1),
        }))
    }
}

fn serve(shared: &Shared, server: &tiny_http::Server) {
    while !shared.stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => handle(shared, request),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(node = %shared.node, error = %e, "http: accepting a request failed");
            }
        }
    }
}

fn respond(request: tiny_http::Request, status: u16, body: String, headers: &[(&str, String)]) {
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    for (name, value) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

fn header<'a>(request: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let config = &shared.config;
    let url_path = request.url().split('?').next().unwrap_or("").to_string();
    if url_path != config.path {
        return respond(
            request,
            404,
            format!("no endpoint here; POST to {}\n", config.path),
            &[],
        );
    }
    if request.method() != &tiny_http::Method::Post {
        return respond(
            request,
            405,
            "POST rows here\n".into(),
            &[("Allow", "POST".into())],
        );
    }
    if let Some(token) = &shared.token {
        let given = header(&request, "Authorization").and_then(|v| v.strip_prefix("Bearer "));
        // Compared without an early exit, so timing doesn't tell how much matched.
        let ok = given.is_some_and(|g| {
            g.len() == token.len()
                && g.bytes()
                    .zip(token.bytes())
                    .fold(0, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !ok {
            return respond(
                request,
                401,
                "missing or wrong bearer token\n".into(),
                &[("WWW-Authenticate", "Bearer".into())],
            );
        }
    }
    let limit = config.max_body_bytes;
    if request.body_length().is_some_and(|n| n as u64 > limit) {
        return respond(
            request,
            413,
            format!("body over max_body_bytes = {limit}\n"),
            &[],
        );
    }
    if shared
        .queue
        .lock()
        .map(|q| q.rows >= config.max_queued_rows)
        .unwrap_or(true)
    {
        return too_many(shared, request);
    }
    let content_type = header(&request, "Content-Type")
        .unwrap_or("application/x-ndjson")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut body = Vec::new();
    if let Err(e) = request.as_reader().take(limit + 1).read_to_end(&mut body) {
        return respond(request, 400, format!("reading the body: {e}\n"), &[]);
    }
    if body.len() as u64 > limit {
        return respond(
            request,
            413,
            format!("body over max_body_bytes = {limit}\n"),
            &[],
        );
    }
    let decoded = match content_type.as_str() {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/json" => {
            decode_json(&shared.schema, &body)
        }
        "text/csv" => decode(&shared.schema, LineFormat::Csv, b',', true, &body),
        "application/vnd.apache.arrow.stream" => decode_ipc(&shared.schema, &body),
        other => {
            return respond(
                request,
                415,
                format!("Content-Type {other:?}: send application/x-ndjson, text/csv or application/vnd.apache.arrow.stream\n"),
                &[],
            )
        }
    };
    let batch = match decoded {
        Ok(batch) => batch,
        Err(e) => return respond(request, 400, format!("{e}\n"), &[]),
    };
    let rows = batch.num_rows();
    let Ok(mut queue) = shared.queue.lock() else {
        return respond(request, 500, "queue unavailable\n".into(), &[]);
    };
    // Checked again: other requests may have filled it while this decoded.
    if queue.rows > 0 && queue.rows + rows > config.max_queued_rows {
        drop(queue);
        return too_many(shared, request);
    }
    if rows > 0 {
        queue.rows += rows;
        queue.batches.push_back((batch, Instant::now()));
        shared.arrived.notify_one();
    }
    drop(queue);
    respond(
        request,
        200,
        format!("{{\"accepted\": {rows}}}\n"),
        &[("Content-Type", "application/json".into())],
    );
}

fn too_many(shared: &Shared, request: tiny_http::Request) {
    tracing::debug!(node = %shared.node, "http: queue full, answering 429");
    respond(
        request,
        429,
        "the pipeline is behind; retry later\n".into(),
        &[("Retry-After", shared.config.retry_after_s.to_string())],
    );
}

fn decode_ipc(schema: &SchemaRef, body: &[u8]) -> Result<RecordBatch, String> {
    let fail = |e: String| format!("Arrow IPC stream: {e}");
    let reader = arrow::ipc::reader::StreamReader::try_new(Cursor::new(body), None)
        .map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| fail(e.to_string()))?;
        out.push(cast_to(batch, schema).map_err(fail)?);
    }
    concat_batches(schema, &out).map_err(|e| e.to_string())
}

impl Source for HttpSource {
    fn schema(&self) -> SchemaRef {
        self.shared.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let shared = &self.shared;
        let max_delay = Duration::from_millis(shared.config.max_delay_ms);
        let fail = || Error::source(&shared.node, "the request queue's lock was poisoned");
        let mut queue = shared.queue.lock().map_err(|_| fail())?;
        // Wait for a full batch or for the oldest rows' delay; at most
        // 100 ms at a time, so stop, pause and checkpoints are seen.
        let deadline = Instant::now() + Duration::from_millis(100);
        loop {
            let due = queue.rows >= self.max_rows
                || queue
                    .batches
                    .front()
                    .is_some_and(|(_, at)| at.elapsed() >= max_delay);
            if due {
                break;
            }
            let now = Instant::now();
            let mut until = deadline;
            if let Some((_, at)) = queue.batches.front() {
                until = until.min(*at + max_delay);
            }
            if now >= until {
                // Nothing due yet: an empty batch keeps the run's loop live.
                return Ok(Some(RecordBatch::new_empty(shared.schema.clone())));
            }
            queue = shared
                .arrived
                .wait_timeout(queue, until - now)
                .map_err(|_| fail())?
                .0;
        }
        let mut taken = Vec::new();
        let mut rows = 0;
        while rows < self.max_rows {
            let Some((batch, at)) = queue.batches.pop_front() else {
                break;
            };
            let want = self.max_rows - rows;
            if batch.num_rows() > want {
                queue
                    .batches
                    .push_front((batch.slice(want, batch.num_rows() - want), at));
                taken.push(batch.slice(0, want));
                rows += want;
            } else {
                rows += batch.num_rows();
                taken.push(batch);
            }
        }
        queue.rows -= rows;
        drop(queue);
        concat_batches(&shared.schema, &taken)
            .map(Some)
            .map_err(|e| Error::source(&shared.node, e))
    }

    fn drain(&mut self) -> Result<Vec<RecordBatch>> {
        // Refuse new requests first: everything answered 200 goes on.
        self.shared.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let mut queue = self.shared.queue.lock().map_err(|_| {
            Error::source(&self.shared.node, "the request queue's lock was poisoned")
        })?;
        queue.rows = 0;
        Ok(queue.batches.drain(..).map(|(b, _)| b).collect())
    }

    fn delivery(&self) -> Delivery {
        Delivery::AtMostOnce
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// JSON records: one object per line (NDJSON), or one array of objects
/// (what most clients send as `application/json`).
fn decode_json(schema: &SchemaRef, body: &[u8]) -> Result<RecordBatch, String> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    if start.map(|i| body[i]) != Some(b'[') {
        return decode(schema, LineFormat::Ndjson, b',', false, body).map_err(|e| {
            format!(
                "{e}; send JSON records: one object per line (NDJSON), or one array of \
                 objects ([{{\"id\": 1}}, {{\"id\": 2}}])"
            )
        });
    }
    let records: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| format!("JSON: {e}; expected an array of objects ([{{\"id\": 1}}, …])"))?;
    if let Some((i, v)) = records.iter().enumerate().find(|(_, v)| !v.is_object()) {
        let kind = match v {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Null => "null",
            serde_json::Value::Object(_) => "an object",
        };
        return Err(format!(
            "JSON: element {i} of the array is {kind}; expected an array of objects, one per record"
        ));
    }
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(records.len().max(1))
        .build_decoder()
        .map_err(|e| format!("JSON: {e}"))?;
    decoder
        .serialize(&records)
        .map_err(|e| format!("JSON: {e}"))?;
    Ok(decoder
        .flush()
        .map_err(|e| format!("JSON: {e}"))?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}
