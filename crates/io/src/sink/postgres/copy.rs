//! Arrow columns → PostgreSQL's binary `COPY` format, column types chosen
//! from the Arrow schema. No per-value trait objects: each column is
//! downcast once per batch and encoded in a tight loop per row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Decimal256Type, Field, FieldRef, Float32Type,
    Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow::record_batch::RecordBatch;

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The PostgreSQL column type for an Arrow type (the documented mapping),
/// or `None` when weir can't load it. `json`: a text column declared JSON.
/// Structs, maps and unions (and lists of them) are `jsonb`, lists of a
/// loadable scalar are arrays of it (`bigint[]`, `numeric(12, 2)[]`), a
/// dictionary column is its values' type.
pub(crate) fn pg_type(t: &DataType, json: bool) -> Option<String> {
    if json {
        return matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            .then(|| "jsonb".to_string());
    }
    if crate::sink::has_union(t) {
        return None;
    }
    match t {
        DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) => {
            return (*scale >= 0).then(|| format!("numeric({precision}, {scale})"));
        }
        DataType::Dictionary(_, values) => return pg_type(values, false),
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            return Some(match element_oid(item.data_type()) {
                Some(_) => format!("{}[]", pg_type(item.data_type(), false)?),
                None => "jsonb".to_string(),
            });
        }
        t if t.is_nested() => return Some("jsonb".to_string()),
        _ => {}
    }
    Some(
        match t {
            DataType::Boolean => "boolean",
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
            DataType::Int32 | DataType::UInt16 => "integer",
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint",
            DataType::Float32 => "real",
            DataType::Float64 => "double precision",
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea",
            DataType::Date32 => "date",
            DataType::Timestamp(_, None) => "timestamp",
            DataType::Timestamp(_, Some(_)) => "timestamptz",
            _ => return None,
        }
        .to_string(),
    )
}

/// The type OID of an array element of type `t`: the scalars
/// [`encode_value`] writes, as [`pg_type`] maps them.
fn element_oid(t: &DataType) -> Option<u32> {
    if matches!(t, DataType::Dictionary(..)) || t.is_nested() {
        return None;
    }
    let name = pg_type(t, false)?;
    Some(match name.split('(').next()? {
        "boolean" => 16,
        "smallint" => 21,
        "integer" => 23,
        "bigint" => 20,
        "real" => 700,
        "double precision" => 701,
        "text" => 25,
        "bytea" => 17,
        "date" => 1082,
        "timestamp" => 1114,
        "timestamptz" => 1184,
        "numeric" => 1700,
        _ => return None,
    })
}

/// PostgreSQL's binary `numeric`: base-10000 digit groups around the
/// decimal point, for `value` × 10^-`scale`.
fn numeric(value: i128, scale: i8) -> Vec<u8> {
    numeric_digits(&value.unsigned_abs().to_string(), value < 0, scale)
}

/// [`numeric`] for `digits` (the absolute value's decimal digits).
fn numeric_digits(digits: &str, negative: bool, scale: i8) -> Vec<u8> {
    let scale = scale.max(0) as usize;
    let text = digits;
    let text = format!("{text:0>width$}", width = scale + 1);
    let (int, frac) = text.split_at(text.len() - scale);
    let int = format!("{int:0>width$}", width = int.len().div_ceil(4) * 4);
    let frac = format!("{frac:0<width$}", width = frac.len().div_ceil(4) * 4);
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes()
            .chunks(4)
            .map(|c| {
                std::str::from_utf8(c)
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    };
    let mut digits = group(&int);
    let mut weight = digits.len() as i16 - 1;
    digits.extend(group(&frac));
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    weight -= leading as i16;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !digits.is_empty() {
        0x4000
    } else {
        0
    };
    let mut out = Vec::with_capacity(8 + 2 * digits.len());
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as u16).to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

/// The 19-byte header of a binary COPY stream (signature, flags, extension).
pub(super) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer: a field count of -1.
pub(super) const TRAILER: &[u8] = &[0xff, 0xff];

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn micros(unit: &TimeUnit, v: i64) -> Option<i64> {
    match unit {
        TimeUnit::Second => v.checked_mul(1_000_000),
        TimeUnit::Millisecond => v.checked_mul(1_000),
        TimeUnit::Microsecond => Some(v),
        TimeUnit::Nanosecond => Some(v.div_euclid(1_000)),
    }
}

/// Appends the rows of `batch` to `out` in binary COPY format. Fails
/// naming the column and row when a value can't be represented (an
/// unsigned value beyond bigint, a timestamp beyond PostgreSQL's range).
/// `json[i]`: column `i` is loaded as `jsonb`.
pub(super) fn encode(batch: &RecordBatch, json: &[bool], out: &mut Vec<u8>) -> Result<(), String> {
    let columns: Vec<(&str, ArrayRef, bool)> = batch
        .schema_ref()
        .fields()
        .iter()
        .zip(batch.columns())
        .zip(json)
        .map(|((f, a), j)| {
            let (array, json) = loadable(f, a, *j)?;
            Ok((f.name().as_str(), array, json))
        })
        .collect::<Result<_, String>>()?;
    let count = (columns.len() as i16).to_be_bytes();
    for row in 0..batch.num_rows() {
        out.extend_from_slice(&count);
        for (name, array, json) in &columns {
            if array.is_null(row) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            if *json {
                // jsonb's binary form: version 1, then the text.
                let text = match array.data_type() {
                    DataType::Utf8 => array.as_string::<i32>().value(row),
                    DataType::LargeUtf8 => array.as_string::<i64>().value(row),
                    DataType::Utf8View => array.as_string_view().value(row),
                    other => {
                        return Err(format!("column {name:?}: json must be text, not {other}"))
                    }
                };
                out.extend_from_slice(&(text.len() as i32 + 1).to_be_bytes());
                out.push(1);
                out.extend_from_slice(text.as_bytes());
                continue;
            }
            encode_value(array, row, out)
                .map_err(|e| format!("column {name:?}, row {row} of the batch: {e}"))?;
        }
    }
    Ok(())
}

/// Column `a` as it is loaded, and whether into `jsonb`: a dictionary
/// unpacked to its values, a struct, map or union (or a list of them) as
/// its JSON text.
fn loadable(field: &FieldRef, a: &ArrayRef, json: bool) -> Result<(ArrayRef, bool), String> {
    if json {
        return Ok((a.clone(), true));
    }
    let bad = |e: arrow::error::ArrowError| format!("column {:?}: {e}", field.name());
    match a.data_type() {
        DataType::Dictionary(_, values) => {
            let plain = arrow::compute::cast(a, values).map_err(bad)?;
            let values = (**values).clone();
            let field = Arc::new(Field::new(field.name(), values, field.is_nullable()));
            loadable(&field, &plain, false)
        }
        t if pg_type(t, false).as_deref() == Some("jsonb") => {
            let text = crate::sink::json_text::json_text(field, a.as_ref()).map_err(bad)?;
            Ok((text, true))
        }
        _ => Ok((a.clone(), false)),
    }
}

/// Elements `start..end` of `values` as a one-dimensional PostgreSQL
/// array in binary form (an empty array has no dimension).
fn pg_array(values: &ArrayRef, start: usize, end: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let oid = element_oid(values.data_type())
        .ok_or_else(|| format!("{} can't be an array element", values.data_type()))?;
    let n = end - start;
    let has_nulls = (start..end).any(|i| values.is_null(i));
    let mut body = Vec::with_capacity(20 + 12 * n);
    body.extend_from_slice(&i32::from(n > 0).to_be_bytes());
    body.extend_from_slice(&i32::from(has_nulls).to_be_bytes());
    body.extend_from_slice(&oid.to_be_bytes());
    if n > 0 {
        let len = i32::try_from(n).map_err(|_| format!("a list of {n} elements"))?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
    }
    for i in start..end {
        if values.is_null(i) {
            body.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            encode_value(values, i, &mut body)
                .map_err(|e| format!("element {}: {e}", i - start))?;
        }
    }
    field(out, &body);
    Ok(())
}

fn encode_value(array: &ArrayRef, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
    macro_rules! prim {
        ($t:ty, $as:ty) => {
            field(
                out,
                &(array.as_primitive::<$t>().value(row) as $as).to_be_bytes(),
            )
        };
    }
    match array.data_type() {
        DataType::Boolean => field(out, &[array.as_boolean().value(row) as u8]),
        DataType::Int8 => prim!(Int8Type, i16),
        DataType::Int16 => prim!(Int16Type, i16),
        DataType::UInt8 => prim!(UInt8Type, i16),
        DataType::Int32 => prim!(Int32Type, i32),
        DataType::UInt16 => prim!(UInt16Type, i32),
        DataType::Int64 => prim!(Int64Type, i64),
        DataType::UInt32 => prim!(UInt32Type, i64),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            let v = i64::try_from(v).map_err(|_| format!("{v} is beyond bigint"))?;
            field(out, &v.to_be_bytes())
        }
        DataType::Float32 => prim!(Float32Type, f32),
        DataType::Float64 => prim!(Float64Type, f64),
        DataType::Utf8 => field(out, array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => field(out, array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => field(out, array.as_string_view().value(row).as_bytes()),
        DataType::Binary => field(out, array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => field(out, array.as_binary::<i64>().value(row)),
        DataType::BinaryView => field(out, array.as_binary_view().value(row)),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let days = days
                .checked_sub(PG_EPOCH_DAYS)
                .ok_or_else(|| format!("date {days} is out of range"))?;
            field(out, &days.to_be_bytes())
        }
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            let pg = micros(unit, v)
                .and_then(|m| m.checked_sub(PG_EPOCH_MICROS))
                .ok_or_else(|| format!("timestamp {v} ({unit:?}) is out of range"))?;
            field(out, &pg.to_be_bytes())
        }
        DataType::Decimal128(_, scale) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            field(out, &numeric(v, *scale))
        }
        DataType::Decimal256(_, scale) => {
            let v = array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_string();
            let (negative, digits) = match v.strip_prefix('-') {
                Some(digits) => (true, digits),
                None => (false, v.as_str()),
            };
            field(out, &numeric_digits(digits, negative, *scale))
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let (start, end) = (list.value_offsets()[row], list.value_offsets()[row + 1]);
            pg_array(list.values(), start as usize, end as usize, out)?
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            let (start, end) = (list.value_offsets()[row], list.value_offsets()[row + 1]);
            pg_array(list.values(), start as usize, end as usize, out)?
        }
        DataType::FixedSizeList(_, n) => {
            let list = array.as_fixed_size_list();
            let start = list.value_offset_at(row);
            pg_array(list.values(), start, start + *n as usize, out)?
        }
        other => return Err(format!("{other} can't be loaded into PostgreSQL")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::numeric;

    fn groups(bytes: &[u8]) -> Vec<i16> {
        bytes
            .chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numeric_groups_base_10000_digits_around_the_point() {
        // 12345.678 (scale 3): digits 1 2345 6780, weight 1, dscale 3.
        assert_eq!(
            groups(&numeric(12_345_678, 3)),
            vec![3, 1, 0, 3, 1, 2345, 6780]
        );
        // -0.0012 (scale 4): one digit 12 at weight -1, negative.
        assert_eq!(groups(&numeric(-12, 4)), vec![1, -1, 0x4000, 4, 12]);
        // 0 (scale 2): no digits.
        assert_eq!(groups(&numeric(0, 2)), vec![0, 0, 0, 2]);
        // 100000000 (scale 0): 1 0000 0000 → one digit 1 at weight 2.
        assert_eq!(groups(&numeric(100_000_000, 0)), vec![1, 2, 0, 0, 1]);
    }
}
