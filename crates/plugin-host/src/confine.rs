//! What a node's plugin instances are confined by: the `limits` and
//! `grants` tables of a transform. The plugin host owns these types; the
//! manifest reads them.

use std::path::PathBuf;

use serde::Deserialize;

use weir_core::defaults;

/// Capabilities granted to a plugin, the `grants` table of a transform.
/// Everything not listed is denied.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// `env`: names of host environment variables the plugin may read.
    pub env: Vec<String>,
    /// `dirs`: host directories preopened read-only, at the same path.
    pub dirs: Vec<PathBuf>,
    /// `stdio`: forward the plugin's stdout and stderr lines to the log.
    pub stdio: bool,
}

/// Per-node sandbox limits, the `limits` table of a transform.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// `memory_mb`: the most linear memory the plugin may grow to.
    pub memory_mb: u64,
    /// `timeout_ms`: wall-clock budget of one call (`process`, `finish`, …).
    pub timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: defaults::MEMORY_MB,
            timeout_ms: defaults::TIMEOUT_MS,
        }
    }
}

/// A node's limits and grants, as [`super::PluginHost::instantiate`]
/// takes them (a `&TransformConfig` converts).
#[derive(Debug, Clone, Copy)]
pub struct Confinement<'a> {
    /// The node's limits.
    pub limits: &'a Limits,
    /// The node's grants.
    pub grants: &'a Grants,
}
