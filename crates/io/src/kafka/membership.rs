//! A consumer-group member that reads nothing: it joins the group on a
//! `kafka` source's topics and tells its owner which partitions the group
//! gives it, so that `weir run` can run one pipeline per partition
//! (`scale_out = "partitions"`) and move them between processes.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;

use crate::source::KafkaSourceConfig;
use crate::{Error, Result};

/// What the group did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// These partitions are now this member's.
    Assigned(Vec<i32>),
    /// These partitions are taken away: hand them over (checkpoint and
    /// commit) before this call returns.
    Revoked(Vec<i32>),
}

type Listener = Box<dyn FnMut(Assignment) + Send>;

struct Members {
    node: String,
    listener: Mutex<Listener>,
}

impl ClientContext for Members {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        super::log(&self.node, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(node = %self.node, error = %error, reason, "Kafka client error");
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    let mut ids: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl ConsumerContext for Members {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let change = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = consumer.assign(tpl).and_then(|()| consumer.pause(tpl)) {
                    tracing::error!(node = %self.node, error = %e, "can't take the assigned partitions");
                }
                Assignment::Assigned(partitions(tpl))
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                Assignment::Revoked(partitions(tpl))
            }
            other => {
                tracing::error!(node = %self.node, error = ?other, "rebalance failed");
                Assignment::Revoked(partitions(tpl))
            }
        };
        if let Ok(mut listener) = self.listener.lock() {
            listener(change.clone());
        }
        if matches!(change, Assignment::Revoked(_)) {
            let _ = consumer.unassign();
        }
    }
}

/// A member of a `kafka` source's group that only holds partitions.
pub struct Membership {
    consumer: BaseConsumer<Members>,
}

impl Membership {
    /// Joins `config`'s group on its topics; `listener` hears every
    /// assignment and revocation, from inside [`Membership::poll`].
    pub fn join(
        node: &str,
        config: &KafkaSourceConfig,
        listener: impl FnMut(Assignment) + Send + 'static,
    ) -> Result<Membership> {
        if config.topics.len() != 1 || config.topics[0].starts_with('^') {
            return Err(Error::source(
                node,
                "scale_out = \"partitions\" runs a pipeline per partition of one named topic; \
                 give exactly one topic",
            ));
        }
        let mut client = super::client(
            node,
            &config.brokers,
            config.security.as_ref(),
            &config.options,
        )?;
        client
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", config.session_timeout_ms.to_string())
            .set(
                "max.poll.interval.ms",
                // A revocation waits for the pipelines to stop.
                (config.session_timeout_ms + 60_000).to_string(),
            )
            .set("partition.assignment.strategy", "range");
        let consumer: BaseConsumer<Members> = client
            .create_with_context(Members {
                node: node.to_string(),
                listener: Mutex::new(Box::new(listener)),
            })
            .map_err(|e| Error::source_from(node, "can't create the group member", e))?;
        consumer
            .subscribe(&[config.topics[0].as_str()])
            .map_err(|e| Error::source_from(node, "can't join the group", e))?;
        Ok(Membership { consumer })
    }

    /// Keeps the membership alive and runs the listener on changes.
    pub fn poll(&self, timeout: Duration) {
        // Every partition is paused: nothing is fetched, only events.
        let _ = self.consumer.poll(timeout);
    }
}
