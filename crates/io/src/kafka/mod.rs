//! What the `kafka` source and sink share: the connection (brokers,
//! security, librdkafka options), the value formats, and the Avro schema
//! registry client.

pub(crate) mod avro;
pub mod membership;
pub(crate) mod registry;

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use serde::Deserialize;

/// The `security` table of a `kafka` source or sink: how to reach a real
/// cluster (MSK, Confluent Cloud, Redpanda). Absent: plaintext.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// `protocol`: `"plaintext"` (default), `"ssl"`, `"sasl_plaintext"`
    /// or `"sasl_ssl"`.
    #[serde(default)]
    pub protocol: Protocol,
    /// `sasl_mechanism`: `"PLAIN"`, `"SCRAM-SHA-256"` or `"SCRAM-SHA-512"`.
    pub sasl_mechanism: Option<String>,
    /// `sasl_username`.
    pub sasl_username: Option<String>,
    /// `sasl_password_env`: the environment variable holding the password
    /// (a manifest is no place for a secret).
    pub sasl_password_env: Option<String>,
    /// `ca_file`: PEM file of the CA that signed the brokers' certificates
    /// (default: the system's trust store).
    pub ca_file: Option<String>,
    /// `cert_file` and `key_file`: a client certificate, for mutual TLS.
    pub cert_file: Option<String>,
    /// See `cert_file`.
    pub key_file: Option<String>,
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

/// A client's settings: `brokers`, `security`, and `options` passed to
/// librdkafka as they are (its CONFIGURATION.md names them).
pub(crate) fn client(
    node: &str,
    brokers: &str,
    security: Option<&Security>,
    options: &BTreeMap<String, String>,
) -> crate::Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    // librdkafka logs through our tracing, not stderr.
    config.set("log_level", "4");
    if let Some(s) = security {
        config.set(
            "security.protocol",
            match s.protocol {
                Protocol::Plaintext => "plaintext",
                Protocol::Ssl => "ssl",
                Protocol::SaslPlaintext => "sasl_plaintext",
                Protocol::SaslSsl => "sasl_ssl",
            },
        );
        if let Some(m) = &s.sasl_mechanism {
            config.set("sasl.mechanism", m);
        }
        if let Some(u) = &s.sasl_username {
            config.set("sasl.username", u);
        }
        if let Some(var) = &s.sasl_password_env {
            let password = std::env::var(var).map_err(|_| {
                crate::Error::source(
                    node,
                    format!(
                        "security.sasl_password_env: the environment variable {var:?} is not set"
                    ),
                )
            })?;
            config.set("sasl.password", password);
        }
        for (key, value) in [
            ("ssl.ca.location", &s.ca_file),
            ("ssl.certificate.location", &s.cert_file),
            ("ssl.key.location", &s.key_file),
        ] {
            if let Some(v) = value {
                config.set(key, v);
            }
        }
    }
    for (key, value) in options {
        config.set(key, value);
    }
    Ok(config)
}

/// How a record's value is encoded (`format`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A JSON object per record: one column per field.
    Json,
    /// Avro in the Confluent wire format (magic byte, schema id, body),
    /// schemas from a schema registry.
    Avro,
    /// UTF-8 text: one `value` column.
    String,
    /// Raw bytes: one binary `value` column.
    Bytes,
}

/// One record as polled.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Raw {
    /// Where the record is, for an error or a bad-record report.
    pub(crate) fn location(&self) -> String {
        format!("partition {} offset {}", self.partition, self.offset)
    }

    /// The value as text, for a bad-record report.
    pub(crate) fn text(&self) -> String {
        match &self.value {
            Some(v) => String::from_utf8_lossy(v).into_owned(),
            None => "(no value: a tombstone)".into(),
        }
    }
}

/// librdkafka's log lines, through `tracing`.
pub(crate) fn log(
    node: &str,
    level: rdkafka::config::RDKafkaLogLevel,
    facility: &str,
    message: &str,
) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(node, facility, "librdkafka: {message}")
        }
        L::Warning => tracing::warn!(node, facility, "librdkafka: {message}"),
        L::Notice | L::Info => tracing::info!(node, facility, "librdkafka: {message}"),
        L::Debug => tracing::debug!(node, facility, "librdkafka: {message}"),
    }
}
