//! `type = "kafka"`: records from Kafka topics (and Kafka-protocol systems:
//! Redpanda, MSK, WarpStream), as micro-batches.
//!
//! Offsets are weir's checkpoint, not the consumer group's: a restart seeks
//! every partition to its checkpointed offset. The group's committed
//! offsets follow each durable checkpoint (for lag monitoring, and where a
//! partition new to this process starts). See `docs/kafka.md`.

mod consumer;
mod decode;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use self::consumer::{Offsets, Plan, Weir};
pub use self::decode::Metadata;
use self::decode::ValueDecoder;
use super::bad::{self, BadRecords, OnBadRecord};
use super::schema::ColumnDecl;
use super::{Source, SourceContext};
use crate::kafka::Raw;
use crate::kafka::{self, registry::RegistryConfig, Format, Security};
use crate::{Error, Result};
use weir_core::checkpoint::Publish;

/// A `type = "kafka"` source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `brokers`: `host:port[,host:port…]`.
    pub brokers: String,
    /// `topics`: topic names; one starting with `^` is a regular
    /// expression matched against every topic (new ones too).
    pub topics: Vec<String>,
    /// `group`: the consumer group. Processes started with the same group
    /// split the topics' partitions between them.
    pub group: String,
    /// `start`: where a partition this source has no checkpoint for
    /// starts: `"committed"` (default: the group's committed offset, else
    /// the earliest), `"earliest"`, `"latest"`, or `{ timestamp_ms = N }`.
    #[serde(default)]
    pub start: Start,
    /// `until`: `"end"` reads up to the partitions' ends as they were at
    /// start, then ends (a bounded job over a topic). Absent: unbounded.
    pub until: Option<Until>,
    /// `partitions`: read only these partitions of each topic, assigned
    /// to this source alone (no group rebalancing). Absent: the group
    /// shares the topics' partitions among its members.
    pub partitions: Option<Vec<i32>>,
    /// `scale_out`: `"partitions"` makes `weir run` run one pipeline per
    /// partition — its own state, checkpoint and transactions — and share
    /// them among every process started with this manifest, through the
    /// consumer group (see `docs/kafka.md`).
    pub scale_out: Option<ScaleOut>,
    /// `format`: how values are encoded — `"json"`, `"avro"`, `"string"`,
    /// `"bytes"`.
    pub format: Format,
    /// `schema`: the columns of a `json` value (required for `json`).
    pub schema: Option<Vec<ColumnDecl>>,
    /// `registry`: the schema registry of an `avro` value.
    pub registry: Option<RegistryConfig>,
    /// `metadata`: record fields added as columns: `"key"`, `"topic"`,
    /// `"partition"`, `"offset"`, `"timestamp"`, `"headers"` (named
    /// `kafka_key`, …).
    #[serde(default)]
    pub metadata: Vec<Metadata>,
    /// `batch_size`: records per batch, overriding `[pipeline]`.
    pub batch_size: Option<usize>,
    /// `max_delay_ms`: the longest a record waits for its batch to fill
    /// (default 100).
    #[serde(default = "max_delay_ms")]
    pub max_delay_ms: u64,
    /// `idle_timeout_ms`: a partition with no record for this long stops
    /// holding the watermark back. Absent: every partition holds it.
    pub idle_timeout_ms: Option<u64>,
    /// `session_timeout_ms`: how long the group waits for a silent member
    /// before giving its partitions to the others (default 10000).
    #[serde(default = "session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// `isolation`: `"read_committed"` (default: records of aborted
    /// transactions are never seen) or `"read_uncommitted"`.
    #[serde(default)]
    pub isolation: Isolation,
    /// `on_bad_record`: `"fail"` (default), `"skip"` or `"dead_letter"`.
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
    /// `security`: TLS and SASL for real clusters.
    pub security: Option<Security>,
    /// `options`: librdkafka settings passed as they are.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn max_delay_ms() -> u64 {
    100
}
fn session_timeout_ms() -> u64 {
    10_000
}

/// `start`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", untagged)]
pub enum Start {
    /// `"committed"`, `"earliest"` or `"latest"`.
    Named(StartName),
    /// `{ timestamp_ms = N }`: the first record at or after this time.
    Timestamp {
        /// Milliseconds since the epoch.
        timestamp_ms: i64,
    },
    /// The default: `"committed"`.
    #[default]
    #[serde(skip)]
    Default,
}

/// A named `start`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartName {
    /// The group's committed offset, else the earliest.
    Committed,
    /// The partition's first record.
    Earliest,
    /// After the partition's last record.
    Latest,
}

/// `until`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    /// The partitions' ends when the source started.
    End,
}

/// `scale_out`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScaleOut {
    /// A pipeline per partition.
    Partitions,
}

/// `isolation`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Only records of committed transactions.
    #[default]
    ReadCommitted,
    /// Every record, aborted transactions' too.
    ReadUncommitted,
}

/// How long a broker call may take before the source gives up.
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

impl KafkaSourceConfig {
    pub(crate) fn build(&self, ctx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let node = ctx.name;
        let decoder = ValueDecoder::new(
            node,
            self.format,
            self.schema.as_deref(),
            self.registry.as_ref(),
            &self.topics,
        )?;
        let schema = decode::schema(decoder.schema(), &self.metadata);
        let mut client = kafka::client(node, &self.brokers, self.security.as_ref(), &self.options)?;
        client
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set(
                "max.poll.interval.ms",
                (self.session_timeout_ms + 1000).max(7000).to_string(),
            )
            // Eager rebalancing: a rebalance revokes everything, then
            // assigns; offsets are set at assignment (see `consumer`).
            .set("partition.assignment.strategy", "range,roundrobin")
            .set(
                "isolation.level",
                match self.isolation {
                    Isolation::ReadCommitted => "read_committed",
                    Isolation::ReadUncommitted => "read_uncommitted",
                },
            )
            .set(
                "auto.offset.reset",
                match self.start {
                    Start::Named(StartName::Latest) => "latest",
                    _ => "earliest",
                },
            )
            .set("enable.partition.eof", "false")
            // An idle partition's fetch waits this long for data before
            // the broker answers: librdkafka's 500 ms default shows as
            // latency, and as stalls at a partition's end (`until`).
            .set("fetch.wait.max.ms", "50")
            // A partition whose prefetch queue is full waits this long
            // before fetching again; librdkafka's 1 s default stalls a
            // source that takes records in batches (measured: 0.6 s of
            // 1.5 s on 200,000 records).
            .set("fetch.queue.backoff.ms", "20");
        // `options` still win.
        for (key, value) in &self.options {
            client.set(key, value);
        }
        let plan = Plan::new(self.start, self.idle_timeout_ms.map(Duration::from_millis));
        let consumer: BaseConsumer<Weir> = client
            .create_with_context(Weir::new(node, plan.clone()))
            .map_err(|e| Error::source_from(node, "can't create the Kafka consumer", e))?;
        let consumer = Arc::new(consumer);
        let mut source = KafkaSource {
            node: node.to_string(),
            consumer,
            plan,
            topics: self.topics.clone(),
            manual: None,
            bounded: self.until.is_some(),
            subscribed: false,
            schema,
            decoder,
            metadata: self.metadata.clone(),
            batch_size: self.batch_size.unwrap_or(ctx.batch_size).max(1),
            max_delay: Duration::from_millis(self.max_delay_ms),
            policy: self.on_bad_record,
            bad: BadRecords::default(),
            last_partitions: Vec::new(),
        };
        if self.until.is_some() || self.partitions.is_some() {
            source.assign_manual(self.partitions.as_deref())?;
        }
        Ok(Box::new(source))
    }
}

/// A running `kafka` source.
struct KafkaSource {
    node: String,
    consumer: Arc<BaseConsumer<Weir>>,
    plan: Arc<std::sync::Mutex<Plan>>,
    topics: Vec<String>,
    /// Partitions assigned by `until` or `partitions`, not by the group:
    /// with their end offsets at start under `until = "end"`.
    manual: Option<BTreeMap<(String, i32), i64>>,
    bounded: bool,
    subscribed: bool,
    schema: SchemaRef,
    decoder: ValueDecoder,
    metadata: Vec<Metadata>,
    batch_size: usize,
    max_delay: Duration,
    policy: OnBadRecord,
    bad: BadRecords,
    /// The partition of each row of the last batch returned.
    last_partitions: Vec<(String, i32)>,
}

impl KafkaSource {
    fn fail(&self, what: &str, e: KafkaError) -> Error {
        Error::source_from(&self.node, what.to_string(), e)
    }

    /// `until` or `partitions`: the partitions of the named topics (those
    /// `only` lists, else all), assigned without joining the group; under
    /// `until = "end"` each with its end at start.
    fn assign_manual(&mut self, only: Option<&[i32]>) -> Result<()> {
        let mut ends = BTreeMap::new();
        for topic in &self.topics {
            if topic.starts_with('^') {
                return Err(Error::source(
                    &self.node,
                    format!("`until` and `partitions` read named topics; {topic:?} is a pattern"),
                ));
            }
            let metadata = self
                .consumer
                .fetch_metadata(Some(topic), BROKER_TIMEOUT)
                .map_err(|e| self.fail(&format!("can't read topic {topic:?}'s partitions"), e))?;
            for t in metadata.topics() {
                if let Some(e) = t.error() {
                    return Err(Error::source(
                        &self.node,
                        format!(
                            "topic {topic:?}: {} (does it exist?)",
                            rdkafka::types::RDKafkaErrorCode::from(e)
                        ),
                    ));
                }
                let ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                for wanted in only.unwrap_or_default() {
                    if !ids.contains(wanted) {
                        return Err(Error::source(
                            &self.node,
                            format!("topic {topic:?} has no partition {wanted} (it has {ids:?})"),
                        ));
                    }
                }
                for p in t.partitions() {
                    if only.is_some_and(|o| !o.contains(&p.id())) {
                        continue;
                    }
                    if !self.bounded {
                        ends.insert((topic.clone(), p.id()), i64::MAX);
                        continue;
                    }
                    let (_, high) = self
                        .consumer
                        .fetch_watermarks(topic, p.id(), BROKER_TIMEOUT)
                        .map_err(|e| {
                            self.fail(&format!("can't read {topic}/{}'s end", p.id()), e)
                        })?;
                    ends.insert((topic.clone(), p.id()), high);
                }
            }
        }
        self.manual = Some(ends);
        Ok(())
    }

    /// Joins the group (or assigns the bounded partitions) on first use,
    /// after `seek` had its chance.
    fn start(&mut self) -> Result<()> {
        if self.subscribed {
            return Ok(());
        }
        self.subscribed = true;
        match &self.manual {
            Some(ends) => {
                let mut tpl = TopicPartitionList::new();
                let plan = self
                    .plan
                    .lock()
                    .map_err(|_| Error::source(&self.node, "poisoned"))?;
                for (topic, partition) in ends.keys() {
                    let offset = plan.offset_for(topic, *partition);
                    tpl.add_partition_offset(topic, *partition, offset)
                        .map_err(|e| self.fail("can't assign", e))?;
                }
                drop(plan);
                let tpl = consumer::resolve_times(&self.consumer, tpl)
                    .map_err(|e| self.fail("can't find the offsets for `start.timestamp_ms`", e))?;
                consumer::note_assigned(&self.plan, &tpl);
                self.consumer
                    .assign(&tpl)
                    .map_err(|e| self.fail("can't assign the topics' partitions", e))
            }
            None => {
                let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
                self.consumer
                    .subscribe(&topics)
                    .map_err(|e| self.fail("can't subscribe", e))
            }
        }
    }

    /// Whether a bounded source has read every partition to its end.
    fn at_end(&self) -> bool {
        let (true, Some(ends)) = (self.bounded, &self.manual) else {
            return false;
        };
        let Ok(positions) = self.consumer.position() else {
            return false;
        };
        let plan = self.plan.lock();
        ends.iter().all(|((topic, partition), end)| {
            let read = plan
                .as_ref()
                .ok()
                .and_then(|p| p.next(topic, *partition))
                .unwrap_or(-1);
            let fetched = positions
                .find_partition(topic, *partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(-1);
            *end <= 0 || read.max(fetched) >= *end
        })
    }

    /// Polls until the batch is full, `max_delay` passed, or (bounded)
    /// every partition is read.
    fn collect(&mut self) -> Result<(Vec<Raw>, bool)> {
        let mut raws = Vec::with_capacity(self.batch_size.min(65_536));
        let deadline = Instant::now() + self.max_delay;
        let mut ended = false;
        while raws.len() < self.batch_size {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.consumer.poll(left.min(Duration::from_millis(50))) {
                Some(Ok(m)) => {
                    let raw = Raw {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp_ms: m.timestamp().to_millis(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        headers: m
                            .headers()
                            .map(|h| {
                                h.iter()
                                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    };
                    if let Ok(mut plan) = self.plan.lock() {
                        plan.read(&raw.topic, raw.partition, raw.offset);
                    }
                    raws.push(raw);
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) if is_fatal(&e) => {
                    return Err(self.fail("the Kafka consumer failed", e))
                }
                Some(Err(e)) => {
                    tracing::warn!(node = %self.node, error = %e, "Kafka consumer error (retrying)");
                }
                None => {
                    if self.at_end() {
                        ended = true;
                        break;
                    }
                }
            }
        }
        Ok((raws, ended))
    }
}

/// Errors the client does not recover from by itself.
fn is_fatal(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::Fatal
                | C::SaslAuthenticationFailed
                | C::Authentication
                | C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
        )
    )
}

impl Source for KafkaSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.start()?;
        let (raws, ended) = self.collect()?;
        if raws.is_empty() && ended {
            return Ok(None);
        }
        let batch = decode::batch(
            &self.node,
            &self.schema,
            &mut self.decoder,
            &self.metadata,
            &raws,
            self.policy,
            &self.bad,
        )?;
        self.last_partitions = batch
            .kept
            .iter()
            .map(|&i| (raws[i].topic.clone(), raws[i].partition))
            .collect();
        Ok(Some(batch.batch))
    }

    fn bad_records(&mut self) -> Vec<bad::BadRecord> {
        bad::drain(&self.bad)
    }

    fn position(&self) -> Option<serde_json::Value> {
        self.plan.lock().ok().map(|p| p.position())
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let offsets = Offsets::from_position(position)
            .map_err(|e| Error::source(&self.node, format!("a checkpoint's position: {e}")))?;
        if let Ok(mut plan) = self.plan.lock() {
            plan.resume(offsets);
        }
        Ok(())
    }

    fn split_event_time(
        &mut self,
        column: &str,
        batch: &RecordBatch,
    ) -> Result<Option<Option<i64>>> {
        let times = super::event_micros(column, batch).map_err(|e| Error::source(&self.node, e))?;
        let mut plan = self
            .plan
            .lock()
            .map_err(|_| Error::source(&self.node, "poisoned"))?;
        for (split, t) in self.last_partitions.iter().zip(times) {
            if let Some(t) = t {
                plan.observe_time(&split.0, split.1, t);
            }
        }
        Ok(Some(plan.event_time()))
    }

    fn publish(&mut self) -> Option<Publish> {
        let tpl = self.plan.lock().ok()?.committable()?;
        let consumer = self.consumer.clone();
        let node = self.node.clone();
        Some(Publish::new(move || {
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| format!("{node}: can't commit offsets to the consumer group: {e}"))
        }))
    }
}
