//! Which language a plugin is written in, told from its folder.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A language weir builds plugins from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A cargo crate or workspace (`Cargo.toml`).
    Rust,
    /// C sources (`*.c`) using `weir.h`.
    C,
    /// An ES module `plugin.js` using `weir.js`.
    JavaScript,
    /// A module `plugin.py` using `weir`.
    Python,
}

impl Language {
    /// Every language, in the order [`Language::detect`] tries them.
    pub const ALL: [Language; 4] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::C,
    ];

    /// The name `--lang` takes.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::C => "c",
            Language::JavaScript => "js",
            Language::Python => "python",
        }
    }

    /// Parses a `--lang` value.
    pub fn parse(name: &str) -> Option<Language> {
        match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Some(Language::Rust),
            "c" => Some(Language::C),
            "js" | "javascript" => Some(Language::JavaScript),
            "python" | "py" => Some(Language::Python),
            _ => None,
        }
    }

    /// The language of the plugin at `dir`: `Cargo.toml` → Rust,
    /// `plugin.py` → Python, `plugin.js` → JavaScript, any `*.c` → C.
    pub fn detect(dir: &Path) -> Result<Language> {
        if !dir.is_dir() {
            return Err(Error::Build(format!("{}: not a directory", dir.display())));
        }
        if dir.join("Cargo.toml").is_file() {
            return Ok(Language::Rust);
        }
        if dir.join("plugin.py").is_file() {
            return Ok(Language::Python);
        }
        if dir.join("plugin.js").is_file() {
            return Ok(Language::JavaScript);
        }
        if !c_sources(dir)?.is_empty() {
            return Ok(Language::C);
        }
        Err(Error::Build(format!(
            "{}: no plugin found — expected Cargo.toml (Rust), plugin.py (Python), plugin.js \
             (JavaScript) or *.c files (C); `weir plugin new NAME --lang LANG` creates one",
            dir.display()
        )))
    }

    /// Whether a change to `path` (a file of a plugin in this language)
    /// is a change to its sources, for `weir dev`.
    pub fn is_source(self, path: &Path) -> bool {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match self {
            Language::Rust => matches!(ext, "rs" | "toml" | "wit"),
            Language::C => matches!(ext, "c" | "h"),
            Language::JavaScript => matches!(ext, "js" | "mjs" | "json"),
            Language::Python => matches!(ext, "py"),
        }
    }
}

/// The C sources (`*.c`) in `dir`, sorted.
pub(crate) fn c_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c") && p.is_file())
        .collect();
    sources.sort();
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_round_trips_its_name() {
        for language in Language::ALL {
            assert_eq!(Language::parse(language.name()), Some(language));
        }
        assert_eq!(Language::parse("cobol"), None);
    }

    #[test]
    fn detection_names_what_it_looked_for() {
        let dir = std::env::temp_dir().join(format!("weir-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = Language::detect(&dir).unwrap_err().to_string();
        assert!(
            err.contains("plugin.py") && err.contains("Cargo.toml"),
            "{err}"
        );
        std::fs::write(dir.join("x.c"), "").unwrap();
        assert_eq!(Language::detect(&dir).unwrap(), Language::C);
        std::fs::write(dir.join("plugin.js"), "").unwrap();
        assert_eq!(Language::detect(&dir).unwrap(), Language::JavaScript);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
