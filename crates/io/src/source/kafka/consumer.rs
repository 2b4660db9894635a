//! The consumer's side of the `kafka` source: where each partition starts
//! (its checkpointed offset, else `start`), what has been read, the
//! per-partition event time, and the group's rebalances.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::{Start, StartName, BROKER_TIMEOUT};

type Split = (String, i32);

/// Offsets by topic and partition: the next offset to read.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Offsets(pub(super) BTreeMap<Split, i64>);

impl Offsets {
    /// `{"topic": {"0": 12, "1": 7}}`.
    fn to_position(&self) -> serde_json::Value {
        let mut topics = serde_json::Map::new();
        for ((topic, partition), offset) in &self.0 {
            let entry = topics
                .entry(topic.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let serde_json::Value::Object(partitions) = entry {
                partitions.insert(partition.to_string(), (*offset).into());
            }
        }
        serde_json::json!({ "offsets": topics })
    }

    pub(super) fn from_position(position: &serde_json::Value) -> Result<Offsets, String> {
        let topics = position
            .get("offsets")
            .and_then(|o| o.as_object())
            .ok_or("no \"offsets\" object")?;
        let mut offsets = BTreeMap::new();
        for (topic, partitions) in topics {
            let partitions = partitions
                .as_object()
                .ok_or_else(|| format!("topic {topic:?}: not an object"))?;
            for (partition, offset) in partitions {
                let p: i32 = partition
                    .parse()
                    .map_err(|_| format!("topic {topic:?}: partition {partition:?}"))?;
                let o = offset
                    .as_i64()
                    .ok_or_else(|| format!("{topic}/{p}: offset {offset}"))?;
                offsets.insert((topic.clone(), p), o);
            }
        }
        Ok(Offsets(offsets))
    }
}

/// What one assigned partition has shown of event time.
#[derive(Debug)]
struct SplitTime {
    newest: Option<i64>,
    active: Instant,
}

/// The source's bookkeeping, shared with the rebalance callback (which
/// runs inside `poll`, on the source's thread).
#[derive(Debug)]
pub(super) struct Plan {
    start: Start,
    idle: Option<Duration>,
    /// Offsets from the checkpoint this run resumed from.
    resume: Offsets,
    /// The next offset of every partition read so far.
    next: Offsets,
    /// Assigned partitions and their event time.
    times: BTreeMap<Split, SplitTime>,
}

impl Plan {
    pub(super) fn new(start: Start, idle: Option<Duration>) -> Arc<Mutex<Plan>> {
        Arc::new(Mutex::new(Plan {
            start,
            idle,
            resume: Offsets::default(),
            next: Offsets::default(),
            times: BTreeMap::new(),
        }))
    }

    /// Where `partition` starts: its checkpointed offset, else `start`.
    /// A timestamp start comes back as `Offset::Offset(ms)` in a list
    /// [`resolve_times`] turns into offsets.
    pub(super) fn offset_for(&self, topic: &str, partition: i32) -> Offset {
        let split = (topic.to_string(), partition);
        if let Some(o) = self
            .next
            .0
            .get(&split)
            .or_else(|| self.resume.0.get(&split))
        {
            return Offset::Offset(*o);
        }
        match self.start {
            Start::Named(StartName::Earliest) => Offset::Beginning,
            Start::Named(StartName::Latest) => Offset::End,
            Start::Named(StartName::Committed) | Start::Default => Offset::Stored,
            Start::Timestamp { timestamp_ms } => Offset::Offset(timestamp_ms),
        }
    }

    fn is_time_start(&self, topic: &str, partition: i32) -> bool {
        let split = (topic.to_string(), partition);
        matches!(self.start, Start::Timestamp { .. })
            && !self.next.0.contains_key(&split)
            && !self.resume.0.contains_key(&split)
    }

    pub(super) fn resume(&mut self, offsets: Offsets) {
        self.resume = offsets;
    }

    pub(super) fn read(&mut self, topic: &str, partition: i32, offset: i64) {
        let split = (topic.to_string(), partition);
        self.next.0.insert(split.clone(), offset + 1);
        self.times
            .entry(split)
            .or_insert_with(|| SplitTime {
                newest: None,
                active: Instant::now(),
            })
            .active = Instant::now();
    }

    pub(super) fn next(&self, topic: &str, partition: i32) -> Option<i64> {
        self.next.0.get(&(topic.to_string(), partition)).copied()
    }

    /// The checkpoint's position: every partition read, and those the
    /// resumed checkpoint had that this run has not reached yet.
    pub(super) fn position(&self) -> serde_json::Value {
        let mut all = self.resume.clone();
        all.0
            .extend(self.next.0.iter().map(|(k, v)| (k.clone(), *v)));
        all.to_position()
    }

    /// The offsets to commit to the group once the checkpoint is durable.
    pub(super) fn committable(&self) -> Option<TopicPartitionList> {
        if self.next.0.is_empty() {
            return None;
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.next.0 {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .ok()?;
        }
        Some(tpl)
    }

    pub(super) fn observe_time(&mut self, topic: &str, partition: i32, micros: i64) {
        if let Some(split) = self.times.get_mut(&(topic.to_string(), partition)) {
            split.newest = Some(split.newest.map_or(micros, |n| n.max(micros)));
        }
    }

    /// The event time every assigned partition has passed; `None` while
    /// one that is not idle has shown none yet.
    pub(super) fn event_time(&self) -> Option<i64> {
        let live = |s: &&SplitTime| self.idle.is_none_or(|idle| s.active.elapsed() < idle);
        let mut least: Option<i64> = None;
        for split in self.times.values().filter(live) {
            let t = split.newest?;
            least = Some(least.map_or(t, |l| l.min(t)));
        }
        least
    }

    fn assigned(&mut self, tpl: &TopicPartitionList) {
        for e in tpl.elements() {
            self.times
                .entry((e.topic().to_string(), e.partition()))
                .or_insert_with(|| SplitTime {
                    newest: None,
                    active: Instant::now(),
                });
        }
    }

    fn revoked(&mut self) {
        self.times.clear();
    }
}

/// Records a manual assignment (`until = "end"`).
pub(super) fn note_assigned(plan: &Arc<Mutex<Plan>>, tpl: &TopicPartitionList) {
    if let Ok(mut p) = plan.lock() {
        p.assigned(tpl);
    }
}

/// Replaces the timestamps a timestamp `start` put in `tpl` by offsets.
pub(super) fn resolve_times<C: ConsumerContext + HasPlan>(
    consumer: &BaseConsumer<C>,
    mut tpl: TopicPartitionList,
) -> KafkaResult<TopicPartitionList> {
    let plan = consumer.context().plan();
    let timed: Vec<Split> = {
        let Ok(p) = plan.lock() else {
            return Ok(tpl);
        };
        tpl.elements()
            .iter()
            .filter(|e| p.is_time_start(e.topic(), e.partition()))
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect()
    };
    if timed.is_empty() {
        return Ok(tpl);
    }
    let mut times = TopicPartitionList::new();
    for (topic, partition) in &timed {
        if let Some(e) = tpl.find_partition(topic, *partition) {
            times.add_partition_offset(topic, *partition, e.offset())?;
        }
    }
    let found = consumer.offsets_for_times(times, BROKER_TIMEOUT)?;
    for e in found.elements() {
        // No record at or after the time: start at the end.
        let offset = match e.offset() {
            Offset::Offset(o) if o >= 0 => Offset::Offset(o),
            _ => Offset::End,
        };
        tpl.set_partition_offset(e.topic(), e.partition(), offset)?;
    }
    Ok(tpl)
}

/// The client context: librdkafka's log to `tracing`, and assignments
/// that start each partition where the plan says.
pub(super) struct Weir {
    node: String,
    plan: Arc<Mutex<Plan>>,
}

/// What `resolve_times` needs of a context.
pub(super) trait HasPlan {
    fn plan(&self) -> Arc<Mutex<Plan>>;
}

impl HasPlan for Weir {
    fn plan(&self) -> Arc<Mutex<Plan>> {
        self.plan.clone()
    }
}

impl Weir {
    pub(super) fn new(node: &str, plan: Arc<Mutex<Plan>>) -> Weir {
        Weir {
            node: node.to_string(),
            plan,
        }
    }
}

impl ClientContext for Weir {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::kafka::log(&self.node, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(node = %self.node, error = %error, reason, "Kafka client error");
    }
}

impl ConsumerContext for Weir {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut wanted = TopicPartitionList::new();
                if let Ok(plan) = self.plan.lock() {
                    for e in tpl.elements() {
                        let offset = plan.offset_for(e.topic(), e.partition());
                        let _ = wanted.add_partition_offset(e.topic(), e.partition(), offset);
                    }
                }
                let wanted = resolve_times(consumer, wanted).unwrap_or_else(|e| {
                    tracing::error!(node = %self.node, error = %e,
                        "can't find the offsets for `start.timestamp_ms`; starting at the committed offsets");
                    tpl.clone()
                });
                if let Ok(mut plan) = self.plan.lock() {
                    plan.assigned(&wanted);
                }
                let names: Vec<String> = wanted
                    .elements()
                    .iter()
                    .map(|e| format!("{}/{}@{:?}", e.topic(), e.partition(), e.offset()))
                    .collect();
                tracing::info!(node = %self.node, partitions = ?names, "assigned");
                if let Err(e) = consumer.assign(&wanted) {
                    tracing::error!(node = %self.node, error = %e, "can't take the assigned partitions");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(node = %self.node, partitions = tpl.count(), "revoked");
                if let Ok(mut plan) = self.plan.lock() {
                    plan.revoked();
                }
                if let Err(e) = consumer.unassign() {
                    tracing::error!(node = %self.node, error = %e, "can't give the partitions up");
                }
            }
            other => {
                tracing::error!(node = %self.node, error = ?other, "rebalance failed");
                let _ = consumer.unassign();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_as_the_offsets_it_holds() {
        let mut offsets = Offsets::default();
        offsets.0.insert(("orders".into(), 0), 12);
        offsets.0.insert(("orders".into(), 5), 7);
        offsets.0.insert(("refunds".into(), 1), 0);
        let back = Offsets::from_position(&offsets.to_position()).unwrap();
        assert_eq!(back, offsets);
    }

    #[test]
    fn a_partition_starts_at_its_checkpoint_else_where_start_says() {
        let plan = Plan::new(Start::Named(StartName::Latest), None);
        let mut p = plan.lock().unwrap();
        let mut offsets = Offsets::default();
        offsets.0.insert(("t".into(), 0), 40);
        p.resume(offsets);
        assert_eq!(p.offset_for("t", 0), Offset::Offset(40));
        assert_eq!(p.offset_for("t", 1), Offset::End);
        p.read("t", 1, 9);
        assert_eq!(p.offset_for("t", 1), Offset::Offset(10));
        let position = Offsets::from_position(&p.position()).unwrap();
        assert_eq!(
            position.0[&("t".to_string(), 0)],
            40,
            "unreached partition forgotten"
        );
        assert_eq!(position.0[&("t".to_string(), 1)], 10);
    }

    #[test]
    fn the_event_time_is_the_least_partition_s_and_idle_ones_do_not_hold_it() {
        let plan = Plan::new(Start::Default, Some(Duration::from_millis(30)));
        let mut p = plan.lock().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("t", 0);
        tpl.add_partition("t", 1);
        p.assigned(&tpl);
        p.read("t", 0, 0);
        p.observe_time("t", 0, 5_000);
        assert_eq!(p.event_time(), None, "partition 1 has shown no time yet");
        p.read("t", 1, 0);
        p.observe_time("t", 1, 3_000);
        assert_eq!(p.event_time(), Some(3_000));
        std::thread::sleep(Duration::from_millis(40));
        p.read("t", 0, 1);
        p.observe_time("t", 0, 9_000);
        assert_eq!(
            p.event_time(),
            Some(9_000),
            "idle partition 1 still holds it"
        );
    }
}
