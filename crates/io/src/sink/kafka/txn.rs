//! Exactly-once into Kafka: one transaction per checkpoint, committed
//! only once the checkpoint is durable.
//!
//! Records wait in memory (and, at each barrier, in the checkpoint: the
//! write-ahead log) until their checkpoint is on disk; then one
//! transaction sends them and commits, together with a *marker*: the
//! record sequence number it covers, committed as an offset of a consumer
//! group of the sink's own (a transactional offset commit is atomic with
//! the records). A restart reads the marker: the checkpoint's records past
//! it were never committed and go out again, in a new transaction; those
//! before it are not repeated.
//!
//! Why not keep a transaction open across the barrier, as Flink does:
//! librdkafka can't resume another producer's transaction after a crash,
//! and the restarted producer's `init_transactions` aborts it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::encode::Rec;
use super::producer::{send, Delivery};
use crate::{Error, Result};
use weir_core::checkpoint::{Publish, SinkState};

/// How long a transaction's calls may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// Records not yet known committed, in order, numbered.
#[derive(Default)]
struct Pending {
    records: VecDeque<(u64, Arc<Rec>)>,
    next_seq: u64,
    /// Set when the producer can't go on; the sink's next call fails.
    failed: Option<String>,
}

/// The transactional half of a `kafka` sink.
pub(crate) struct Transactional {
    node: String,
    producer: Arc<ThreadedProducer<Delivery>>,
    client: ClientConfig,
    marker_topic: String,
    /// Names the marker's group: a run's markers are its own (a fresh
    /// checkpoint directory is a fresh run, whatever an older one left).
    run: String,
    marker: Arc<Marker>,
    pending: Arc<Mutex<Pending>>,
}

/// Where a transaction says how far it reached.
struct Marker {
    consumer: BaseConsumer,
    metadata: ConsumerGroupMetadata,
    topic: String,
}

impl Marker {
    fn open(
        node: &str,
        client: &ClientConfig,
        transactional_id: &str,
        run: &str,
        topic: &str,
    ) -> Result<Marker> {
        let consumer: BaseConsumer = client
            .clone()
            .set("group.id", format!("weir-sink.{transactional_id}.{run}"))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| {
                Error::sink_from(node, "can't create the transaction marker's consumer", e)
            })?;
        let metadata = consumer
            .group_metadata()
            .ok_or_else(|| Error::sink(node, "the marker consumer has no group metadata"))?;
        Ok(Marker {
            consumer,
            metadata,
            topic: topic.to_string(),
        })
    }

    fn tpl(&self, seq: u64) -> Result<TopicPartitionList, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, 0, Offset::Offset(seq as i64))?;
        Ok(tpl)
    }

    /// The sequence number the last committed transaction covered (0:
    /// none yet). A partition-level error is retried, then returned: read
    /// as 0 it would send committed records again.
    fn committed(&self) -> Result<u64, KafkaError> {
        let mut last = None;
        for attempt in 0..20 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250));
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.topic, 0);
            let found = match self.consumer.committed_offsets(tpl, TXN_TIMEOUT) {
                Ok(found) => found,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let Some(e) = found.elements().into_iter().next() else {
                continue;
            };
            if let Err(e) = e.error() {
                tracing::warn!(error = %e, attempt, "reading the transaction marker; retrying");
                last = Some(e);
                continue;
            }
            return Ok(match e.offset() {
                Offset::Offset(o) if o >= 0 => o as u64,
                _ => 0,
            });
        }
        Err(last.unwrap_or(KafkaError::OffsetFetch(
            rdkafka::types::RDKafkaErrorCode::Fail,
        )))
    }
}

impl Transactional {
    /// Fences any earlier producer of the same `transactional.id`
    /// (aborting what it left open); the marker goes to partition 0 of
    /// `marker_topic`.
    pub(crate) fn new(
        node: &str,
        producer: Arc<ThreadedProducer<Delivery>>,
        client: ClientConfig,
        marker_topic: &str,
    ) -> Result<Transactional> {
        producer.init_transactions(TXN_TIMEOUT).map_err(|e| {
            Error::sink_from(
                node,
                "can't start Kafka transactions (does the broker support them?)",
                e,
            )
        })?;
        let run = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let marker = Marker::open(
            node,
            &client,
            &transactional_id(&client),
            &run,
            marker_topic,
        )?;
        Ok(Transactional {
            node: node.to_string(),
            producer,
            client,
            marker_topic: marker_topic.to_string(),
            run,
            marker: Arc::new(marker),
            pending: Arc::new(Mutex::new(Pending::default())),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Pending>> {
        let pending = self
            .pending
            .lock()
            .map_err(|_| Error::sink(&self.node, "poisoned"))?;
        if let Some(why) = &pending.failed {
            return Err(Error::sink(&self.node, why.clone()));
        }
        Ok(pending)
    }

    pub(crate) fn write(&self, records: Vec<Rec>) -> Result<()> {
        let mut pending = self.lock()?;
        for r in records {
            let seq = pending.next_seq;
            pending.next_seq += 1;
            pending.records.push_back((seq, Arc::new(r)));
        }
        Ok(())
    }

    /// At a barrier: the records so far go into the checkpoint, and its
    /// publish commits them.
    pub(crate) fn prepare(&self) -> Result<SinkState> {
        let pending = self.lock()?;
        let upto = pending.next_seq;
        let data = wal::encode(pending.records.iter().map(|(s, r)| (*s, r.as_ref())));
        drop(pending);
        let (node, producer, marker, shared) = (
            self.node.clone(),
            self.producer.clone(),
            self.marker.clone(),
            self.pending.clone(),
        );
        Ok(SinkState {
            state: serde_json::json!({ "seq": upto, "run": self.run }),
            data: Some(data),
            publish: Some(Publish::new(move || {
                commit_upto(&node, &producer, &marker, &shared, upto)
            })),
            ..SinkState::default()
        })
    }

    /// Commits everything pending now (a run without checkpoints ends).
    pub(crate) fn commit_all(&self) -> Result<()> {
        let upto = self.lock()?.next_seq;
        commit_upto(
            &self.node,
            &self.producer,
            &self.marker,
            &self.pending,
            upto,
        )
        .map_err(|e| Error::sink(&self.node, e))
    }

    /// Resumes from a checkpoint: its records past the marker go out in a
    /// transaction of their own; numbering continues after them.
    pub(crate) fn resume(&mut self, state: &SinkState) -> Result<()> {
        let Some(upto) = state.state.get("seq").and_then(|s| s.as_u64()) else {
            return Ok(());
        };
        if let Some(run) = state.state.get("run").and_then(|r| r.as_str()) {
            self.run = run.to_string();
            self.marker = Arc::new(Marker::open(
                &self.node,
                &self.client,
                &transactional_id(&self.client),
                run,
                &self.marker_topic,
            )?);
        }
        let records = match &state.data {
            Some(bytes) => wal::decode(bytes)
                .map_err(|e| Error::sink(&self.node, format!("the checkpoint's records: {e}")))?,
            None => Vec::new(),
        };
        let committed = self
            .marker
            .committed()
            .map_err(|e| Error::sink_from(&self.node, "can't read the transaction marker", e))?;
        {
            let mut pending = self.lock()?;
            pending.next_seq = upto;
            pending.records = records
                .into_iter()
                .filter(|(seq, _)| *seq >= committed && *seq < upto)
                .map(|(seq, r)| (seq, Arc::new(r)))
                .collect();
            tracing::info!(node = %self.node, run = %self.run, committed, upto,
                replay = pending.records.len(), "resuming the Kafka sink: records of the \
                checkpoint not yet committed go out again");
        }
        if committed < upto {
            commit_upto(
                &self.node,
                &self.producer,
                &self.marker,
                &self.pending,
                upto,
            )
            .map_err(|e| Error::sink(&self.node, e))?;
        }
        Ok(())
    }
}

fn transactional_id(client: &ClientConfig) -> String {
    client.get("transactional.id").unwrap_or("weir").to_string()
}

/// Sends every pending record numbered below `upto` in one transaction,
/// with the marker, and commits; they leave the pending list only then.
fn commit_upto(
    node: &str,
    producer: &ThreadedProducer<Delivery>,
    marker: &Marker,
    shared: &Mutex<Pending>,
    upto: u64,
) -> std::result::Result<(), String> {
    let started = Instant::now();
    let batch: Vec<Arc<Rec>> = {
        let pending = shared.lock().map_err(|_| "poisoned".to_string())?;
        if let Some(why) = &pending.failed {
            return Err(why.clone());
        }
        pending
            .records
            .iter()
            .take_while(|(seq, _)| *seq < upto)
            .map(|(_, r)| r.clone())
            .collect()
    };
    let result = transaction(producer, marker, &batch, upto);
    match result {
        Ok(()) => {
            let mut pending = shared.lock().map_err(|_| "poisoned".to_string())?;
            while pending.records.front().is_some_and(|(seq, _)| *seq < upto) {
                pending.records.pop_front();
            }
            tracing::debug!(
                node,
                records = batch.len(),
                upto,
                took_ms = started.elapsed().as_secs_f64() * 1e3,
                "Kafka transaction committed"
            );
            Ok(())
        }
        Err(e) => {
            let why = format!("{node}: the Kafka transaction failed: {e}");
            let fatal = !matches!(&e, KafkaError::Transaction(t) if t.txn_requires_abort() || t.is_retriable());
            if !fatal && producer.abort_transaction(TXN_TIMEOUT).is_ok() {
                // The records stay pending: the next checkpoint's commit
                // takes them.
                return Err(why);
            }
            if let Ok(mut pending) = shared.lock() {
                pending.failed = Some(why.clone());
            }
            Err(why)
        }
    }
}

fn transaction(
    producer: &ThreadedProducer<Delivery>,
    marker: &Marker,
    records: &[Arc<Rec>],
    upto: u64,
) -> std::result::Result<(), KafkaError> {
    producer.begin_transaction()?;
    for r in records {
        send(producer, r)?;
    }
    producer.send_offsets_to_transaction(&marker.tpl(upto)?, &marker.metadata, TXN_TIMEOUT)?;
    producer.commit_transaction(TXN_TIMEOUT)?;
    if let Some(e) = producer.context().take_error() {
        // Can't happen after a successful commit, but a lost record must
        // never pass silently.
        return Err(KafkaError::MessageProduction(e));
    }
    Ok(())
}

/// The write-ahead log's bytes: records with their sequence numbers.
pub(crate) mod wal {
    use std::sync::Arc;

    use super::Rec;

    fn put(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
        match bytes {
            Some(b) => {
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }

    pub(crate) fn encode<'a>(records: impl Iterator<Item = (u64, &'a Rec)>) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, r) in records {
            out.extend_from_slice(&seq.to_le_bytes());
            put(&mut out, Some(r.topic.as_bytes()));
            out.extend_from_slice(&r.partition.unwrap_or(-1).to_le_bytes());
            put(&mut out, r.key.as_deref());
            put(&mut out, r.value.as_deref());
            out.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
            for (k, v) in &r.headers {
                put(&mut out, Some(k.as_bytes()));
                put(&mut out, Some(v));
            }
        }
        out
    }

    struct Reader<'a>(&'a [u8]);

    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], String> {
            if self.0.len() < n {
                return Err("cut short".into());
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| "cut short")?,
            ))
        }
        fn bytes(&mut self) -> Result<Option<Vec<u8>>, String> {
            let n = self.u32()?;
            if n == u32::MAX {
                return Ok(None);
            }
            Ok(Some(self.take(n as usize)?.to_vec()))
        }
        fn text(&mut self) -> Result<String, String> {
            let b = self.bytes()?.ok_or("a missing name")?;
            String::from_utf8(b).map_err(|e| e.to_string())
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<(u64, Rec)>, String> {
        let mut r = Reader(bytes);
        let mut out = Vec::new();
        while !r.0.is_empty() {
            let seq = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| "cut short")?);
            let topic: Arc<str> = Arc::from(r.text()?);
            let partition = i32::from_le_bytes(r.take(4)?.try_into().map_err(|_| "cut short")?);
            let key = r.bytes()?;
            let value = r.bytes()?;
            let n = r.u32()?;
            let mut headers = Vec::new();
            for _ in 0..n {
                headers.push((r.text()?, r.bytes()?.unwrap_or_default()));
            }
            out.push((
                seq,
                Rec {
                    topic,
                    partition: (partition >= 0).then_some(partition),
                    key,
                    value,
                    headers,
                },
            ));
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn records_read_back_from_the_write_ahead_log_as_written() {
            let records = vec![
                (
                    7,
                    Rec {
                        topic: "a".into(),
                        partition: Some(3),
                        key: Some(b"k".to_vec()),
                        value: Some(b"{\"x\":1}".to_vec()),
                        headers: vec![("h".into(), b"v".to_vec())],
                    },
                ),
                (
                    8,
                    Rec {
                        topic: "b".into(),
                        partition: None,
                        key: None,
                        value: None,
                        headers: vec![],
                    },
                ),
            ];
            let bytes = encode(records.iter().map(|(s, r)| (*s, r)));
            assert_eq!(decode(&bytes).unwrap(), records);
            assert!(
                decode(&bytes[..bytes.len() - 1]).is_err(),
                "a cut log read as whole"
            );
        }
    }
}
