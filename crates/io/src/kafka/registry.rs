//! A Confluent Schema Registry client: the three REST calls weir needs
//! (the API Confluent Schema Registry 5.x–7.x, Karapace, Redpanda and
//! Apicurio's compatibility layer all serve).
//!
//! - `GET /schemas/ids/{id}`: a record's writer schema, by the id in its
//!   frame (cached: ids never change meaning);
//! - `GET /subjects/{subject}/versions/latest`: the reader schema;
//! - `POST /subjects/{subject}/versions`: registers a sink's schema (the
//!   registry answers the existing id when it is already there).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

/// The `registry` table of a `kafka` source or sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `url`: the registry's base URL, `http://host:8081`.
    pub url: String,
    /// `subject`: the subject of the value schema. Default `<topic>-value`
    /// (Confluent's TopicNameStrategy).
    pub subject: Option<String>,
    /// `reader_schema`: an Avro schema (JSON) to read every record as,
    /// resolving each writer schema against it (fields added with
    /// defaults, removed, promoted). Default: the subject's latest.
    pub reader_schema: Option<String>,
    /// `schema_id`: a sink writes with this registered schema instead of
    /// registering its own.
    pub schema_id: Option<u32>,
    /// `username`: basic authentication.
    pub username: Option<String>,
    /// `password_env`: the environment variable holding the password.
    pub password_env: Option<String>,
}

/// A registry connection with its cache of schemas by id.
pub(crate) struct Registry {
    url: String,
    agent: ureq::Agent,
    auth: Option<String>,
    by_id: HashMap<u32, String>,
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
}

#[derive(Deserialize)]
struct Version {
    id: u32,
    schema: String,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl Registry {
    pub(crate) fn new(config: &RegistryConfig) -> Result<Registry, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        let auth = match (&config.username, &config.password_env) {
            (Some(user), Some(var)) => {
                let password = std::env::var(var).map_err(|_| {
                    format!("registry.password_env: the environment variable {var:?} is not set")
                })?;
                Some(format!("Basic {}", base64(&format!("{user}:{password}"))))
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err("registry: give both `username` and `password_env`, or neither".into())
            }
            (None, None) => None,
        };
        Ok(Registry {
            url: config.url.trim_end_matches('/').to_string(),
            agent,
            auth,
            by_id: HashMap::new(),
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<String>) -> Result<Vec<u8>, String> {
        let url = format!("{}{path}", self.url);
        let response = match body {
            Some(body) => {
                let mut r = self.agent.post(&url).header("content-type", CONTENT_TYPE);
                if let Some(a) = &self.auth {
                    r = r.header("authorization", a);
                }
                r.send(body.as_bytes())
            }
            None => {
                let mut r = self.agent.get(&url).header("accept", CONTENT_TYPE);
                if let Some(a) = &self.auth {
                    r = r.header("authorization", a);
                }
                r.call()
            }
        };
        let mut response = response.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .map_err(|e| format!("{method} {url}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{method} {url}: the registry answered {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
        Ok(bytes)
    }

    /// The schema registered under `id`.
    pub(crate) fn schema(&mut self, id: u32) -> Result<String, String> {
        if let Some(s) = self.by_id.get(&id) {
            return Ok(s.clone());
        }
        let bytes = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
        let body: SchemaBody = serde_json::from_slice(&bytes)
            .map_err(|e| format!("schema id {id}: the registry's answer: {e}"))?;
        self.by_id.insert(id, body.schema.clone());
        Ok(body.schema)
    }

    /// The newest schema of `subject`, and its id.
    pub(crate) fn latest(&mut self, subject: &str) -> Result<(u32, String), String> {
        let bytes = self.call(
            "GET",
            &format!("/subjects/{}/versions/latest", escape(subject)),
            None,
        )?;
        let v: Version = serde_json::from_slice(&bytes)
            .map_err(|e| format!("subject {subject:?}: the registry's answer: {e}"))?;
        self.by_id.insert(v.id, v.schema.clone());
        Ok((v.id, v.schema))
    }

    /// Registers `schema` under `subject` (or finds it there); its id.
    pub(crate) fn register(&mut self, subject: &str, schema: &str) -> Result<u32, String> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let bytes = self.call(
            "POST",
            &format!("/subjects/{}/versions", escape(subject)),
            Some(body),
        )?;
        let r: Registered = serde_json::from_slice(&bytes)
            .map_err(|e| format!("subject {subject:?}: the registry's answer: {e}"))?;
        self.by_id.insert(r.id, schema.to_string());
        Ok(r.id)
    }
}

/// A subject in a URL path (topic names are `[a-zA-Z0-9._-]`; anything
/// else is percent-encoded).
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn base64(s: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = s.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| (n << 8) | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_auth_is_base64_as_rfc_4648_spells_it() {
        assert_eq!(super::base64("user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::base64("a"), "YQ==");
        assert_eq!(super::base64("ab"), "YWI=");
    }
}
