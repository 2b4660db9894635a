//! The producer's context: delivery reports counted (a record the broker
//! refused must never pass silently), librdkafka's log to `tracing`.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::encode::Rec;

/// Delivery failures since they were last taken.
#[derive(Debug, Default)]
struct Failures {
    count: u64,
    first: Option<(RDKafkaErrorCode, String)>,
}

/// The producer's context.
pub(crate) struct Delivery {
    node: String,
    failures: Mutex<Failures>,
}

impl Delivery {
    pub(crate) fn new(node: &str) -> Delivery {
        Delivery {
            node: node.to_string(),
            failures: Mutex::new(Failures::default()),
        }
    }

    /// The first failure since the last call, if any.
    pub(crate) fn take_error(&self) -> Option<RDKafkaErrorCode> {
        self.take_failures().map(|(_, code, _)| code)
    }

    /// How many records failed since the last call, the first one's code
    /// and where it was going.
    pub(crate) fn take_failures(&self) -> Option<(u64, RDKafkaErrorCode, String)> {
        let mut f = self.failures.lock().ok()?;
        let taken = std::mem::take(&mut *f);
        taken.first.map(|(code, what)| (taken.count, code, what))
    }
}

impl ClientContext for Delivery {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::kafka::log(&self.node, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(node = %self.node, error = %error, reason, "Kafka client error");
    }
}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, message)) = result {
            use rdkafka::message::Message;
            let code = e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
            if let Ok(mut f) = self.failures.lock() {
                f.count += 1;
                f.first.get_or_insert_with(|| {
                    (
                        code,
                        format!("{}/{}: {e}", message.topic(), message.partition()),
                    )
                });
            }
        }
    }
}

/// Queues `r` for sending, waiting while librdkafka's queue is full.
pub(crate) fn send(producer: &ThreadedProducer<Delivery>, r: &Rec) -> KafkaResult<()> {
    let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&r.topic);
    if let Some(k) = &r.key {
        record = record.key(k.as_slice());
    }
    if let Some(v) = &r.value {
        record = record.payload(v.as_slice());
    }
    if let Some(p) = r.partition {
        record = record.partition(p);
    }
    if !r.headers.is_empty() {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (key, value) in &r.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_slice()),
            });
        }
        record = record.headers(headers);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
}
