//! How a CSV file is written: delimiter, quoting, comments, lines to skip,
//! encoding, null sentinels and decimal mark — everything but its columns.
//! One [`Dialect`] serves the fast reader (arrow's), the record-level
//! reader (`on_bad_record`), schema inference and the header.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use arrow::csv::reader::Format;
use regex::Regex;
use serde::Deserialize;

use super::super::files;
use crate::{Error, Result};

/// `encoding`: how the file's bytes map to text.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 (a leading byte-order mark is dropped).
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    /// ISO-8859-1 (Latin-1): every byte is one character.
    #[serde(
        rename = "latin-1",
        alias = "latin1",
        alias = "iso-8859-1",
        alias = "ISO-8859-1"
    )]
    Latin1,
}

/// A validated CSV dialect.
#[derive(Debug, Clone)]
pub(crate) struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
    pub comment: Option<u8>,
    pub header: bool,
    /// Physical lines passed over before the header (or the first record).
    pub skip_rows: usize,
    pub encoding: Encoding,
    /// `decimal = ","`: float columns are written `1,5`.
    pub decimal_comma: bool,
    /// Values read as null in every column.
    pub null_values: Vec<String>,
}

/// The manifest keys a dialect is made of (`csv` and `directory` sources).
pub(crate) struct DialectKeys<'a> {
    pub delimiter: char,
    pub quote: char,
    pub escape: Option<char>,
    pub comment: Option<char>,
    pub header: bool,
    pub skip_rows: usize,
    pub encoding: Encoding,
    pub decimal: char,
    pub null_values: Option<&'a [String]>,
}

/// One ASCII character as a byte, or an error naming the key.
fn ascii(node: &str, key: &str, c: char) -> Result<u8> {
    u8::try_from(c).ok().filter(u8::is_ascii).ok_or_else(|| {
        Error::source(
            node,
            format!("`{key}` must be one ASCII character, not {c:?}"),
        )
    })
}

impl DialectKeys<'_> {
    /// Checks the keys and builds the dialect; errors name the key.
    pub(crate) fn dialect(&self, node: &str) -> Result<Dialect> {
        let delimiter = ascii(node, "delimiter", self.delimiter)?;
        let decimal_comma = match self.decimal {
            '.' => false,
            ',' if self.delimiter != ',' => true,
            ',' => {
                return Err(Error::source(
                    node,
                    "`decimal = \",\"` needs another `delimiter` (e.g. `delimiter = \";\"`)",
                ))
            }
            other => {
                return Err(Error::source(
                    node,
                    format!("`decimal` must be \".\" or \",\", not {other:?}"),
                ))
            }
        };
        Ok(Dialect {
            delimiter,
            quote: ascii(node, "quote", self.quote)?,
            escape: self.escape.map(|c| ascii(node, "escape", c)).transpose()?,
            comment: self
                .comment
                .map(|c| ascii(node, "comment", c))
                .transpose()?,
            header: self.header,
            skip_rows: self.skip_rows,
            encoding: self.encoding,
            decimal_comma,
            null_values: self
                .null_values
                .map_or_else(|| vec![String::new()], <[String]>::to_vec),
        })
    }
}

impl Dialect {
    /// Plain CSV: `delimiter`, double quotes, empty values null.
    pub(crate) fn plain(delimiter: u8, header: bool) -> Dialect {
        Dialect {
            delimiter,
            quote: b'"',
            escape: None,
            comment: None,
            header,
            skip_rows: 0,
            encoding: Encoding::Utf8,
            decimal_comma: false,
            null_values: vec![String::new()],
        }
    }

    /// The file's text from its first record (or header) on: `skip_rows`
    /// lines passed over, a UTF-8 byte-order mark dropped, Latin-1 turned
    /// into UTF-8.
    pub(crate) fn open(&self, node: &str, path: &Path) -> Result<Box<dyn Read + Send>> {
        let file = files::open(node, path)?;
        let mut input = BufReader::with_capacity(1 << 16, file);
        let unreadable = |e: std::io::Error| Error::source_from(node, path.display(), e);
        let mut line = Vec::new();
        for _ in 0..self.skip_rows {
            line.clear();
            if input.read_until(b'\n', &mut line).map_err(unreadable)? == 0 {
                break;
            }
        }
        Ok(match self.encoding {
            Encoding::Utf8 => {
                if input
                    .fill_buf()
                    .map_err(unreadable)?
                    .starts_with(b"\xEF\xBB\xBF")
                {
                    input.consume(3);
                }
                Box::new(input)
            }
            Encoding::Latin1 => Box::new(Latin1 {
                inner: input,
                pending: Vec::new(),
                at: 0,
            }),
        })
    }

    /// A record splitter for this dialect (quotes, escapes, comments).
    pub(crate) fn records<R: Read>(&self, input: R, header: bool) -> csv::Reader<R> {
        csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .quote(self.quote)
            .escape(self.escape)
            .double_quote(self.escape.is_none())
            .comment(self.comment)
            .has_headers(header)
            .flexible(true)
            .from_reader(input)
    }

    /// The column names in the header of `path`.
    pub(crate) fn header_names(&self, node: &str, path: &Path) -> Result<Vec<String>> {
        let mut reader = self.records(self.open(node, path)?, true);
        let header = reader.headers().map_err(|e| {
            Error::source_from(
                node,
                format!("{}: can't read the header", path.display()),
                e,
            )
        })?;
        Ok(header.iter().map(str::to_string).collect())
    }

    /// Which values are null, as arrow's CSV reader takes it; `None` for
    /// the default (empty values only), which arrow checks without a
    /// regex — matching every field against one costs parse speed.
    pub(crate) fn null_regex(&self) -> Option<Regex> {
        (self.null_values != [""]).then(|| self.null_pattern())
    }

    fn null_pattern(&self) -> Regex {
        let alternatives: Vec<String> = self.null_values.iter().map(|v| regex::escape(v)).collect();
        // Built from escaped literals: always a valid pattern.
        Regex::new(&format!("^(?:{})$", alternatives.join("|")))
            .unwrap_or_else(|_| Regex::new("^$").expect("a constant pattern"))
    }

    /// Whether `value` is one of the null sentinels.
    pub(crate) fn is_null(&self, value: &str) -> bool {
        self.null_values.iter().any(|n| n == value)
    }

    /// arrow's CSV format for text this dialect's records were rewritten
    /// into (quotes doubled, no escapes, no comment lines): the inference
    /// sample.
    pub(crate) fn plain_format(&self, header: bool) -> Format {
        let format = Format::default()
            .with_header(header)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote);
        match self.null_regex() {
            Some(nulls) => format.with_null_regex(nulls),
            None => format,
        }
    }

    /// arrow's CSV format for this dialect (the header as given).
    pub(crate) fn format(&self, header: bool) -> Format {
        let mut format = Format::default()
            .with_header(header)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote);
        if let Some(nulls) = self.null_regex() {
            format = format.with_null_regex(nulls);
        }
        if let Some(e) = self.escape {
            format = format.with_escape(e);
        }
        if let Some(c) = self.comment {
            format = format.with_comment(c);
        }
        format
    }
}

/// Latin-1 bytes as UTF-8 text, streaming.
struct Latin1<R> {
    inner: R,
    pending: Vec<u8>,
    at: usize,
}

impl<R: Read> Read for Latin1<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            let mut raw = vec![0; buf.len().clamp(1, 1 << 16)];
            let n = self.inner.read(&mut raw)?;
            self.pending.clear();
            self.at = 0;
            for &b in &raw[..n] {
                if b < 0x80 {
                    self.pending.push(b);
                } else {
                    self.pending
                        .extend_from_slice(&[0xC0 | (b >> 6), 0x80 | (b & 0x3F)]);
                }
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_bytes_become_the_same_characters_in_utf8() {
        let mut text = String::new();
        Latin1 {
            inner: &b"caf\xe9;M\xfcller;\xa3"[..],
            pending: Vec::new(),
            at: 0,
        }
        .read_to_string(&mut text)
        .unwrap();
        assert_eq!(text, "café;Müller;£");
    }

    #[test]
    fn null_sentinels_match_whole_values_only() {
        let d = DialectKeys {
            delimiter: ',',
            quote: '"',
            escape: None,
            comment: None,
            header: true,
            skip_rows: 0,
            encoding: Encoding::Utf8,
            decimal: '.',
            null_values: Some(&["".into(), "NA".into(), "-".into(), "n/a (x)".into()]),
        }
        .dialect("n")
        .unwrap();
        let re = d.null_regex().expect("sentinels beyond the default");
        for null in ["", "NA", "-", "n/a (x)"] {
            assert!(re.is_match(null), "{null:?}");
        }
        for value in ["NAN", "-1", "n/a x", " NA"] {
            assert!(!re.is_match(value), "{value:?}");
        }
    }
}
