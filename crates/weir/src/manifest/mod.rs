//! `pipeline.toml`: the typed manifest.
//!
//! ```toml
//! [pipeline]
//! batch_size = 8192          # rows per source batch (default 8192)
//!
//! [sources.orders]
//! type = "csv"               # csv | ndjson | parquet | ipc | stdin | generate
//! path = "data/orders-*.csv" # a glob; relative to this file
//!
//! [transforms.clean]
//! plugin = "plugins/dedupe.wasm"   # relative to this file
//! inputs = ["orders"]
//! config = { key = ["id"] }        # handed to the plugin's init as JSON
//!
//! [sinks.out]
//! type = "parquet"           # parquet | csv | ndjson | ipc | stdout
//! inputs = ["clean"]
//! path = "out/orders.parquet"
//! ```
//!
//! Parsing happens in two steps so that every error can be located: the
//! document is parsed into tables, then each node's table is deserialized
//! into its kind's typed config. Errors carry the file, line and key.

mod inputs;
mod locate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use crate::checkpoint::CheckpointConfig;
pub use crate::paths::resolve;
pub use crate::plugin::{Confinement, Grants, Limits};
use crate::sink::SinkConfig;
use crate::source::SourceConfig;
use crate::{Detail, Error, Result};
pub use inputs::TransformInputs;
pub use locate::Located;

pub use crate::defaults;

/// What a transform node does when a batch fails (the plugin returns an
/// error, traps, exceeds a limit, or returns a malformed batch).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop the pipeline: sinks discard their output, the run fails.
    #[default]
    Fail,
    /// Drop the batch, count it, carry on.
    Skip,
    /// Send the failing rows (isolated by bisection) with the error to the
    /// sinks reading `NODE.dead_letter`; the other rows carry on.
    DeadLetter,
}

/// The `[pipeline]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// `batch_size`: rows per batch a source emits.
    pub batch_size: usize,
    /// `channel_capacity`: batches buffered on each edge (backpressure).
    pub channel_capacity: usize,
    /// `max_stack_kb`: the most wasm stack any plugin call may use (one
    /// setting for the whole engine; overflow traps that call).
    pub max_stack_kb: usize,
    /// `checkpoint`: periodic checkpoints for exactly-once restarts (see
    /// [`CheckpointConfig`]); absent means none.
    pub checkpoint: Option<CheckpointConfig>,
    /// `metrics`: an address (`"127.0.0.1:9100"`) where `weir run` serves
    /// Prometheus metrics at `/metrics`; `--metrics` overrides it.
    #[serde(deserialize_with = "metrics_address")]
    pub metrics: Option<std::net::SocketAddr>,
    /// `lineage`: OpenLineage run events (see [`LineageConfig`]); absent
    /// means none. `--lineage` overrides where they go.
    pub lineage: Option<LineageConfig>,
}

/// `[pipeline] lineage = { ... }`: OpenLineage run events — START, RUNNING
/// (every `running_interval_ms`), COMPLETE or FAIL — with the pipeline's
/// inputs and outputs, their schemas and row counts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LineageConfig {
    /// `file`: append each event as a line of JSON (relative to the
    /// manifest).
    pub file: Option<PathBuf>,
    /// `url`: POST each event (an OpenLineage endpoint such as Marquez's
    /// `http://host:5000/api/v1/lineage`).
    pub url: Option<String>,
    /// `namespace`: the job's namespace (default `"weir"`).
    #[serde(default = "lineage_namespace")]
    pub namespace: String,
    /// `job`: the job's name (default: the manifest's file stem, or its
    /// directory's name when the file is `pipeline.toml`).
    pub job: Option<String>,
    /// `running_interval_ms`: a RUNNING event with the row counts so far
    /// this often (default 60000; 0: none).
    #[serde(default = "lineage_running_ms")]
    pub running_interval_ms: u64,
}

fn lineage_namespace() -> String {
    "weir".into()
}

fn lineage_running_ms() -> u64 {
    defaults::LINEAGE_RUNNING_INTERVAL_MS
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            batch_size: defaults::BATCH_SIZE,
            channel_capacity: defaults::CHANNEL_CAPACITY,
            max_stack_kb: defaults::MAX_STACK_KB,
            checkpoint: None,
            metrics: None,
            lineage: None,
        }
    }
}

/// `metrics = "IP:PORT"`, with an error that says what to write.
fn metrics_address<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<std::net::SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "metrics = {text:?} is not an address to listen on: write IP:PORT, for example \
             \"127.0.0.1:9100\" (or \"0.0.0.0:9100\" to be scraped from other hosts)"
        ))
    })
}

/// A `[transforms.NAME]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// `plugin`: the component file, relative to the manifest.
    pub plugin: PathBuf,
    /// `inputs`: the outputs feeding this node — a list (all into its one
    /// input port), or a table of input port → output(s).
    pub inputs: TransformInputs,
    /// `config`: handed to the plugin's `init` as JSON.
    #[serde(default)]
    pub config: toml::Table,
    /// `limits`: sandbox limits (see [`Limits`]).
    #[serde(default)]
    pub limits: Limits,
    /// `on_error`: `"fail"` (default), `"skip"` or `"dead_letter"`.
    #[serde(default)]
    pub on_error: OnError,
    /// `max_failures`: consecutive failed batches before the node stops
    /// (default 10; `skip` and `dead_letter` only).
    #[serde(default = "max_failures")]
    pub max_failures: u32,
    /// `grants`: capabilities beyond the deny-by-default sandbox.
    #[serde(default)]
    pub grants: Grants,
    /// `parallelism`: instances of the plugin processing consecutive
    /// batches at once (default 1); output order is kept. Only for
    /// stateless plugins: each instance would keep its own state.
    #[serde(default = "parallelism")]
    pub parallelism: usize,
    /// `build`: the local crate the plugin is built from (relative to the
    /// manifest); `weir dev` rebuilds it when its sources change.
    #[serde(default)]
    pub build: Option<PathBuf>,
}

fn max_failures() -> u32 {
    defaults::MAX_FAILURES
}

fn parallelism() -> usize {
    1
}

/// The suffix naming a transform's dead-letter output in `inputs`.
pub const DEAD_LETTER: &str = ".dead_letter";

/// The port name of a node's dead-letter output.
pub const DEAD_LETTER_PORT: &str = "dead_letter";

/// The node that produces `input` (`"clean.dead_letter"` → `"clean"`), and
/// whether it is that node's dead-letter output.
pub fn producer(input: &str) -> (&str, bool) {
    let (node, port) = output_ref(input);
    (node, port == Some(DEAD_LETTER_PORT))
}

/// An output reference split into its node and port: `"clean"` is
/// `clean`'s first output port, `"clean.late"` its port `late`. Node
/// names can't hold a `.`, so the first one splits.
pub fn output_ref(input: &str) -> (&str, Option<&str>) {
    match input.split_once('.') {
        Some((node, port)) => (node, Some(port)),
        None => (input, None),
    }
}

/// A source's `watermark` table: event time is read from `column`, and
/// the watermark trails the newest event time seen by `delay_ms` (the
/// most out of order a row may arrive and still count as on time).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatermarkConfig {
    /// `column`: a timestamp column of the source.
    pub column: String,
    /// `delay_ms`: how far the watermark trails the newest event time
    /// (default 0: rows arrive in event-time order).
    #[serde(default)]
    pub delay_ms: u64,
}

/// A `[sinks.NAME]` table: its inputs plus the kind's own keys.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkNode {
    /// `inputs`: the nodes whose batches this sink writes.
    pub inputs: Vec<String>,
    /// The kind-specific config.
    pub config: SinkConfig,
}

/// A parsed, located manifest. Node-level checks (inputs exist, no cycles)
/// happen when the graph is built from it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it came from (for error messages).
    pub path: PathBuf,
    /// The directory relative paths are resolved against.
    pub base_dir: PathBuf,
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[sources.*]`, by name.
    pub sources: BTreeMap<String, SourceConfig>,
    /// Each source's `watermark` table (a key every kind takes), by name.
    pub watermarks: BTreeMap<String, WatermarkConfig>,
    /// `[transforms.*]`, by name.
    pub transforms: BTreeMap<String, TransformConfig>,
    /// `[sinks.*]`, by name.
    pub sinks: BTreeMap<String, SinkNode>,
    /// Where each key is, for errors found after parsing.
    pub located: Located,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    pipeline: PipelineConfig,
    #[serde(default)]
    sources: BTreeMap<String, toml::Table>,
    #[serde(default)]
    transforms: BTreeMap<String, toml::Table>,
    #[serde(default)]
    sinks: BTreeMap<String, toml::Table>,
}

impl Manifest {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Manifest(Detail::from(
                format!("{}: can't read the manifest", path.display()),
                e,
            ))
        })?;
        Manifest::parse(&text, path)
    }

    /// Parses manifest `text`, which came from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let located = Located::new(path, text);
        let raw: RawManifest = toml::from_str(text).map_err(|e| located.toml_error(&e))?;
        // Absolute, so that paths built from it compare equal to paths a
        // tool reports (a `weir dev dev.toml` run from the manifest's own
        // directory has an empty parent).
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base_dir = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        if raw.pipeline.batch_size == 0 {
            return Err(located.error("pipeline", None, Some("batch_size"), "must be at least 1"));
        }
        if raw.pipeline.channel_capacity == 0 {
            return Err(located.error(
                "pipeline",
                None,
                Some("channel_capacity"),
                "must be at least 1",
            ));
        }

        if raw
            .pipeline
            .checkpoint
            .as_ref()
            .is_some_and(|c| c.interval_ms == 0)
        {
            return Err(located.error(
                "pipeline",
                None,
                Some("interval_ms"),
                "checkpoint.interval_ms must be at least 1",
            ));
        }
        let mut sources = BTreeMap::new();
        let mut watermarks = BTreeMap::new();
        for (name, mut table) in raw.sources {
            if let Some(value) = table.remove("watermark") {
                let watermark = WatermarkConfig::deserialize(value).map_err(|e| {
                    located.error(
                        "sources",
                        Some(&name),
                        Some("watermark"),
                        format!("{e}; e.g. watermark = {{ column = \"ts\", delay_ms = 5000 }}"),
                    )
                })?;
                watermarks.insert(name.clone(), watermark);
            }
            let config = located.node_config::<SourceConfig>("sources", &name, table)?;
            sources.insert(name, config);
        }
        let mut transforms = BTreeMap::new();
        for (name, table) in raw.transforms {
            let config: TransformConfig = located.node_config("transforms", &name, table)?;
            transforms.insert(name, config);
        }
        let mut sinks = BTreeMap::new();
        for (name, mut table) in raw.sinks {
            let inputs = match table.remove("inputs") {
                Some(v) => Vec::<String>::deserialize(v).map_err(|e| {
                    located.error("sinks", Some(&name), Some("inputs"), e.to_string())
                })?,
                None => {
                    return Err(located.error(
                        "sinks",
                        Some(&name),
                        None,
                        "missing key `inputs`: list the nodes this sink writes, e.g. inputs = [\"clean\"]",
                    ))
                }
            };
            let config = located.node_config::<SinkConfig>("sinks", &name, table)?;
            sinks.insert(name, SinkNode { inputs, config });
        }

        Ok(Manifest {
            path: path.to_path_buf(),
            base_dir,
            pipeline: raw.pipeline,
            sources,
            watermarks,
            transforms,
            sinks,
            located,
        })
    }

    /// Resolves a path from the manifest against its directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        resolve(&self.base_dir, path)
    }

    /// Where checkpoints are kept, when the pipeline takes them.
    pub fn checkpoint_dir(&self) -> Option<PathBuf> {
        let config = self.pipeline.checkpoint.as_ref()?;
        Some(self.resolve(&config.dir))
    }

    /// Where transform `node` keeps its host state store's runs, which
    /// its checkpoints name: beside the checkpoints, so moving that
    /// directory away starts over.
    pub fn state_dir(&self, node: &str) -> Option<PathBuf> {
        Some(self.checkpoint_dir()?.join("state").join(node))
    }
}

impl Located {
    /// Deserializes one node's table into its typed config, turning a serde
    /// error into one that names the line and key.
    fn node_config<T: DeserializeOwned>(
        &self,
        section: &str,
        name: &str,
        table: toml::Table,
    ) -> Result<T> {
        let kept = table.clone();
        T::deserialize(toml::Value::Table(table)).map_err(|e| {
            let message = e.message().to_string();
            // `unknown variant` names the value: the key is the one that
            // holds it (`on_error = "ignore"`), `type` only if none does.
            let key = locate::unknown_variant(&message)
                .and_then(|v| locate::key_with_value(&kept, v))
                .or_else(|| locate::key_in_message(&message))
                .or_else(|| {
                    locate::quoted_values(&message)
                        .into_iter()
                        .find_map(|v| locate::key_with_value(&kept, v))
                });
            self.error(section, Some(name), key.as_deref(), message)
        })
    }
}

impl<'a> From<&'a TransformConfig> for Confinement<'a> {
    fn from(t: &'a TransformConfig) -> Self {
        Confinement {
            limits: &t.limits,
            grants: &t.grants,
        }
    }
}
