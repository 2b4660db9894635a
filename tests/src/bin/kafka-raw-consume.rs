//! librdkafka's raw consume rate, the ceiling the kafka benchmark puts
//! weir's source against (what `rdkafka_performance -C` measures): every
//! record of a topic read and counted, nothing decoded.
//!
//! kafka-raw-consume BROKERS TOPIC  →  "RECORDS BYTES SECONDS"

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic] = args.as_slice() else {
        anyhow::bail!("usage: kafka-raw-consume BROKERS TOPIC");
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "weir-bench-raw")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        // The end is told by an empty fetch: don't wait half a second for it.
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Offset(0))?;
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut ended = HashSet::new();
    while ended.len() < partitions.len() {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => {
                records += 1;
                bytes += m.payload().map_or(0, |p| p.len()) as u64;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => anyhow::bail!("{e}"),
            None => anyhow::bail!("no record for 5 s"),
        }
    }
    println!("{records} {bytes} {:.4}", started.elapsed().as_secs_f64());
    Ok(())
}
