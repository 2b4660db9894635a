//! Locating manifest errors: file, line and key, from the manifest's text.

use std::path::{Path, PathBuf};

use crate::Error;

/// A manifest's text, kept to turn node and key names into line numbers.
#[derive(Debug, Clone)]
pub struct Located {
    path: PathBuf,
    lines: Vec<String>,
}

/// The key a serde message is about: ``unknown field `x` ``, ``missing field `x` ``.
pub(crate) fn key_in_message(message: &str) -> Option<String> {
    for marker in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            return rest.find('`').map(|end| rest[..end].to_string());
        }
    }
    if message.contains("unknown variant `") {
        return Some("type".to_string());
    }
    None
}

/// Whether `line` assigns `key` (`key = …`, `"key" = …`).
fn assigns(line: &str, key: &str) -> bool {
    let line = line.trim_start();
    let rest = line
        .strip_prefix(key)
        .or_else(|| line.strip_prefix(&format!("\"{key}\"")));
    rest.is_some_and(|r| r.trim_start().starts_with('='))
}

/// Whether `line` is a table header (`[…]` or `[[…]]`).
fn is_header(line: &str) -> bool {
    line.trim_start().starts_with('[')
}

impl Located {
    pub(crate) fn new(path: &Path, text: &str) -> Self {
        Located {
            path: path.to_path_buf(),
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1-based line of `[section.node]` (or `[section]` with no node), and of
    /// `key` inside it when given and found.
    pub fn line_of(&self, section: &str, node: Option<&str>, key: Option<&str>) -> Option<usize> {
        let header = match node {
            Some(node) => format!("[{section}.{node}]"),
            None => format!("[{section}]"),
        };
        let quoted = node.map(|n| format!("[{section}.\"{n}\"]"));
        let start = self.lines.iter().position(|l| {
            let t = l.trim();
            t == header || quoted.as_deref() == Some(t)
        });
        let Some(start) = start else {
            // An inline table: `node = { … }` under `[section]`.
            let section_start = self
                .lines
                .iter()
                .position(|l| l.trim() == format!("[{section}]"))?;
            let node = node?;
            return self.lines[section_start + 1..]
                .iter()
                .take_while(|l| !is_header(l))
                .position(|l| assigns(l, node))
                .map(|i| section_start + 2 + i);
        };
        if let Some(key) = key {
            let within = self.lines[start + 1..]
                .iter()
                .take_while(|l| !is_header(l))
                .position(|l| assigns(l, key));
            if let Some(i) = within {
                return Some(start + 2 + i);
            }
            // `[section.node.key]` sub-table.
            let sub = format!("{}.{key}]", header.trim_end_matches(']'));
            if let Some(i) = self.lines.iter().position(|l| l.trim() == sub) {
                return Some(i + 1);
            }
        }
        Some(start + 1)
    }

    /// A manifest error at `[section.node]`'s `key`, with a hint.
    pub fn error(
        &self,
        section: &str,
        node: Option<&str>,
        key: Option<&str>,
        message: impl std::fmt::Display,
    ) -> Error {
        let line = self
            .line_of(section, node, key)
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        let table = match node {
            Some(node) => format!("[{section}.{node}]"),
            None => format!("[{section}]"),
        };
        let key = key.map(|k| format!(" key `{k}`")).unwrap_or_default();
        Error::Manifest(format!(
            "{}{line}: {table}{key}: {message}",
            self.path.display()
        ))
    }

    /// A TOML syntax or top-level shape error, at its line and column.
    pub(crate) fn toml_error(&self, e: &toml::de::Error) -> Error {
        let position = e.span().map(|span| {
            let mut offset = 0;
            for (i, line) in self.lines.iter().enumerate() {
                let next = offset + line.len() + 1;
                if span.start < next {
                    return format!(":{}:{}", i + 1, span.start - offset + 1);
                }
                offset = next;
            }
            String::new()
        });
        let key = key_in_message(e.message())
            .map(|k| format!(" key `{k}`:"))
            .unwrap_or_default();
        Error::Manifest(format!(
            "{}{}:{key} {}",
            self.path.display(),
            position.unwrap_or_default(),
            e.message().trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[pipeline]\nbatch_size = 10\n\n[sources.orders]\ntype = \"csv\"\npath = \"a.csv\"\n\n[sinks]\nout = { type = \"stdout\", inputs = [\"orders\"] }\n";

    fn located() -> Located {
        Located::new(Path::new("p.toml"), TEXT)
    }

    #[test]
    fn finds_a_key_inside_a_node_table() {
        assert_eq!(
            located().line_of("sources", Some("orders"), Some("path")),
            Some(6)
        );
    }

    #[test]
    fn falls_back_to_the_header_when_the_key_is_absent() {
        assert_eq!(
            located().line_of("sources", Some("orders"), Some("schema")),
            Some(4)
        );
    }

    #[test]
    fn finds_an_inline_node_table() {
        assert_eq!(located().line_of("sinks", Some("out"), None), Some(9));
    }

    #[test]
    fn reads_the_key_out_of_serde_messages() {
        assert_eq!(
            key_in_message("unknown field `delimitr`, expected one of `path`"),
            Some("delimitr".into())
        );
        assert_eq!(key_in_message("missing field `path`"), Some("path".into()));
        assert_eq!(
            key_in_message("unknown variant `xlsx`, expected `csv`"),
            Some("type".into())
        );
        assert_eq!(key_in_message("invalid type: integer"), None);
    }
}
