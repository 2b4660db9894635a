//! PostgreSQL values in their binary wire form → Arrow arrays, by column
//! type. docs/postgres.md has the table; the rules that matter:
//!
//! - `numeric(p, s)` is a decimal of the same precision and scale, read
//!   exactly (decimal128 up to 38 digits, decimal256 up to 76). A
//!   `numeric` without a declared precision can hold any scale row by row,
//!   so it is read as its exact text (`"0.0001"`, `"1e30"` written out) —
//!   never a float; cast it in the query (`amount::numeric(12,2)`) to get
//!   a decimal. `NaN`/`Infinity` in a decimal column are an error naming
//!   the row, not a null.
//! - One-dimensional arrays are lists of their element's type, nulls
//!   inside kept; a multi-dimensional value is an error saying how to
//!   flatten it.
//! - `json`/`jsonb`, enums, `uuid` are text; `time` is time64(µs);
//!   `interval` is an interval(month-day-nano), its three fields as
//!   PostgreSQL keeps them.

use std::sync::Arc;

use ::postgres::types::{Kind, Type};
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, ListArray, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    DataType, Decimal128Type, Decimal256Type, Field, IntervalMonthDayNano, IntervalUnit, TimeUnit,
};

/// A decoding failure, said to the user with the column's name around it.
pub(super) type Result<T> = std::result::Result<T, String>;

/// The Arrow type a column of PostgreSQL type `t` (with its type modifier,
/// e.g. a numeric's precision and scale) is read as; `None`: no mapping.
pub(super) fn arrow_type(t: &Type, typmod: i32) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
            DataType::Utf8
        }
        Type::UUID => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIME => DataType::Time64(TimeUnit::Microsecond),
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::INTERVAL => DataType::Interval(IntervalUnit::MonthDayNano),
        Type::NUMERIC => numeric_type(typmod),
        _ => match t.kind() {
            Kind::Enum(_) => DataType::Utf8,
            Kind::Domain(base) => arrow_type(base, typmod)?,
            Kind::Array(element) => DataType::List(Arc::new(Field::new_list_field(
                arrow_type(element, typmod)?,
                true,
            ))),
            _ => return None,
        },
    })
}

/// `numeric(p, s)` → decimal(p, s); no declared precision (or a scale
/// Arrow can't hold) → exact text.
fn numeric_type(typmod: i32) -> DataType {
    // PostgreSQL's numeric typmod: ((p << 16) | s) + 4, s in 11 bits,
    // negative since PostgreSQL 15.
    const VARHDRSZ: i32 = 4;
    if typmod < VARHDRSZ {
        return DataType::Utf8;
    }
    let packed = typmod - VARHDRSZ;
    let precision = (packed >> 16) & 0xffff;
    let scale = ((packed & 0x7ff) ^ 1024) - 1024;
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(p), Ok(s)) if s <= p as i8 && p <= 38 => DataType::Decimal128(p, s),
        (Ok(p), Ok(s)) if s <= p as i8 && p <= 76 => DataType::Decimal256(p, s),
        _ => DataType::Utf8,
    }
}

/// `values` (one per row, `None` for null) of PostgreSQL type `t` as an
/// array of `data_type`, which [`arrow_type`] gave for `t`.
pub(super) fn decode(values: &[Option<&[u8]>], t: &Type, data_type: &DataType) -> Result<ArrayRef> {
    macro_rules! build {
        ($builder:expr, |$b:ident| $decode:expr) => {{
            let mut builder = $builder;
            for (row, value) in values.iter().enumerate() {
                match value {
                    Some($b) => builder.append_value($decode.map_err(|e| at(row, e))?),
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    const PG_EPOCH_DAYS: i32 = 10_957;
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let base = match t.kind() {
        Kind::Domain(base) => base,
        _ => t,
    };
    Ok(match (base, data_type) {
        (_, DataType::List(item)) => {
            let Kind::Array(element) = base.kind() else {
                return Err(format!("{t} is not an array type"));
            };
            list(values, element, item.clone())?
        }
        (&Type::NUMERIC, DataType::Decimal128(p, s)) => {
            build!(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
                |b| { numeric_text(b).and_then(|text| decimal::<Decimal128Type>(&text, *p, *s)) }
            )
        }
        (&Type::NUMERIC, DataType::Decimal256(p, s)) => {
            build!(
                Decimal256Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
                |b| { numeric_text(b).and_then(|text| decimal::<Decimal256Type>(&text, *p, *s)) }
            )
        }
        (&Type::NUMERIC, _) => build!(StringBuilder::new(), |b| numeric_text(b)),
        (&Type::BOOL, _) => build!(BooleanBuilder::new(), |b| Ok::<_, String>(
            b.first() == Some(&1)
        )),
        (&Type::INT2, _) => build!(Int16Builder::new(), |b| be(b).map(i16::from_be_bytes)),
        (&Type::INT4, _) => build!(Int32Builder::new(), |b| be(b).map(i32::from_be_bytes)),
        (&Type::INT8, _) => build!(Int64Builder::new(), |b| be(b).map(i64::from_be_bytes)),
        (&Type::FLOAT4, _) => build!(Float32Builder::new(), |b| be(b).map(f32::from_be_bytes)),
        (&Type::FLOAT8, _) => build!(Float64Builder::new(), |b| be(b).map(f64::from_be_bytes)),
        (&Type::BYTEA, _) => build!(BinaryBuilder::new(), |b| Ok::<_, String>(b)),
        (&Type::JSONB, _) => build!(StringBuilder::new(), |b| {
            // jsonb's binary form: a version byte, then the text.
            utf8(b.get(1..).unwrap_or_default())
        }),
        (&Type::UUID, _) => build!(StringBuilder::new(), |b| be::<16>(b).map(uuid_text)),
        (&Type::DATE, _) => build!(Date32Builder::new(), |b| be(b)
            .map(|v| i32::from_be_bytes(v).saturating_add(PG_EPOCH_DAYS))),
        (&Type::TIME, _) => build!(Time64MicrosecondBuilder::new(), |b| be(b)
            .map(i64::from_be_bytes)),
        (&Type::TIMESTAMP, _) => build!(TimestampMicrosecondBuilder::new(), |b| be(b)
            .map(|v| i64::from_be_bytes(v).saturating_add(PG_EPOCH_MICROS))),
        (&Type::TIMESTAMPTZ, _) => build!(
            TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            |b| be(b).map(|v| i64::from_be_bytes(v).saturating_add(PG_EPOCH_MICROS))
        ),
        (&Type::INTERVAL, _) => build!(IntervalMonthDayNanoBuilder::new(), |b| interval(b)),
        // text, varchar, char, name, json, enums: UTF-8 text.
        _ => build!(StringBuilder::new(), |b| utf8(b)),
    })
}

fn at(row: usize, e: String) -> String {
    format!("row {} of the batch: {e}", row + 1)
}

/// One-dimensional arrays as a list of their elements.
fn list(values: &[Option<&[u8]>], element: &Type, item: Arc<Field>) -> Result<ArrayRef> {
    let mut elements = Vec::new();
    let mut offsets = Vec::with_capacity(values.len() + 1);
    offsets.push(0i32);
    for (row, value) in values.iter().enumerate() {
        if let Some(bytes) = value {
            array_elements(bytes, &mut elements).map_err(|e| at(row, e))?;
        }
        let end = i32::try_from(elements.len()).map_err(|_| {
            at(
                row,
                "over 2^31 array elements in one batch; lower `batch_size`".into(),
            )
        })?;
        offsets.push(end);
    }
    let child = decode(&elements, element, item.data_type())?;
    let nulls = NullBuffer::from_iter(values.iter().map(Option::is_some));
    let nulls = (nulls.null_count() > 0).then_some(nulls);
    ListArray::try_new(item, OffsetBuffer::new(offsets.into()), child, nulls)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| e.to_string())
}

/// A binary array value's elements, appended to `out` (`None`: null).
fn array_elements<'a>(bytes: &'a [u8], out: &mut Vec<Option<&'a [u8]>>) -> Result<()> {
    let mut r = Reader(bytes);
    let dimensions = r.i32()?;
    let _has_nulls = r.i32()?;
    let _element_oid = r.i32()?;
    match dimensions {
        0 => return Ok(()),
        1 => {}
        n => {
            return Err(format!(
                "a {n}-dimensional array; weir reads one dimension: flatten it in the query \
                 (e.g. `SELECT ARRAY(SELECT unnest(col))`) or cast it to text"
            ))
        }
    }
    let length = r.i32()?;
    let _lower_bound = r.i32()?;
    for _ in 0..length {
        let size = r.i32()?;
        out.push(match usize::try_from(size) {
            Ok(size) => Some(r.take(size)?),
            Err(_) => None,
        });
    }
    Ok(())
}

/// A numeric's exact decimal text (`-12.50`, `0.0001`, `NaN`), from its
/// binary form: digit groups of base 10,000, the weight of the first
/// group, a sign, and the number of decimal places.
pub(super) fn numeric_text(bytes: &[u8]) -> Result<String> {
    let mut r = Reader(bytes);
    let groups = r.u16()?;
    let weight = i32::from(r.i16()?);
    let sign = r.u16()?;
    let places = usize::from(r.u16()?);
    let digits = (0..groups).map(|_| r.u16()).collect::<Result<Vec<_>>>()?;
    let mut text = match sign {
        0x0000 => String::new(),
        0x4000 => "-".to_string(),
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        other => return Err(format!("a numeric with an unknown sign 0x{other:04x}")),
    };
    let group = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&group(0).to_string());
        for i in 1..=weight {
            text.push_str(&format!("{:04}", group(i)));
        }
    }
    if places > 0 {
        let mut fraction = String::with_capacity(places + 4);
        let mut i = weight + 1;
        while fraction.len() < places {
            fraction.push_str(&format!("{:04}", group(i)));
            i += 1;
        }
        fraction.truncate(places);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

/// The exact decimal of `text` at `precision` and `scale`.
fn decimal<T: arrow::datatypes::DecimalType>(
    text: &str,
    precision: u8,
    scale: i8,
) -> Result<T::Native> {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return Err(format!(
            "{text} can't be a decimal({precision}, {scale}); filter it out or cast the column \
             to float8 or text in the query"
        ));
    }
    // parse_decimal rounds digits past the scale; a column's values never
    // have them, but if one did it must fail, not be rounded.
    let places = text.split_once('.').map_or(0, |(_, f)| f.len());
    if places > usize::try_from(scale).unwrap_or(0) {
        return Err(format!(
            "{text} has more than {scale} decimal places for decimal({precision}, {scale})"
        ));
    }
    arrow::compute::kernels::cast_utils::parse_decimal::<T>(text, precision, scale)
        .map_err(|e| format!("{text} as decimal({precision}, {scale}): {e}"))
}

fn interval(bytes: &[u8]) -> Result<IntervalMonthDayNano> {
    let mut r = Reader(bytes);
    let micros = r.i64()?;
    let days = r.i32()?;
    let months = r.i32()?;
    let nanos = micros
        .checked_mul(1000)
        .ok_or_else(|| format!("an interval of {micros} µs overflows nanoseconds"))?;
    Ok(IntervalMonthDayNano::new(months, days, nanos))
}

fn uuid_text(b: [u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn utf8(b: &[u8]) -> Result<&str> {
    std::str::from_utf8(b).map_err(|e| e.to_string())
}

fn be<const N: usize>(raw: &[u8]) -> Result<[u8; N]> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

/// Big-endian fields read off the front of a value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(format!(
                "a value cut short: {n} more bytes expected, {} left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16> {
        self.take(2).and_then(be).map(u16::from_be_bytes)
    }
    fn i16(&mut self) -> Result<i16> {
        self.take(2).and_then(be).map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32> {
        self.take(4).and_then(be).map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64> {
        self.take(8).and_then(be).map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A numeric's binary form from its parts.
    fn numeric(weight: i16, sign: u16, places: u16, groups: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((groups.len() as u16).to_be_bytes());
        b.extend(weight.to_be_bytes());
        b.extend(sign.to_be_bytes());
        b.extend(places.to_be_bytes());
        for g in groups {
            b.extend(g.to_be_bytes());
        }
        b
    }

    #[test]
    fn numeric_text_writes_every_digit_group_and_the_declared_places() {
        assert_eq!(
            numeric_text(&numeric(0, 0, 2, &[12, 5000])).unwrap(),
            "12.50"
        );
        assert_eq!(
            numeric_text(&numeric(-1, 0x4000, 4, &[1])).unwrap(),
            "-0.0001"
        );
        assert_eq!(
            numeric_text(&numeric(7, 0, 0, &[1])).unwrap(),
            "10000000000000000000000000000"
        );
        assert_eq!(numeric_text(&numeric(1, 0, 0, &[1, 2])).unwrap(), "10002");
        assert_eq!(
            numeric_text(&numeric(-2, 0, 8, &[1234])).unwrap(),
            "0.00001234"
        );
        assert_eq!(numeric_text(&numeric(0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric_text(&numeric(0, 0xC000, 0, &[])).unwrap(), "NaN");
    }

    #[test]
    fn a_numeric_cut_short_is_an_error_not_a_panic() {
        let whole = numeric(0, 0, 2, &[12, 5000]);
        for cut in 0..whole.len() {
            assert!(numeric_text(&whole[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn numeric_typmods_map_to_decimals_or_exact_text() {
        let typmod = |p: i32, s: i32| ((p << 16) | (s & 0x7ff)) + 4;
        assert_eq!(numeric_type(typmod(12, 2)), DataType::Decimal128(12, 2));
        assert_eq!(numeric_type(typmod(50, 10)), DataType::Decimal256(50, 10));
        assert_eq!(numeric_type(typmod(5, -2)), DataType::Decimal128(5, -2));
        assert_eq!(numeric_type(-1), DataType::Utf8);
        assert_eq!(numeric_type(typmod(200, 0)), DataType::Utf8);
    }

    #[test]
    fn nan_in_a_decimal_column_is_an_error_naming_the_way_out() {
        let e = decimal::<Decimal128Type>("NaN", 12, 2).unwrap_err();
        assert!(e.contains("float8"), "{e}");
        assert_eq!(decimal::<Decimal128Type>("-12.50", 12, 2).unwrap(), -1250);
        assert!(
            decimal::<Decimal128Type>("1.235", 12, 2).is_err(),
            "never rounded"
        );
    }
}
