//! The mirror types and `wit/0.2/plugin.wit` stay one contract.

use weir_wit_arrow::{DataType as W, DecimalType, DictionaryType, IndexType, IntervalUnit};
use weir_wit_arrow::{TimeUnit, TimestampType, UnionMode, UnionType};
use wit_parser::{Resolve, TypeDefKind};

/// The WIT case each mirror variant stands for. The match is exhaustive:
/// a variant added to the mirror without a case here doesn't compile.
fn case(t: &W) -> &'static str {
    match t {
        W::Null => "null",
        W::Boolean => "boolean",
        W::Int8 => "int8",
        W::Int16 => "int16",
        W::Int32 => "int32",
        W::Int64 => "int64",
        W::Uint8 => "uint8",
        W::Uint16 => "uint16",
        W::Uint32 => "uint32",
        W::Uint64 => "uint64",
        W::Float16 => "float16",
        W::Float32 => "float32",
        W::Float64 => "float64",
        W::Utf8 => "utf8",
        W::LargeUtf8 => "large-utf8",
        W::Utf8View => "utf8-view",
        W::Binary => "binary",
        W::LargeBinary => "large-binary",
        W::BinaryView => "binary-view",
        W::FixedSizeBinary(_) => "fixed-size-binary",
        W::Date32 => "date32",
        W::Date64 => "date64",
        W::Time32(_) => "time32",
        W::Time64(_) => "time64",
        W::Timestamp(_) => "timestamp",
        W::Duration(_) => "duration",
        W::Interval(_) => "interval",
        W::Decimal32(_) => "decimal32",
        W::Decimal64(_) => "decimal64",
        W::Decimal128(_) => "decimal128",
        W::Decimal256(_) => "decimal256",
        W::List(_) => "list",
        W::LargeList(_) => "large-list",
        W::FixedSizeList(..) => "fixed-size-list",
        W::ListView(_) => "list-view",
        W::LargeListView(_) => "large-list-view",
        W::Struct(_) => "struct",
        W::Map(..) => "map",
        W::Dictionary(_) => "dictionary",
        W::Union(_) => "union",
        W::RunEndEncoded(..) => "run-end-encoded",
    }
}

fn every_mirror_type() -> Vec<W> {
    let unit = TimeUnit::Second;
    let decimal = DecimalType {
        precision: 1,
        scale: 0,
    };
    vec![
        W::Null,
        W::Boolean,
        W::Int8,
        W::Int16,
        W::Int32,
        W::Int64,
        W::Uint8,
        W::Uint16,
        W::Uint32,
        W::Uint64,
        W::Float16,
        W::Float32,
        W::Float64,
        W::Utf8,
        W::LargeUtf8,
        W::Utf8View,
        W::Binary,
        W::LargeBinary,
        W::BinaryView,
        W::FixedSizeBinary(1),
        W::Date32,
        W::Date64,
        W::Time32(unit),
        W::Time64(unit),
        W::Timestamp(TimestampType {
            unit,
            timezone: None,
        }),
        W::Duration(unit),
        W::Interval(IntervalUnit::DayTime),
        W::Decimal32(decimal),
        W::Decimal64(decimal),
        W::Decimal128(decimal),
        W::Decimal256(decimal),
        W::List(0),
        W::LargeList(0),
        W::FixedSizeList(0, 1),
        W::ListView(0),
        W::LargeListView(0),
        W::Struct(vec![]),
        W::Map(0, false),
        W::Dictionary(DictionaryType {
            index: IndexType::Int32,
            value: 0,
            ordered: false,
        }),
        W::Union(UnionType {
            mode: UnionMode::Sparse,
            type_ids: vec![],
            children: vec![],
        }),
        W::RunEndEncoded(0, 1),
    ]
}

#[test]
fn the_wit_data_type_has_exactly_the_mirrors_cases() {
    let mut resolve = Resolve::default();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/0.2");
    resolve.push_dir(dir).expect("wit/0.2 parses");
    let data_type = resolve
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("data-type"))
        .map(|(_, t)| &t.kind)
        .expect("a data-type");
    let TypeDefKind::Variant(variant) = data_type else {
        panic!("data-type is a variant")
    };
    let mut wit: Vec<&str> = variant.cases.iter().map(|c| c.name.as_str()).collect();
    let mut mirror: Vec<&str> = every_mirror_type().iter().map(case).collect();
    wit.sort_unstable();
    mirror.sort_unstable();
    assert_eq!(wit, mirror);
}
