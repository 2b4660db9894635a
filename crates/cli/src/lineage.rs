//! OpenLineage run events (<https://openlineage.io>, spec 2-0-2): START
//! once the pipeline is ready, RUNNING with the row counts so far, then
//! COMPLETE or FAIL. Datasets are the sources (inputs) and sinks
//! (outputs) with their schema; row counts ride in the input and output
//! statistics facets. Written as NDJSON to a file or POSTed to an
//! endpoint (Marquez, DataHub, OpenMetadata and others take them).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::{json, Value};

use weir::exec::{Control, NodeSummary};
use weir::graph::{Graph, NodeKind, Prepared};
use weir::manifest::LineageConfig;

const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const PRODUCER: &str = concat!(
    "https://github.com/weir-rs/weir/tree/v",
    env!("CARGO_PKG_VERSION")
);
const SCHEMA_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const INPUT_STATISTICS: &str = "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet";
const OUTPUT_STATISTICS: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
const ERROR_MESSAGE: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const JOB_TYPE: &str =
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const PROCESSING_ENGINE: &str = "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";

/// Where events go.
enum Target {
    File(PathBuf),
    Url(String),
}

/// One run's lineage: its id, job, datasets, and where events go.
pub(crate) struct Lineage {
    target: Target,
    namespace: String,
    job: String,
    run_id: String,
    streaming: bool,
    /// Each dataset: the node it is, its kind, namespace and name.
    datasets: Vec<(String, NodeKind, String, String)>,
    /// The schema facet of each dataset, once known (START).
    schemas: Mutex<Vec<Option<Value>>>,
}

/// `--lineage TARGET` (a file, or an http(s) URL) over the manifest's
/// `[pipeline] lineage`; `None` when neither asks for lineage.
pub(crate) fn configure(graph: &Graph, flag: Option<&str>) -> Option<LineageConfig> {
    let mut config = graph.manifest.pipeline.lineage.clone();
    if let Some(target) = flag {
        let mut c = config.unwrap_or_else(|| LineageConfig {
            file: None,
            url: None,
            namespace: "weir".into(),
            job: None,
            running_interval_ms: weir::defaults::LINEAGE_RUNNING_INTERVAL_MS,
        });
        if target.starts_with("http://") || target.starts_with("https://") {
            (c.url, c.file) = (Some(target.to_string()), None);
        } else {
            (c.file, c.url) = (Some(std::env::current_dir().ok()?.join(target)), None);
        }
        config = Some(c);
    }
    config.filter(|c| c.file.is_some() || c.url.is_some())
}

impl Lineage {
    /// A new run of `graph` under `config`.
    pub(crate) fn new(graph: &Graph, manifest: &Path, config: &LineageConfig) -> Lineage {
        let m = &graph.manifest;
        let target = match (&config.url, &config.file) {
            (Some(url), _) => Target::Url(url.clone()),
            (None, Some(file)) => Target::File(m.resolve(file)),
            (None, None) => Target::File(PathBuf::from("lineage.ndjson")),
        };
        let job = config.job.clone().unwrap_or_else(|| default_job(manifest));
        let datasets = graph
            .order
            .iter()
            .filter(|(_, kind)| *kind != NodeKind::Transform)
            .map(|(name, kind)| {
                let (kind_name, path) = match kind {
                    NodeKind::Source => (m.sources[name].kind(), m.sources[name].path()),
                    _ => (m.sinks[name].config.kind(), m.sinks[name].config.path()),
                };
                // Files follow OpenLineage's naming: namespace `file`, the
                // absolute path as the name. Other datasets are named by
                // their node until each kind names its own (a table, a URL).
                let (namespace, dataset) = match path {
                    Some(p) => ("file".to_string(), m.resolve(p).display().to_string()),
                    None => (format!("weir.{kind_name}"), format!("{job}.{name}")),
                };
                (name.clone(), *kind, namespace, dataset)
            })
            .collect::<Vec<_>>();
        let unbounded = graph
            .manifest
            .sources
            .values()
            .any(|s| matches!(s.kind(), "directory" | "tail" | "http"));
        Lineage {
            target,
            namespace: config.namespace.clone(),
            job,
            run_id: run_id(),
            streaming: unbounded,
            schemas: Mutex::new(vec![None; datasets.len()]),
            datasets,
        }
    }

    fn event(
        &self,
        kind: &str,
        inputs: Vec<Value>,
        outputs: Vec<Value>,
        run_facets: Value,
    ) -> Value {
        json!({
            "eventType": kind,
            "eventTime": rfc3339(SystemTime::now()),
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT,
            "run": { "runId": self.run_id, "facets": run_facets },
            "job": {
                "namespace": self.namespace,
                "name": self.job,
                "facets": {
                    "jobType": {
                        "_producer": PRODUCER,
                        "_schemaURL": JOB_TYPE,
                        "processingType": if self.streaming { "STREAMING" } else { "BATCH" },
                        "integration": "WEIR",
                        "jobType": "PIPELINE",
                    }
                }
            },
            "inputs": inputs,
            "outputs": outputs,
        })
    }

    /// The datasets as the event lists them: schema facets always, row
    /// counts (from `nodes`) when given.
    fn datasets(&self, nodes: Option<&[NodeSummary]>) -> (Vec<Value>, Vec<Value>) {
        let schemas = self.schemas.lock().map(|s| s.clone()).unwrap_or_default();
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        for ((node, kind, namespace, name), schema) in self.datasets.iter().zip(schemas) {
            let mut dataset = json!({ "namespace": namespace, "name": name, "facets": {} });
            if let Some(schema) = schema {
                dataset["facets"]["schema"] = schema;
            }
            let summary = nodes.and_then(|n| n.iter().find(|s| &s.name == node));
            if *kind == NodeKind::Source {
                if let Some(s) = summary {
                    dataset["inputFacets"] = json!({ "inputStatistics": {
                        "_producer": PRODUCER, "_schemaURL": INPUT_STATISTICS,
                        "rowCount": s.rows_out, "size": s.bytes_out,
                    }});
                }
                inputs.push(dataset);
            } else {
                if let Some(s) = summary {
                    dataset["outputFacets"] = json!({ "outputStatistics": {
                        "_producer": PRODUCER, "_schemaURL": OUTPUT_STATISTICS,
                        "rowCount": s.rows_in, "size": s.bytes_in,
                    }});
                }
                outputs.push(dataset);
            }
        }
        (inputs, outputs)
    }

    fn engine() -> Value {
        json!({ "processing_engine": {
            "_producer": PRODUCER, "_schemaURL": PROCESSING_ENGINE,
            "name": "weir", "version": env!("CARGO_PKG_VERSION"),
        }})
    }

    /// START: the pipeline is ready, its schemas known.
    pub(crate) fn start(&self, prepared: &Prepared) -> anyhow::Result<()> {
        if let Ok(mut schemas) = self.schemas.lock() {
            for ((node, ..), slot) in self.datasets.iter().zip(schemas.iter_mut()) {
                *slot = prepared
                    .schemas
                    .get(node)
                    .and_then(|s| s.as_ref())
                    .map(schema_facet);
            }
        }
        let (inputs, outputs) = self.datasets(None);
        self.send(&self.event("START", inputs, outputs, Self::engine()))
    }

    /// RUNNING: the row counts so far.
    pub(crate) fn running(&self, nodes: &[NodeSummary]) -> anyhow::Result<()> {
        let (inputs, outputs) = self.datasets(Some(nodes));
        self.send(&self.event("RUNNING", inputs, outputs, json!({})))
    }

    /// COMPLETE (or, stopped by Ctrl-C, also COMPLETE: what was written is
    /// committed) with the final row counts.
    pub(crate) fn complete(&self, nodes: &[NodeSummary]) -> anyhow::Result<()> {
        let (inputs, outputs) = self.datasets(Some(nodes));
        self.send(&self.event("COMPLETE", inputs, outputs, json!({})))
    }

    /// FAIL, with the error.
    pub(crate) fn fail(&self, error: &str) -> anyhow::Result<()> {
        let (inputs, outputs) = self.datasets(None);
        let facets = json!({ "errorMessage": {
            "_producer": PRODUCER, "_schemaURL": ERROR_MESSAGE,
            "message": error, "programmingLanguage": "RUST",
        }});
        self.send(&self.event("FAIL", inputs, outputs, facets))
    }

    fn send(&self, event: &Value) -> anyhow::Result<()> {
        match &self.target {
            Target::File(path) => {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("lineage: opening {}", path.display()))?;
                // One write per event: concurrent writers never interleave
                // inside a line.
                let mut line = serde_json::to_vec(event)?;
                line.push(b'\n');
                file.write_all(&line)
                    .with_context(|| format!("lineage: writing {}", path.display()))
            }
            Target::Url(url) => {
                ureq::post(url)
                    .header("Content-Type", "application/json")
                    .send(serde_json::to_string(event)?)
                    .with_context(|| format!("lineage: POST {url}"))?;
                Ok(())
            }
        }
    }
}

/// Sends a RUNNING event every `every` while the run goes on; stops when
/// dropped.
pub(crate) struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    pub(crate) fn start(
        lineage: Arc<Lineage>,
        control: Arc<Control>,
        every: Duration,
    ) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("weir-lineage".into())
            .spawn(move || {
                let tick = Duration::from_millis(20);
                let mut next = std::time::Instant::now() + every;
                while !flag.load(Ordering::SeqCst) {
                    std::thread::sleep(tick);
                    if std::time::Instant::now() < next {
                        continue;
                    }
                    next += every;
                    if let Err(e) = lineage.running(&control.snapshot().nodes) {
                        tracing::warn!(error = %e, "lineage: RUNNING event not sent");
                    }
                }
            })
            .ok();
        Heartbeat { stop, thread }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The job's default name: the manifest's directory (`orders/pipeline.toml`
/// → `orders`), or its file stem when that says more.
fn default_job(manifest: &Path) -> String {
    let stem = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().to_string());
    let dir = std::fs::canonicalize(manifest).ok().and_then(|p| {
        p.parent()
            .and_then(|d| d.file_name())
            .map(|d| d.to_string_lossy().to_string())
    });
    match (stem, dir) {
        (Some(stem), _) if stem != "pipeline" => stem,
        (_, Some(dir)) => dir,
        (Some(stem), None) => stem,
        (None, None) => "pipeline".into(),
    }
}

/// The SchemaDatasetFacet of an Arrow schema (types as arrow-rs prints them).
fn schema_facet(schema: &arrow::datatypes::SchemaRef) -> Value {
    json!({
        "_producer": PRODUCER,
        "_schemaURL": SCHEMA_FACET,
        "fields": schema.fields().iter().enumerate().map(|(i, f)| json!({
            "name": f.name(),
            "type": f.data_type().to_string(),
            "ordinal_position": i + 1,
        })).collect::<Vec<_>>(),
    })
}

/// A random (version 4) UUID.
fn run_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: time and pid still make the id unique here.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (nanos ^ (u128::from(std::process::id()) << 96)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `t` as RFC 3339 in UTC with milliseconds (`2026-12-03T09:00:00.123Z`).
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789.
        assert_eq!(rfc3339(at(951_827_696, 789)), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(at(1_796_287_491, 465)), "2026-12-03T08:44:51.465Z");
    }

    #[test]
    fn run_ids_are_version_4_uuids_and_differ() {
        let (a, b) = (run_id(), run_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }
}
