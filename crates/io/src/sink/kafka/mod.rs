//! `type = "kafka"`: rows to Kafka records.
//!
//! Under checkpoints the sink is exactly-once for `read_committed`
//! consumers: one Kafka transaction per checkpoint, committed once the
//! checkpoint is durable (see [`txn`]). Without, or with `delivery =
//! "at_least_once"`, records go out as they come, flushed at each
//! checkpoint and at the end.

mod encode;
mod producer;
mod txn;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use rdkafka::producer::{Producer, ThreadedProducer};
use serde::Deserialize;

use self::encode::RecordEncoder;
use self::producer::{send, Delivery};
use self::txn::Transactional;
use super::{Sink, SinkContext};
use crate::kafka::{self, registry::RegistryConfig, Format, Security};
use crate::{Error, Result};
use weir_core::checkpoint::SinkState;

/// A `type = "kafka"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// `brokers`: `host:port[,host:port…]`.
    pub brokers: String,
    /// `topic`: where every record goes (or `topic_column`).
    pub topic: Option<String>,
    /// `topic_column`: a text column naming each row's topic.
    pub topic_column: Option<String>,
    /// `partition_column`: an integer column naming each row's partition
    /// (default: the partitioner picks, by key).
    pub partition_column: Option<String>,
    /// `key`: the columns making the record key: one column's value as it
    /// is (text, bytes, or a number as text), several as a JSON object.
    #[serde(default)]
    pub key: Vec<String>,
    /// `headers`: columns sent as headers, named after the column.
    #[serde(default)]
    pub headers: Vec<String>,
    /// `format`: `"json"` (default), `"avro"`, `"string"`, `"bytes"`.
    #[serde(default = "json")]
    pub format: Format,
    /// `value_column`: the column a `string` or `bytes` value is (default:
    /// the one column left after key, headers and routing).
    pub value_column: Option<String>,
    /// `registry`: the schema registry an `avro` sink registers its schema
    /// in (subject `<topic>-value` unless `registry.subject`).
    pub registry: Option<RegistryConfig>,
    /// `compression`: `"none"` (default), `"gzip"`, `"snappy"`, `"lz4"`,
    /// `"zstd"`.
    #[serde(default)]
    pub compression: Compression,
    /// `partitioner`: librdkafka's `partitioner` — `"murmur2_random"` for
    /// the Java client's partitions by key, `"consistent_random"` (its
    /// default), `"random"`, …
    pub partitioner: Option<String>,
    /// `delivery`: `"exactly_once"` (the default under checkpoints) or
    /// `"at_least_once"`.
    pub delivery: Option<SinkDelivery>,
    /// `transactional_id`: the producer's stable identity under
    /// `exactly_once` (default `weir.<node>.<hash of the manifest's
    /// directory>`). Two processes must never share one.
    pub transactional_id: Option<String>,
    /// `marker_topic`: the topic whose partition 0 carries the
    /// transactions' markers (default: `topic`; required with
    /// `topic_column`).
    pub marker_topic: Option<String>,
    /// `on_error`: a record the broker refuses under `at_least_once` —
    /// `"fail"` (default) or `"skip"` (logged and counted).
    #[serde(default)]
    pub on_error: OnError,
    /// `security`: TLS and SASL for real clusters.
    pub security: Option<Security>,
    /// `options`: librdkafka settings passed as they are.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn json() -> Format {
    Format::Json
}

/// `compression`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// None.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// `delivery`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SinkDelivery {
    /// A transaction per checkpoint.
    ExactlyOnce,
    /// Sent as they come, flushed at checkpoints.
    AtLeastOnce,
}

/// `on_error`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail the run.
    #[default]
    Fail,
    /// Log, count, go on.
    Skip,
}

/// How long a flush may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// FNV-1a: a hash that stays the same across builds and machines.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl KafkaSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        let node = ctx.name;
        if self.topic.is_some() == self.topic_column.is_some() {
            return Err(Error::sink(
                node,
                "give exactly one of `topic` (every record) and `topic_column` (per row)",
            ));
        }
        let exactly_once = match self.delivery {
            Some(SinkDelivery::ExactlyOnce) if !ctx.checkpointing => {
                return Err(Error::sink(
                    node,
                    "delivery = \"exactly_once\" commits a transaction per checkpoint: add \
                     [pipeline.checkpoint] (or say delivery = \"at_least_once\")",
                ))
            }
            Some(d) => d == SinkDelivery::ExactlyOnce,
            None => ctx.checkpointing,
        };
        let mut client = kafka::client(node, &self.brokers, self.security.as_ref(), &self.options)?;
        let consumer_side = client.clone();
        client
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "compression.type",
                match self.compression {
                    Compression::None => "none",
                    Compression::Gzip => "gzip",
                    Compression::Snappy => "snappy",
                    Compression::Lz4 => "lz4",
                    Compression::Zstd => "zstd",
                },
            );
        client.set("linger.ms", "5");
        if let Some(p) = &self.partitioner {
            client.set("partitioner", p);
        }
        // `options` win over these defaults.
        for (key, value) in &self.options {
            client.set(key, value);
        }
        let transactional_id = self.transactional_id.clone().unwrap_or_else(|| {
            format!(
                "weir.{node}.{:08x}",
                stable_hash(&ctx.base_dir.display().to_string()) as u32
            )
        });
        if exactly_once {
            client.set("transactional.id", &transactional_id);
            client.set("transaction.timeout.ms", "60000");
        }
        let producer: ThreadedProducer<Delivery> = client
            .create_with_context(Delivery::new(node))
            .map_err(|e| Error::sink_from(node, "can't create the Kafka producer", e))?;
        let producer = Arc::new(producer);
        let mode = if exactly_once {
            let marker_topic = self
                .marker_topic
                .as_ref()
                .or(self.topic.as_ref())
                .ok_or_else(|| {
                    Error::sink(
                        node,
                        "with `topic_column` and exactly-once delivery, name a `marker_topic` \
                         (an existing topic; its partition 0 carries the transactions' markers)",
                    )
                })?;
            let mut marker_client = consumer_side;
            marker_client.set("transactional.id", &transactional_id);
            Mode::Exactly(Transactional::new(
                node,
                producer.clone(),
                marker_client,
                marker_topic,
            )?)
        } else {
            Mode::AtLeast
        };
        let encoder = match ctx.schema {
            Some(schema) => Some(RecordEncoder::new(node, self, schema)?),
            None => None,
        };
        Ok(Box::new(KafkaSink {
            node: node.to_string(),
            config: self.clone(),
            encoder,
            producer,
            mode,
            written: 0,
            skipped: 0,
        }))
    }
}

enum Mode {
    Exactly(Transactional),
    AtLeast,
}

/// A running `kafka` sink.
struct KafkaSink {
    node: String,
    config: KafkaSinkConfig,
    encoder: Option<RecordEncoder>,
    producer: Arc<ThreadedProducer<Delivery>>,
    mode: Mode,
    written: u64,
    skipped: u64,
}

impl KafkaSink {
    /// Delivery failures since the last check, by `on_error`.
    fn check_delivery(&mut self) -> Result<()> {
        let Some((count, code, first)) = self.producer.context().take_failures() else {
            return Ok(());
        };
        match self.config.on_error {
            OnError::Fail => Err(Error::sink(
                &self.node,
                format!("Kafka refused {count} record(s); the first: {first} ({code:?})"),
            )),
            OnError::Skip => {
                self.skipped += count;
                tracing::warn!(node = %self.node, records = count, first = %first,
                    "Kafka refused records (on_error = \"skip\")");
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| Error::sink_from(&self.node, "flushing to Kafka", e))?;
        self.check_delivery()
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.encoder.is_none() {
            self.encoder = Some(RecordEncoder::new(
                &self.node,
                &self.config,
                batch.schema_ref(),
            )?);
        }
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(());
        };
        let records = encoder.encode(batch)?;
        self.written += records.len() as u64;
        match &self.mode {
            Mode::Exactly(t) => t.write(records),
            Mode::AtLeast => {
                for r in &records {
                    send(&self.producer, r).map_err(|e| {
                        Error::sink_from(&self.node, format!("sending to {}", r.topic), e)
                    })?;
                }
                self.check_delivery()
            }
        }
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        match &self.mode {
            Mode::Exactly(t) => t.commit_all()?,
            Mode::AtLeast => self.flush()?,
        }
        tracing::info!(node = %self.node, records = self.written, skipped = self.skipped, "sent to Kafka");
        Ok(())
    }

    fn abort(self: Box<Self>) {
        // At-least-once records already sent stay sent; a transaction's
        // pending records are simply never committed.
        let _ = self.producer.flush(Duration::from_secs(5));
    }

    fn prepare(&mut self) -> Result<SinkState> {
        match &self.mode {
            Mode::Exactly(t) => t.prepare(),
            Mode::AtLeast => {
                self.flush()?;
                Ok(SinkState::default())
            }
        }
    }

    fn resume(&mut self, state: &SinkState) -> Result<()> {
        match &mut self.mode {
            Mode::Exactly(t) => t.resume(state),
            Mode::AtLeast => Ok(()),
        }
    }

    fn exactly_once(&self) -> bool {
        matches!(self.mode, Mode::Exactly(_))
    }
}
