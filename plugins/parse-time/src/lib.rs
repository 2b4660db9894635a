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
//! - `timezone`: an IANA zone name (default `"UTC"`). Values without an
//!   offset are wall-clock time in this zone and are converted to UTC
//!   (`05:37:46` in `Europe/Paris` in winter is `04:37:46Z`); values with
//!   an offset keep their instant. The output column carries the zone as
//!   its label. A wall-clock time that happens twice (the hour when clocks
//!   go back) is the first of the two; one that doesn't exist (the hour
//!   skipped when clocks go forward) is read with the offset in force just
//!   before the jump (`02:30` → `03:30+02:00`), as PostgreSQL does. `""`:
//!   no zone at all (values taken as UTC, a column without a label). An
//!   unknown zone name is a config error.
//! - `on_error`: `"null"` (default) turns an unparseable value into null;
//!   `"fail"` fails the batch, naming the value.
//!
//! A column that is already a timestamp is converted to microseconds; one
//! without a zone is wall-clock time, converted like text.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use weir_plugin_sdk::arrow_array::cast::AsArray;
use weir_plugin_sdk::arrow_array::types::{
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use weir_plugin_sdk::arrow_buffer::{BooleanBufferBuilder, NullBuffer};
use weir_plugin_sdk::prelude::*;
use weir_plugin_sdk::text::{is_text, strings};

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
    /// `timezone`: the zone of values without an offset (default "UTC").
    #[serde(default = "utc", deserialize_with = "zone_name")]
    timezone: String,
    /// `on_error`: `"null"` or `"fail"`.
    #[serde(default)]
    on_error: OnError,
}

fn utc() -> String {
    "UTC".into()
}

/// A zone name the IANA database knows (or `""`); the error, raised while
/// the config is read, is located at the key by the host.
fn zone_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if !name.is_empty() && name.parse::<Tz>().is_err() {
        return Err(serde::de::Error::custom(format!(
            "unknown time zone {name:?}; use an IANA name such as \"Europe/Paris\", \
             \"America/New_York\" or \"UTC\""
        )));
    }
    Ok(name)
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
    /// The zone of wall-clock values (`None`: UTC, nothing to convert).
    zone: Option<Tz>,
    formats: Vec<Format>,
    /// The default formats are in use: the ISO 8601 fast path applies.
    iso: bool,
}

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian; H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `n` ASCII digits at `s[at..]` as a number.
fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// The default formats, parsed by hand (chrono tries each pattern in turn
/// and re-reads the pattern every time: ~20x slower on a column).
/// `YYYY-MM-DD`, optionally `(T| )HH:MM[:SS[.fraction]]`, then optionally
/// `Z` or `±HH:MM`. Anything else returns `None`; the caller then falls
/// back to the chrono patterns, so the accepted language only grows.
fn iso8601(s: &[u8]) -> Option<(i64, bool)> {
    let (y, m, d) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let mut micros = days_from_civil(y, m, d) * 86_400_000_000;
    if s.len() == 10 {
        return Some((micros, false));
    }
    if !matches!(s.get(10), Some(b'T' | b' ')) || s.get(13) != Some(&b':') {
        return None;
    }
    let (hh, mm) = (digits(s, 11, 2)?, digits(s, 14, 2)?);
    let mut at = 16;
    let mut ss = 0;
    if s.get(at) == Some(&b':') {
        ss = digits(s, 17, 2)?;
        at = 19;
        if s.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            let mut fraction = 0i64;
            while let Some(b) = s.get(at).filter(|b| b.is_ascii_digit()) {
                if at - start < 6 {
                    fraction = fraction * 10 + i64::from(b - b'0');
                }
                at += 1;
            }
            if at == start {
                return None;
            }
            fraction *= 10i64.pow(6u32.saturating_sub((at - start) as u32));
            micros += fraction;
        }
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    micros += ((hh * 60 + mm) * 60 + ss) * 1_000_000;
    match &s[at..] {
        [] => Some((micros, false)),
        [b'Z'] => Some((micros, true)),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (digits(s, at + 1, 2)?, digits(s, at + 4, 2)?);
            let offset = (oh * 60 + om) * 60_000_000;
            Some((
                if *sign == b'+' {
                    micros - offset
                } else {
                    micros + offset
                },
                true,
            ))
        }
        _ => None,
    }
}

/// Whether a trimmed value can match a default pattern at all: each
/// starts with `%Y`, which chrono reads as an optional sign, then digits.
fn may_start_a_year(s: &[u8]) -> bool {
    matches!(s.first(), Some(b'0'..=b'9' | b'+' | b'-'))
}

/// A chrono pattern and what it says of offsets, read once: values that
/// miss the fast path try every pattern in turn.
#[derive(Debug)]
struct Format {
    text: String,
    /// It reads a numeric offset (`%z`, `%:z`, `%#z`).
    has_offset: bool,
    /// It ends in a literal `Z` (Zulu) after the time: an offset too, UTC.
    zulu: bool,
}

impl Format {
    fn new(text: &str) -> Format {
        Format {
            has_offset: text.contains("%z") || text.contains("%:z") || text.contains("%#z"),
            zulu: text.ends_with('Z'),
            text: text.to_string(),
        }
    }
}

/// Parses `s` with one pattern: µs since the epoch, and whether the value
/// carried its offset (else it is wall-clock time, read here as UTC).
fn parse_with(s: &str, format: &Format) -> Option<(i64, bool)> {
    let (text, zulu) = (format.text.as_str(), format.zulu);
    if format.has_offset {
        return DateTime::parse_from_str(s, text)
            .ok()
            .map(|t| (t.timestamp_micros(), true));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, text) {
        return Some((t.and_utc().timestamp_micros(), zulu));
    }
    NaiveDate::parse_from_str(s, text)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| (t.and_utc().timestamp_micros(), false))
}

/// Wall-clock µs (`naive`, read as if UTC) in `zone` as a UTC instant: the
/// first of two when the clock went back; across a gap (clocks forward),
/// with the offset in force before the gap.
fn localize(zone: Tz, naive: i64) -> Option<i64> {
    let wall = DateTime::from_timestamp_micros(naive)?.naive_utc();
    let local = match zone.from_local_datetime(&wall) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t,
        chrono::LocalResult::None => {
            // Gaps are shorter than a day: a day earlier, the old offset.
            let before = zone
                .offset_from_utc_datetime(&(wall - chrono::Duration::days(1)))
                .fix();
            return Some(naive - i64::from(before.local_minus_utc()) * 1_000_000);
        }
    };
    Some(local.timestamp_micros())
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
        let parsed = if self.iso {
            match iso8601(s.as_bytes()) {
                Some(parsed) => Some(parsed),
                // Junk ("n/a", "not a date") costs chrono eight patterns.
                None if !may_start_a_year(s.as_bytes()) => None,
                None => self.formats.iter().find_map(|f| parse_with(s, f)),
            }
        } else {
            self.formats.iter().find_map(|f| parse_with(s, f))
        }?;
        match (parsed, self.zone) {
            ((micros, false), Some(zone)) => localize(zone, micros),
            ((micros, _), _) => Some(micros),
        }
    }

    /// A timestamp column without a zone holds wall-clock values.
    fn localize_all(
        &self,
        micros: TimestampMicrosecondArray,
        naive: bool,
    ) -> Result<TimestampMicrosecondArray> {
        let (Some(zone), true) = (self.zone, naive) else {
            return Ok(micros);
        };
        let out: TimestampMicrosecondArray = micros
            .iter()
            .map(|v| v.and_then(|v| localize(zone, v)))
            .collect();
        Ok(out)
    }

    fn convert(&self, name: &str, array: &ArrayRef) -> Result<ArrayRef> {
        let micros: TimestampMicrosecondArray = match strings(array) {
            Some(strings) => {
                // Values and validity built side by side: no per-row Option.
                let mut values = Vec::with_capacity(strings.len());
                let mut valid = BooleanBufferBuilder::new(strings.len());
                for raw in strings {
                    let parsed = raw.and_then(|s| self.parse(s));
                    if let (Some(raw), None, OnError::Fail) = (raw, parsed, self.config.on_error) {
                        if !raw.trim().is_empty() {
                            return Err(Error::msg(format!(
                                "parse-time: column {name:?}: can't parse {raw:?} with any of {:?}",
                                self.formats.iter().map(|f| &f.text).collect::<Vec<_>>()
                            )));
                        }
                    }
                    values.push(parsed.unwrap_or_default());
                    valid.append(parsed.is_some());
                }
                TimestampMicrosecondArray::new(values.into(), Some(NullBuffer::new(valid.finish())))
            }
            None => self.timestamps(name, array)?,
        };
        Ok(Arc::new(micros.with_data_type(self.output_type())))
    }

    /// A timestamp column in the configured zone, as microseconds.
    fn timestamps(&self, name: &str, array: &ArrayRef) -> Result<TimestampMicrosecondArray> {
        Ok(match array.data_type() {
            DataType::Timestamp(unit, label) => self.localize_all(match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .unary(|v| v * 1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .unary(|v| v * 1000),
                TimeUnit::Microsecond => array
                    .as_primitive::<weir_plugin_sdk::arrow_array::types::TimestampMicrosecondType>()
                    .clone(),
                TimeUnit::Nanosecond => array
                    .as_primitive::<TimestampNanosecondType>()
                    .unary(|v| v / 1000),
            }, label.is_none())?,
            other => {
                return Err(Error::msg(format!(
                    "parse-time: column {name:?} is {other}; expected strings or timestamps"
                )))
            }
        })
    }
}

fn check(input: &Schema, config: &Config) -> Result<()> {
    for c in &config.columns {
        let field = input
            .field_with_name(c)
            .map_err(|_| Error::msg(format!("parse-time: column {c:?} is not in the input")))?;
        if !(is_text(field.data_type()) || matches!(field.data_type(), DataType::Timestamp(_, _))) {
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
            return Err(Error::msg(
                "parse-time: `columns` must name at least one column",
            ));
        }
        let iso = config.formats.is_empty();
        let formats = if iso {
            DEFAULT_FORMATS.iter().map(|f| Format::new(f)).collect()
        } else {
            config.formats.iter().map(|f| Format::new(f)).collect()
        };
        let zone = match config.timezone.as_str() {
            "" | "UTC" => None,
            name => Some(
                name.parse::<Tz>()
                    .map_err(|_| Error::msg(format!("parse-time: unknown time zone {name:?}")))?,
            ),
        };
        Ok(ParseTime {
            config,
            zone,
            formats,
            iso,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path agrees with chrono on every shape the defaults take.
    #[test]
    fn iso_fast_path_matches_the_chrono_patterns() {
        let chrono = |s: &str| {
            DEFAULT_FORMATS
                .iter()
                .find_map(|f| parse_with(s, &Format::new(f)))
        };
        for s in [
            "2024-01-21",
            "2024-02-29 23:59:59",
            "2024-01-21T02:52:34",
            "2024-01-21T02:52:34Z",
            "2024-01-21T02:52:34.5Z",
            "2024-01-21T02:52:34.123456789",
            "2024-01-21 02:52",
            "2024-01-21T02:52",
            "2024-01-21T02:52:34+02:00",
            "2024-01-21 02:52:34-05:30",
            "1969-12-31 23:59:59",
            "1600-03-01",
        ] {
            assert_eq!(iso8601(s.as_bytes()), chrono(s), "{s}");
            assert!(chrono(s).is_some(), "{s}");
        }
        for s in [
            "2023-02-29",
            "2024-13-01",
            "2024-01-21 24:00:00",
            "not a date",
            "2024-01-21X",
        ] {
            assert_eq!(iso8601(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn a_value_that_cannot_start_a_year_matches_no_default_pattern() {
        for s in [
            "not a date",
            "n/a",
            "Dec 24, 2024",
            "T2024-01-01",
            "?",
            "é2024-01-01",
        ] {
            assert!(!may_start_a_year(s.as_bytes()), "{s}");
            let chrono = DEFAULT_FORMATS
                .iter()
                .find_map(|f| parse_with(s, &Format::new(f)));
            assert_eq!(chrono, None, "{s}");
        }
        for s in ["2024-01-01", "+2024-01-01", "-0044-03-15"] {
            assert!(may_start_a_year(s.as_bytes()), "{s}");
        }
    }

    fn parser(zone: &str) -> ParseTime {
        let config: Config = weir_plugin_sdk::serde_json::from_str(&format!(
            r#"{{"columns":["t"],"timezone":"{zone}"}}"#
        ))
        .unwrap();
        ParseTime::new(config).unwrap_or_else(|_| panic!("zone {zone}"))
    }

    fn utc(micros: i64) -> String {
        DateTime::from_timestamp_micros(micros)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    #[test]
    fn naive_values_are_wall_clock_time_in_the_zone_and_stored_as_utc() {
        let paris = parser("Europe/Paris");
        let at = |s: &str| utc(paris.parse(s).unwrap());
        assert_eq!(at("2024-01-15 05:37:46"), "2024-01-15T04:37:46Z"); // CET, +01:00
        assert_eq!(at("2024-07-15 05:37:46"), "2024-07-15T03:37:46Z"); // CEST, +02:00
                                                                       // An offset present wins over the zone.
        assert_eq!(at("2024-07-15T05:37:46+00:00"), "2024-07-15T05:37:46Z");
        // Clocks forward 2024-03-31 02:00 -> 03:00: 02:30 doesn't exist;
        // read with the offset before the gap (+01:00), like PostgreSQL.
        assert_eq!(at("2024-03-31 02:30:00"), "2024-03-31T01:30:00Z");
        // Clocks back 2024-10-27 03:00 -> 02:00: 02:30 happens twice; the
        // first (+02:00).
        assert_eq!(at("2024-10-27 02:30:00"), "2024-10-27T00:30:00Z");
        let utc_zone = parser("UTC");
        assert_eq!(
            utc(utc_zone.parse("2024-01-15 05:37:46").unwrap()),
            "2024-01-15T05:37:46Z"
        );
    }

    #[test]
    fn an_unknown_zone_is_a_config_error_naming_it() {
        let err = weir_plugin_sdk::serde_json::from_str::<Config>(
            r#"{"columns":["t"],"timezone":"Europe/Pariss"}"#,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("unknown time zone \"Europe/Pariss\""), "{err}");
    }
}
