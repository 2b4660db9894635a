//! `parse-time`: parses string columns into timestamps (microseconds).
//!
//! ```toml
//! [transforms.times]
//! plugin = "plugins/parse-time.wasm"
//! inputs = ["orders"]
//! config = { columns = ["created_at"], formats = ["%d/%m/%Y %H:%M"], on_error = "null" }
//! ```
//!
//! - `columns`: the columns to parse; each is replaced in place.
//! - `formats`: chrono `strftime` patterns tried in order. Default: ISO 8601
//!   / RFC 3339 with `T` or space, optional fraction and offset, or a bare
//!   date. A pattern with `%z`/`%:z` converts the offset to UTC.
//! - `timezone`: the zone label of the output column (default `"UTC"`;
//!   values without an offset are taken as UTC). Use `""` for none.
//! - `on_error`: `"null"` (default) turns an unparseable value into null;
//!   `"fail"` fails the batch, naming the value.
//!
//! A column that is already a timestamp is converted to microseconds.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use weir_plugin_sdk::arrow_array::cast::AsArray;
use weir_plugin_sdk::arrow_array::types::{
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use weir_plugin_sdk::prelude::*;

/// What to do with a value no format parses.
#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Null it.
    #[default]
    Null,
    /// Fail the batch.
    Fail,
}

/// The `config` table.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `columns`: string (or timestamp) columns to parse.
    columns: Vec<String>,
    /// `formats`: patterns tried in order.
    #[serde(default)]
    formats: Vec<String>,
    /// `timezone`: output zone label (default "UTC").
    #[serde(default = "utc")]
    timezone: String,
    /// `on_error`: `"null"` or `"fail"`.
    #[serde(default)]
    on_error: OnError,
}

fn utc() -> String {
    "UTC".into()
}

const DEFAULT_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
];

struct ParseTime {
    config: Config,
    formats: Vec<String>,
}

/// Parses `s` with one pattern into µs since the epoch (UTC).
fn parse_with(s: &str, format: &str) -> Option<i64> {
    let has_offset = format.contains("%z") || format.contains("%:z") || format.contains("%#z");
    if has_offset {
        return DateTime::parse_from_str(s, format).ok().map(|t| t.timestamp_micros());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
        return Some(t.and_utc().timestamp_micros());
    }
    NaiveDate::parse_from_str(s, format)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

impl ParseTime {
    fn output_type(&self) -> DataType {
        let tz = (!self.config.timezone.is_empty()).then(|| self.config.timezone.as_str().into());
        DataType::Timestamp(TimeUnit::Microsecond, tz)
    }

    fn parse(&self, s: &str) -> Option<i64> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        self.formats.iter().find_map(|f| parse_with(s, f))
    }

    fn convert(&self, name: &str, array: &ArrayRef) -> Result<ArrayRef> {
        let micros: TimestampMicrosecondArray = match array.data_type() {
            DataType::Utf8 => {
                let strings = array.as_string::<i32>();
                let mut out = Vec::with_capacity(strings.len());
                for value in strings.iter() {
                    let parsed = value.and_then(|s| self.parse(s));
                    if let (Some(raw), None, OnError::Fail) = (value, parsed, self.config.on_error) {
                        if !raw.trim().is_empty() {
                            return Err(Error::msg(format!(
                                "parse-time: column {name:?}: can't parse {raw:?} with any of {:?}",
                                self.formats
                            )));
                        }
                    }
                    out.push(parsed);
                }
                out.into_iter().collect()
            }
            DataType::Timestamp(unit, _) => match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().unary(|v| v * 1_000_000),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().unary(|v| v * 1000),
                TimeUnit::Microsecond => array.as_primitive::<weir_plugin_sdk::arrow_array::types::TimestampMicrosecondType>().clone(),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().unary(|v| v / 1000),
            },
            other => {
                return Err(Error::msg(format!(
                    "parse-time: column {name:?} is {other}; expected strings or timestamps"
                )))
            }
        };
        Ok(Arc::new(micros.with_data_type(self.output_type())))
    }
}

fn check(input: &Schema, config: &Config) -> Result<()> {
    for c in &config.columns {
        let field = input
            .field_with_name(c)
            .map_err(|_| Error::msg(format!("parse-time: column {c:?} is not in the input")))?;
        if !matches!(field.data_type(), DataType::Utf8 | DataType::Timestamp(_, _)) {
            return Err(Error::msg(format!(
                "parse-time: column {c:?} is {}; expected strings or timestamps",
                field.data_type()
            )));
        }
    }
    Ok(())
}

impl Transform for ParseTime {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        if config.columns.is_empty() {
            return Err(Error::msg("parse-time: `columns` must name at least one column"));
        }
        let formats = if config.formats.is_empty() {
            DEFAULT_FORMATS.iter().map(|f| f.to_string()).collect()
        } else {
            config.formats.clone()
        };
        Ok(ParseTime { config, formats })
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        check(input, config)?;
        let this = ParseTime::new(config.clone())?;
        let fields: Vec<Field> = input
            .fields()
            .iter()
            .map(|f| {
                if config.columns.contains(f.name()) {
                    Field::new(f.name(), this.output_type(), true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        Ok(Some(Schema::new(fields)))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        let mut out = Output::pass();
        for name in &self.config.columns {
            let array = input.array(name)?;
            out = out.with_column(name.clone(), self.convert(name, &array)?);
        }
        Ok(vec![out])
    }
}

weir_plugin_sdk::export!(ParseTime);
