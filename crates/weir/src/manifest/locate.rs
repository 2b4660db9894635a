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

/// The key whose value is the string `value`, searched through `table`
/// (nested tables too): an ``unknown variant `x` `` message names the
/// value, not the key, so the key is found by it.
pub(crate) fn key_with_value(table: &toml::Table, value: &str) -> Option<String> {
    fn holds(v: &toml::Value, value: &str) -> bool {
        match v {
            toml::Value::String(s) => s == value || s.contains(value),
            toml::Value::Array(items) => items.iter().any(|i| holds(i, value)),
            toml::Value::Table(t) => t.values().any(|i| holds(i, value)),
            _ => false,
        }
    }
    let exact = table
        .iter()
        .find(|(_, v)| matches!(v, toml::Value::String(s) if s == value));
    exact
        .or_else(|| table.iter().find(|(_, v)| holds(v, value)))
        .map(|(k, _)| k.clone())
}

/// The values a message quotes (`unknown time zone "Europe/Pariss"`),
/// to find the key holding one of them.
pub(crate) fn quoted_values(message: &str) -> Vec<&str> {
    message
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|v| !v.is_empty())
        .collect()
}

/// The variant a serde message rejects: ``unknown variant `x` ``.
pub(crate) fn unknown_variant(message: &str) -> Option<&str> {
    let rest = &message[message.find("unknown variant `")? + "unknown variant `".len()..];
    rest.find('`').map(|end| &rest[..end])
}

/// A position serde_json appends to its messages (`… at line 1 column
/// 11`): the message without it, and the byte offset in `json`.
fn json_position<'m>(json: &str, message: &'m str) -> Option<(&'m str, usize)> {
    let at = message.rfind(" at line ")?;
    let mut words = message[at..].split_whitespace().skip(2);
    let line: usize = words.next()?.parse().ok()?;
    let column: usize = words.nth(1)?.parse().ok()?;
    let start: usize = json
        .split('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    Some((
        message[..at].trim_end(),
        (start + column.saturating_sub(1)).min(json.len()),
    ))
}

/// The path of object keys open at byte `offset` of `json` (the key whose
/// value was being read there), e.g. `["aggregates", "op"]`.
fn json_key_path(json: &str, offset: usize) -> Vec<String> {
    // One entry per open container: whether it is an object, and the last
    // key read in it.
    let mut stack: Vec<(bool, Option<String>)> = Vec::new();
    let bytes = json.as_bytes();
    let end = offset.min(bytes.len());
    let mut expecting_key = false;
    let mut i = 0;
    while i < end {
        match bytes[i] {
            open @ (b'{' | b'[') => {
                stack.push((open == b'{', None));
                expecting_key = open == b'{';
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => expecting_key = stack.last().is_some_and(|(object, _)| *object),
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if std::mem::take(&mut expecting_key) {
                    if let Some((_, key)) = stack.last_mut() {
                        *key = json.get(start..i).map(str::to_string);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    stack.into_iter().filter_map(|(_, key)| key).collect()
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
        Error::manifest(format!(
            "{}{line}: {table}{key}: {message}",
            self.path.display()
        ))
    }

    /// A plugin's complaint about its `config` (sent to it as `json`),
    /// located at the manifest line of the key it is about: serde_json's
    /// `at line 1 column 11` in the JSON becomes `config.key` and its line.
    pub fn config_error(&self, section: &str, node: &str, json: &str, message: &str) -> Error {
        let Some((text, offset)) = json_position(json, message) else {
            return self.error(section, Some(node), Some("config"), message);
        };
        let path = if text.contains("missing field `") {
            Vec::new()
        } else {
            json_key_path(json, offset)
        };
        let start = self.line_of(section, Some(node), Some("config"));
        let line = match (start, path.last()) {
            (Some(start), Some(key)) => self.lines[start - 1..]
                .iter()
                .enumerate()
                .take_while(|(i, l)| *i == 0 || !is_header(l))
                .find(|(_, l)| {
                    l.match_indices(key.as_str()).any(|(at, _)| {
                        let before = l[..at].chars().next_back();
                        let after = l[at + key.len()..].trim_start().trim_start_matches('"');
                        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                            && after.trim_start().starts_with('=')
                    })
                })
                .map(|(i, _)| start + i),
            _ => None,
        }
        .or(start)
        .map(|l| format!(":{l}"))
        .unwrap_or_default();
        let key = std::iter::once("config".to_string())
            .chain(path)
            .collect::<Vec<_>>()
            .join(".");
        Error::manifest(format!(
            "{}{line}: [{section}.{node}] key `{key}`: {text}",
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
        Error::manifest(format!(
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

    #[test]
    fn a_json_position_in_a_plugin_message_becomes_the_config_key_and_its_line() {
        let text = "[transforms.times]\nplugin = \"p.wasm\"\nconfig = { columns = [\"t\"],\n  timezone = \"Europe/Pariss\" }\n";
        let loc = Located::new(Path::new("p.toml"), text);
        let json = r#"{"columns":["t"],"timezone":"Europe/Pariss"}"#;
        let err = loc
            .config_error(
                "transforms",
                "times",
                json,
                "init rejected the config: unknown time zone \"Europe/Pariss\" at line 1 column 44",
            )
            .to_string();
        assert!(
            err.contains("p.toml:4: [transforms.times] key `config.timezone`: init rejected the config: unknown time zone \"Europe/Pariss\"")
                && !err.contains("column 44"),
            "{err}"
        );
        assert_eq!(
            json_key_path(r#"{"a":{"b":1,"c":[{"d":2"#, 23),
            ["a", "c", "d"]
        );
    }

    #[test]
    fn an_unknown_variant_is_located_at_the_key_holding_it() {
        let table: toml::Table = toml::from_str("plugin = \"x\"\non_error = \"ignore\"").unwrap();
        assert_eq!(
            key_with_value(
                &table,
                unknown_variant("unknown variant `ignore`, expected one of `fail`").unwrap()
            ),
            Some("on_error".into())
        );
    }
}
