//! Declared schemas: `schema = [{ name = "id", type = "int64" }, …]`.

use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

/// One declared column.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnDecl {
    /// `name`: the column name, as in the file.
    pub name: String,
    /// `type`: see [`TypeName`].
    #[serde(rename = "type")]
    pub data_type: TypeName,
    /// `nullable`: whether empty values are allowed (default true).
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

/// A column type by name: `bool`, `int8`…`int64`, `uint8`…`uint64`,
/// `float32`, `float64`, `utf8` (or `string`), `binary`, `date32` (or
/// `date`), `timestamp` (microseconds, no zone), `timestamp_ms`,
/// `timestamp_s`, `timestamp_ns`; nested and parameterised types built
/// from them (`decimal(12, 2)`, `list<utf8>`, `struct<id: int64, tags:
/// list<utf8>>`, `map<utf8, int64>`, `dictionary<int32, utf8>`, see
/// [`super::type_syntax`]); or any Arrow type spelled as arrow-rs prints it
/// (`Timestamp(Microsecond, Some("UTC"))`).
#[derive(Debug, Clone, PartialEq)]
pub struct TypeName(pub DataType);

impl<'de> Deserialize<'de> for TypeName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_type(&s)
            .map(TypeName)
            .map_err(serde::de::Error::custom)
    }
}

/// A simple type name, case-insensitive (see [`TypeName`]).
fn simple(name: &str) -> Option<DataType> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "bool" | "boolean" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" | "int" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" => DataType::Float32,
        "float64" | "float" | "double" => DataType::Float64,
        "utf8" | "string" | "str" => DataType::Utf8,
        "large_utf8" | "large_string" => DataType::LargeUtf8,
        "binary" => DataType::Binary,
        "large_binary" => DataType::LargeBinary,
        "date32" | "date" => DataType::Date32,
        "timestamp" | "timestamp_us" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamp_ms" => DataType::Timestamp(TimeUnit::Millisecond, None),
        "timestamp_s" => DataType::Timestamp(TimeUnit::Second, None),
        "timestamp_ns" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        _ => return None,
    })
}

/// Parses a type name (see [`TypeName`]).
pub fn parse_type(s: &str) -> Result<DataType, String> {
    if let Some(t) = simple(s) {
        return Ok(t);
    }
    if super::type_syntax::is_ours(s) {
        return super::type_syntax::parse(s, &simple);
    }
    let t = DataType::from_str(s).map_err(|_| {
        format!(
            "unknown type {s:?}; use bool, int8..int64, uint8..uint64, float32, float64, \
             utf8, binary, date32, timestamp, timestamp_ms, timestamp_s or timestamp_ns, or \
             nested ones such as decimal(12, 2), list<utf8>, struct<id: int64, tags: \
             list<utf8>>, map<utf8, int64>"
        )
    })?;
    check_zone(&t)?;
    Ok(t)
}

/// A timestamp type's zone must be one readers know (an IANA name or an
/// offset): a misspelt one writes files pandas can't open.
fn check_zone(t: &DataType) -> Result<(), String> {
    if let DataType::Timestamp(_, Some(zone)) = t {
        zone.parse::<arrow::array::timezone::Tz>().map_err(|_| {
            format!(
                "unknown time zone {zone:?}; use an IANA name such as \"Europe/Paris\" or \
                 an offset such as \"+01:00\""
            )
        })?;
    }
    Ok(())
}

/// The schema declared by `columns`.
pub fn declared(columns: &[ColumnDecl]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.data_type.0.clone(), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// `schema`'s columns as declarations (every column, its type).
pub(crate) fn decls(schema: &SchemaRef) -> Vec<ColumnDecl> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnDecl {
            name: f.name().clone(),
            data_type: TypeName(f.data_type().clone()),
            nullable: f.is_nullable(),
        })
        .collect()
}

/// `batch` as `schema`: its columns picked by name and cast to the
/// declared types (a later file inferred differently, an IPC stream sent
/// with narrower integers). The error names the column. Strict: a value
/// the declared type can't hold is an error, never a silent null.
pub(crate) fn cast_to(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch
            .column_by_name(field.name())
            .ok_or_else(|| format!("no column {:?}", field.name()))?;
        let strict = arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        columns.push(
            arrow::compute::cast_with_options(column, field.data_type(), &strict)
                .map_err(|e| format!("column {:?}: {e}", field.name()))?,
        );
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_names_and_arrow_spellings_both_parse() {
        assert_eq!(parse_type("int64"), Ok(DataType::Int64));
        assert_eq!(parse_type("String"), Ok(DataType::Utf8));
        assert_eq!(
            parse_type("timestamp_ms"),
            Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
        );
        assert_eq!(
            parse_type("Timestamp(Microsecond, Some(\"UTC\"))"),
            Ok(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            ))
        );
    }

    #[test]
    fn a_timestamp_with_an_unknown_zone_is_refused() {
        let err = parse_type("Timestamp(Microsecond, Some(\"Europe/Pariss\"))").unwrap_err();
        assert!(err.contains("unknown time zone \"Europe/Pariss\""), "{err}");
    }

    #[test]
    fn unknown_type_lists_the_accepted_names() {
        let err = parse_type("money").unwrap_err();
        assert!(
            err.contains("float64") && err.contains("timestamp"),
            "{err}"
        );
    }
}
