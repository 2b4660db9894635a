//! The kafka tests' real components: the broker (tansu, started once by
//! `scripts/kafka start`), topics made by librdkafka's Python client
//! (`tests/reference/kafka_client.py`), and a schema registry serving the
//! Confluent REST subset weir uses, from memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::api::{self, Response};
use crate::{reference, repo};

/// The test broker's address, `127.0.0.1:PORT`.
pub fn brokers() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS.get_or_init(|| {
        let out = std::process::Command::new(repo().join("scripts/kafka"))
            .arg("start")
            .output()
            .expect("scripts/kafka");
        assert!(
            out.status.success(),
            "starting the Kafka broker: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("address")
            .trim()
            .to_string()
    })
}

/// Runs `kafka_client.py COMMAND ARGS…` against the test broker; its
/// standard output (JSON for the read commands).
pub fn client(command: &str, args: &[&str]) -> String {
    let mut all = vec![command, brokers()];
    all.extend_from_slice(args);
    let out = reference("kafka_client.py", &all);
    assert!(
        out.status.success(),
        "kafka_client.py {command} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Reads every record of `topic` as a `read_committed` consumer would:
/// `{"count", "distinct", "duplicated", "records": [{key, value,
/// partition, headers}]}`.
pub fn read(topic: &str) -> serde_json::Value {
    serde_json::from_str(&client("read", &[topic])).expect("kafka_client.py read: JSON")
}

/// A new topic with `partitions` partitions and a name no other test (or
/// earlier run: the broker lives across runs) uses.
pub fn topic(prefix: &str, partitions: u32) -> String {
    let name = crate::unique_table(prefix);
    client("create", &[&name, &partitions.to_string()]);
    name
}

#[derive(Default)]
struct Subjects {
    /// Schemas by id - 1.
    schemas: Vec<String>,
    /// Each subject's schema ids, oldest first.
    versions: HashMap<String, Vec<u32>>,
}

/// A schema registry: `GET /schemas/ids/{id}`, `GET
/// /subjects/{s}/versions/latest`, `POST /subjects/{s}/versions`, the
/// calls weir and Confluent's serializers make, answered as Confluent
/// Schema Registry 7 answers them.
pub struct Registry {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Every request served.
    pub requests: Arc<Mutex<Vec<api::Request>>>,
}

/// Starts a schema registry.
pub fn registry() -> Registry {
    let state = Arc::new(Mutex::new(Subjects::default()));
    let api = api::serve(move |r| {
        let mut s = state.lock().expect("registry");
        let not_found = |code: u32, what: &str| {
            Response::json(format!(
                r#"{{"error_code": {code}, "message": "{what} not found"}}"#
            ))
            .with_status(404)
        };
        let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        match (r.method.as_str(), parts.as_slice()) {
            ("GET", ["schemas", "ids", id]) => match id
                .parse::<usize>()
                .ok()
                .and_then(|i| s.schemas.get(i.wrapping_sub(1)))
            {
                Some(schema) => Response::json(serde_json::json!({ "schema": schema }).to_string()),
                None => not_found(40403, "Schema"),
            },
            ("GET", ["subjects", subject, "versions", "latest"]) => {
                match s
                    .versions
                    .get(*subject)
                    .and_then(|v| v.last().map(|id| (v.len(), *id)))
                {
                    Some((version, id)) => Response::json(
                        serde_json::json!({
                            "subject": subject, "version": version, "id": id,
                            "schema": s.schemas[id as usize - 1],
                        })
                        .to_string(),
                    ),
                    None => not_found(40401, "Subject"),
                }
            }
            ("POST", ["subjects", subject, "versions"]) => {
                let Ok(body) = serde_json::from_str::<serde_json::Value>(&r.body) else {
                    return Response::json(r#"{"error_code": 42201, "message": "bad body"}"#)
                        .with_status(422);
                };
                let schema = body["schema"].as_str().unwrap_or_default().to_string();
                // The same schema text is the same id, in any subject.
                let id = match s.schemas.iter().position(|x| *x == schema) {
                    Some(i) => i as u32 + 1,
                    None => {
                        s.schemas.push(schema);
                        s.schemas.len() as u32
                    }
                };
                let versions = s.versions.entry(subject.to_string()).or_default();
                if !versions.contains(&id) {
                    versions.push(id);
                }
                Response::json(serde_json::json!({ "id": id }).to_string())
            }
            _ => Response::json(r#"{"error_code": 404, "message": "no such endpoint"}"#)
                .with_status(404),
        }
    });
    Registry {
        url: api.base,
        requests: api.requests,
    }
}
