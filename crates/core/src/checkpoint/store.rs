//! The on-disk form of a checkpoint: a directory `chk-<id>` holding
//! `meta.json` (positions, sink states, pending renames) and one
//! `<n>.state` file per stateful plugin (its snapshot bytes, as the
//! plugin wrote them). Written under a temporary name, fsynced, then
//! renamed into place: a checkpoint directory exists whole or not at all.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{NodeState, SinkState};
use crate::{Error, Result};

const PREFIX: &str = "chk-";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredNode {
    Source {
        position: Option<serde_json::Value>,
        watermark: Option<i64>,
    },
    Transform {
        state_file: Option<String>,
        next_batch: u64,
    },
    Sink {
        #[serde(flatten)]
        sink: SinkState,
        /// `<n>.data`: the sink's `data`, when it has any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_file: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Meta {
    id: u64,
    finished: bool,
    nodes: BTreeMap<String, StoredNode>,
}

/// A checkpoint read back from disk.
#[derive(Debug)]
pub struct Loaded {
    /// Its id; the resumed run's first checkpoint is `id + 1`.
    pub id: u64,
    /// Whether it was the final checkpoint of a run that ended normally.
    pub finished: bool,
    /// Every node's state, by name.
    pub nodes: BTreeMap<String, NodeState>,
    /// Where it was read from.
    pub path: PathBuf,
}

fn fail(path: &Path, e: impl Into<crate::Cause>) -> Error {
    Error::checkpoint_from(path.display(), e)
}

/// A checkpoint file that reads but says something it can't.
fn damaged(path: &Path, what: String) -> Error {
    Error::checkpoint(format!("{}: {what}", path.display()))
}

fn name(id: u64) -> String {
    format!("{PREFIX}{id:010}")
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| fail(path, e))?;
    file.write_all(bytes).map_err(|e| fail(path, e))?;
    file.sync_all().map_err(|e| fail(path, e))
}

fn sync_dir(dir: &Path) {
    // Makes the rename itself durable; not every filesystem allows it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes checkpoint `id` into `dir` atomically; returns the bytes written.
pub(super) fn write(
    dir: &Path,
    id: u64,
    states: &BTreeMap<String, NodeState>,
    finished: bool,
) -> Result<u64> {
    let mut written = 0u64;
    let temp = dir.join(format!(".{}.tmp", name(id)));
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).map_err(|e| fail(&temp, e))?;
    let mut nodes = BTreeMap::new();
    for (index, (node, state)) in states.iter().enumerate() {
        let stored = match state {
            NodeState::Source {
                position,
                watermark,
            } => StoredNode::Source {
                position: position.clone(),
                watermark: *watermark,
            },
            NodeState::Transform {
                state, next_batch, ..
            } => {
                let state_file = match state {
                    Some(bytes) => {
                        let file = format!("{index}.state");
                        write_synced(&temp.join(&file), bytes)?;
                        written += bytes.len() as u64;
                        Some(file)
                    }
                    None => None,
                };
                StoredNode::Transform {
                    state_file,
                    next_batch: *next_batch,
                }
            }
            NodeState::Sink(sink) => StoredNode::Sink {
                sink: SinkState {
                    data: None,
                    publish: None,
                    ..sink.clone()
                },
                data_file: match &sink.data {
                    Some(bytes) => {
                        let file = format!("{index}.data");
                        write_synced(&temp.join(&file), bytes)?;
                        written += bytes.len() as u64;
                        Some(file)
                    }
                    None => None,
                },
            },
        };
        nodes.insert(node.clone(), stored);
    }
    let meta = Meta {
        id,
        finished,
        nodes,
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| fail(&temp, e))?;
    write_synced(&temp.join("meta.json"), &json)?;
    written += json.len() as u64;
    sync_dir(&temp);
    let target = dir.join(name(id));
    std::fs::rename(&temp, &target).map_err(|e| fail(&target, e))?;
    sync_dir(dir);
    Ok(written)
}

fn ids(dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(PREFIX)?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

/// Deletes all but the newest `keep` checkpoints, and leftovers of
/// checkpoints that were being written when a run died.
pub(super) fn prune(dir: &Path, keep: usize) {
    let ids = ids(dir);
    for id in &ids[..ids.len().saturating_sub(keep)] {
        let _ = std::fs::remove_dir_all(dir.join(name(*id)));
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let text = file.to_string_lossy();
        if text.starts_with(&format!(".{PREFIX}")) && text.ends_with(".tmp") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn is_plain_name(file: &str) -> bool {
    let mut parts = Path::new(file).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}

/// A file the checkpoint's metadata names: written by `write` as
/// `<n>.state` or `<n>.data`, so anything else (a path out of the
/// checkpoint) is damage.
fn read_own_file(path: &Path, meta_path: &Path, node: &str, file: &str) -> Result<Vec<u8>> {
    if !is_plain_name(file) {
        return Err(damaged(
            meta_path,
            format!("node {node:?}: file {file:?} is not a file name in the checkpoint"),
        ));
    }
    let file = path.join(file);
    std::fs::read(&file).map_err(|e| fail(&file, e))
}

fn read(path: &Path, id: u64) -> Result<Loaded> {
    let meta_path = path.join("meta.json");
    let bytes = std::fs::read(&meta_path).map_err(|e| fail(&meta_path, e))?;
    let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| fail(&meta_path, e))?;
    if meta.id != id {
        return Err(damaged(
            &meta_path,
            format!(
                "says checkpoint {}, but it is in the folder of checkpoint {id}",
                meta.id
            ),
        ));
    }
    let mut nodes = BTreeMap::new();
    for (node, stored) in meta.nodes {
        let state = match stored {
            StoredNode::Source {
                position,
                watermark,
            } => NodeState::Source {
                position,
                watermark,
            },
            StoredNode::Transform {
                state_file,
                next_batch,
            } => {
                let state = state_file
                    .map(|file| read_own_file(path, &meta_path, &node, &file))
                    .transpose()?;
                NodeState::Transform {
                    state,
                    next_batch,
                    pending: None,
                }
            }
            StoredNode::Sink {
                mut sink,
                data_file,
            } => {
                sink.data = data_file
                    .map(|file| read_own_file(path, &meta_path, &node, &file))
                    .transpose()?;
                NodeState::Sink(sink)
            }
        };
        nodes.insert(node, state);
    }
    Ok(Loaded {
        id: meta.id,
        finished: meta.finished,
        nodes,
        path: path.to_path_buf(),
    })
}

/// The newest readable checkpoint in `dir`, if any. One that can't be
/// read (damaged by hand, say) is skipped for the one before it, loudly.
pub fn latest(dir: &Path) -> Result<Option<Loaded>> {
    for id in ids(dir).into_iter().rev() {
        let path = dir.join(name(id));
        match read(&path, id) {
            Ok(loaded) => return Ok(Some(loaded)),
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable checkpoint"),
        }
    }
    Ok(None)
}

/// Transform `node`'s state in every checkpoint kept in `dir` (those
/// that read; a damaged one is left out), newest last: what a state store
/// must keep on disk for any of them to restore.
pub fn transform_states(dir: &Path, node: &str) -> Vec<Vec<u8>> {
    let mut states = Vec::new();
    for id in ids(dir) {
        let path = dir.join(name(id));
        let meta_path = path.join("meta.json");
        let Ok(bytes) = std::fs::read(&meta_path) else {
            continue;
        };
        let Ok(meta) = serde_json::from_slice::<Meta>(&bytes) else {
            continue;
        };
        if let Some(StoredNode::Transform {
            state_file: Some(file),
            ..
        }) = meta.nodes.get(node)
        {
            if let Ok(state) = read_own_file(&path, &meta_path, node, file) {
                states.push(state);
            }
        }
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(meta: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(name(7));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta.json"), meta).unwrap();
        std::fs::write(root.path().join("secret"), "not state").unwrap();
        root
    }

    #[test]
    fn a_checkpoint_reads_back_its_nodes() {
        let root = stored(
            r#"{"id": 7, "finished": false, "nodes": {"t": {"transform": {"state_file": null, "next_batch": 3}}}}"#,
        );
        let loaded = latest(root.path()).unwrap().unwrap();
        assert_eq!(loaded.id, 7);
        assert_eq!(
            loaded.nodes["t"],
            NodeState::Transform {
                state: None,
                next_batch: 3,
                pending: None,
            }
        );
    }

    #[test]
    fn a_state_file_outside_the_checkpoint_is_damage_not_state() {
        let root = stored(
            r#"{"id": 7, "finished": false, "nodes": {"t": {"transform": {"state_file": "../secret", "next_batch": 0}}}}"#,
        );
        assert!(latest(root.path()).unwrap().is_none());
        let err = read(&root.path().join(name(7)), 7).unwrap_err().to_string();
        assert!(
            err.contains("is not a file name in the checkpoint"),
            "{err}"
        );
    }

    #[test]
    fn a_checkpoint_whose_id_disagrees_with_its_folder_is_damage() {
        let root = stored(r#"{"id": 99, "finished": false, "nodes": {}}"#);
        let err = read(&root.path().join(name(7)), 7).unwrap_err().to_string();
        assert!(err.contains("says checkpoint 99"), "{err}");
    }
}
