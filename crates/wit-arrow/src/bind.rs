//! Moving between the mirror types and a bindings generator's types.
//!
//! wasmtime's `bindgen!` (host) and wit-bindgen's `generate!` (guest) both
//! turn `weir:plugin/types@0.2.0` into Rust records and enums with the same
//! names and fields, but as distinct types. [`bind!`](crate::bind) writes
//! the conversions once for either: invoked with the path of the generated
//! `types` module, it defines a module of four functions. Buffers move
//! (a received `Vec<u8>` becomes an Arrow buffer without a copy); sent
//! buffers are copied once into the `Vec<u8>` the bindings lower.

/// Defines `$vis mod $name` with `schema_to_wit`, `schema_from_wit`,
/// `column_to_wit` and `column_from_wit` between this crate's types and
/// the generated ones at `$types` (an absolute path, e.g.
/// `crate::bindings::v0_2::types`).
#[macro_export]
macro_rules! bind {
    ($vis:vis mod $name:ident = $($types:tt)+) => {
        $vis mod $name {
            #![allow(dead_code)]
            use $($types)+ as w;
            use $crate::types as m;

            /// A mirror schema as the generated record.
            pub fn schema_to_wit(s: m::Schema) -> w::Schema {
                w::Schema {
                    nodes: s.nodes.into_iter().map(field_to_wit).collect(),
                    columns: s.columns,
                    metadata: s.metadata,
                }
            }

            /// A generated schema as the mirror.
            pub fn schema_from_wit(s: w::Schema) -> m::Schema {
                m::Schema {
                    nodes: s.nodes.into_iter().map(field_from_wit).collect(),
                    columns: s.columns,
                    metadata: s.metadata,
                }
            }

            /// A mirror column as the generated record (buffers copied
            /// once, into the lists the bindings lower).
            pub fn column_to_wit(c: m::ColumnData) -> w::ColumnData {
                w::ColumnData {
                    nodes: c
                        .nodes
                        .into_iter()
                        .map(|n| w::ArrayNode {
                            length: n.length,
                            null_count: n.null_count,
                            buffers: n.buffers.iter().map(|b| b.as_slice().to_vec()).collect(),
                            children: n.children,
                            dictionary: n.dictionary,
                        })
                        .collect(),
                    root: c.root,
                }
            }

            /// A generated column as the mirror (buffers moved, not copied).
            pub fn column_from_wit(c: w::ColumnData) -> m::ColumnData {
                m::ColumnData {
                    nodes: c
                        .nodes
                        .into_iter()
                        .map(|n| m::ArrayNode {
                            length: n.length,
                            null_count: n.null_count,
                            buffers: n
                                .buffers
                                .into_iter()
                                .map($crate::__private::Buffer::from_vec)
                                .collect(),
                            children: n.children,
                            dictionary: n.dictionary,
                        })
                        .collect(),
                    root: c.root,
                }
            }

            fn field_to_wit(f: m::FieldNode) -> w::FieldNode {
                w::FieldNode {
                    name: f.name,
                    data_type: type_to_wit(f.data_type),
                    nullable: f.nullable,
                    metadata: f.metadata,
                }
            }

            fn field_from_wit(f: w::FieldNode) -> m::FieldNode {
                m::FieldNode {
                    name: f.name,
                    data_type: type_from_wit(f.data_type),
                    nullable: f.nullable,
                    metadata: f.metadata,
                }
            }

            $crate::__bind_enum!(unit_to_wit, unit_from_wit: TimeUnit,
                Second, Millisecond, Microsecond, Nanosecond);
            $crate::__bind_enum!(interval_to_wit, interval_from_wit: IntervalUnit,
                YearMonth, DayTime, MonthDayNano);
            $crate::__bind_enum!(mode_to_wit, mode_from_wit: UnionMode, Sparse, Dense);
            $crate::__bind_enum!(index_to_wit, index_from_wit: IndexType,
                Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64);

            fn decimal_to_wit(d: m::DecimalType) -> w::DecimalType {
                w::DecimalType { precision: d.precision, scale: d.scale }
            }

            fn decimal_from_wit(d: w::DecimalType) -> m::DecimalType {
                m::DecimalType { precision: d.precision, scale: d.scale }
            }

            fn type_to_wit(t: m::DataType) -> w::DataType {
                use m::DataType as M;
                use w::DataType as W;
                match t {
                    M::Null => W::Null,
                    M::Boolean => W::Boolean,
                    M::Int8 => W::Int8,
                    M::Int16 => W::Int16,
                    M::Int32 => W::Int32,
                    M::Int64 => W::Int64,
                    M::Uint8 => W::Uint8,
                    M::Uint16 => W::Uint16,
                    M::Uint32 => W::Uint32,
                    M::Uint64 => W::Uint64,
                    M::Float16 => W::Float16,
                    M::Float32 => W::Float32,
                    M::Float64 => W::Float64,
                    M::Utf8 => W::Utf8,
                    M::LargeUtf8 => W::LargeUtf8,
                    M::Utf8View => W::Utf8View,
                    M::Binary => W::Binary,
                    M::LargeBinary => W::LargeBinary,
                    M::BinaryView => W::BinaryView,
                    M::FixedSizeBinary(n) => W::FixedSizeBinary(n),
                    M::Date32 => W::Date32,
                    M::Date64 => W::Date64,
                    M::Time32(u) => W::Time32(unit_to_wit(u)),
                    M::Time64(u) => W::Time64(unit_to_wit(u)),
                    M::Timestamp(t) => W::Timestamp(w::TimestampType {
                        unit: unit_to_wit(t.unit),
                        timezone: t.timezone,
                    }),
                    M::Duration(u) => W::Duration(unit_to_wit(u)),
                    M::Interval(u) => W::Interval(interval_to_wit(u)),
                    M::Decimal32(d) => W::Decimal32(decimal_to_wit(d)),
                    M::Decimal64(d) => W::Decimal64(decimal_to_wit(d)),
                    M::Decimal128(d) => W::Decimal128(decimal_to_wit(d)),
                    M::Decimal256(d) => W::Decimal256(decimal_to_wit(d)),
                    M::List(c) => W::List(c),
                    M::LargeList(c) => W::LargeList(c),
                    M::FixedSizeList(item, size) => {
                        W::FixedSizeList(w::FixedSizeListType { item, size })
                    }
                    M::ListView(c) => W::ListView(c),
                    M::LargeListView(c) => W::LargeListView(c),
                    M::Struct(c) => W::Struct(c),
                    M::Map(entries, keys_sorted) => W::Map(w::MapType { entries, keys_sorted }),
                    M::Dictionary(d) => W::Dictionary(w::DictionaryType {
                        index: index_to_wit(d.index),
                        value: d.value,
                        ordered: d.ordered,
                    }),
                    M::Union(u) => W::Union(w::UnionType {
                        mode: mode_to_wit(u.mode),
                        type_ids: u.type_ids,
                        children: u.children,
                    }),
                    M::RunEndEncoded(run_ends, values) => {
                        W::RunEndEncoded(w::RunEndEncodedType { run_ends, values })
                    }
                }
            }

            fn type_from_wit(t: w::DataType) -> m::DataType {
                use m::DataType as M;
                use w::DataType as W;
                match t {
                    W::Null => M::Null,
                    W::Boolean => M::Boolean,
                    W::Int8 => M::Int8,
                    W::Int16 => M::Int16,
                    W::Int32 => M::Int32,
                    W::Int64 => M::Int64,
                    W::Uint8 => M::Uint8,
                    W::Uint16 => M::Uint16,
                    W::Uint32 => M::Uint32,
                    W::Uint64 => M::Uint64,
                    W::Float16 => M::Float16,
                    W::Float32 => M::Float32,
                    W::Float64 => M::Float64,
                    W::Utf8 => M::Utf8,
                    W::LargeUtf8 => M::LargeUtf8,
                    W::Utf8View => M::Utf8View,
                    W::Binary => M::Binary,
                    W::LargeBinary => M::LargeBinary,
                    W::BinaryView => M::BinaryView,
                    W::FixedSizeBinary(n) => M::FixedSizeBinary(n),
                    W::Date32 => M::Date32,
                    W::Date64 => M::Date64,
                    W::Time32(u) => M::Time32(unit_from_wit(u)),
                    W::Time64(u) => M::Time64(unit_from_wit(u)),
                    W::Timestamp(t) => M::Timestamp(m::TimestampType {
                        unit: unit_from_wit(t.unit),
                        timezone: t.timezone,
                    }),
                    W::Duration(u) => M::Duration(unit_from_wit(u)),
                    W::Interval(u) => M::Interval(interval_from_wit(u)),
                    W::Decimal32(d) => M::Decimal32(decimal_from_wit(d)),
                    W::Decimal64(d) => M::Decimal64(decimal_from_wit(d)),
                    W::Decimal128(d) => M::Decimal128(decimal_from_wit(d)),
                    W::Decimal256(d) => M::Decimal256(decimal_from_wit(d)),
                    W::List(c) => M::List(c),
                    W::LargeList(c) => M::LargeList(c),
                    W::FixedSizeList(f) => M::FixedSizeList(f.item, f.size),
                    W::ListView(c) => M::ListView(c),
                    W::LargeListView(c) => M::LargeListView(c),
                    W::Struct(c) => M::Struct(c),
                    W::Map(map) => M::Map(map.entries, map.keys_sorted),
                    W::Dictionary(d) => M::Dictionary(m::DictionaryType {
                        index: index_from_wit(d.index),
                        value: d.value,
                        ordered: d.ordered,
                    }),
                    W::Union(u) => M::Union(m::UnionType {
                        mode: mode_from_wit(u.mode),
                        type_ids: u.type_ids,
                        children: u.children,
                    }),
                    W::RunEndEncoded(r) => M::RunEndEncoded(r.run_ends, r.values),
                }
            }
        }
    };
}

/// `$to` and `$from` for a fieldless enum spelled the same in the mirror
/// (`m`) and the bindings (`w`), both in scope where [`bind!`] expands.
#[doc(hidden)]
#[macro_export]
macro_rules! __bind_enum {
    ($to:ident, $from:ident: $t:ident, $($case:ident),+) => {
        fn $to(v: m::$t) -> w::$t {
            match v { $(m::$t::$case => w::$t::$case,)+ }
        }
        fn $from(v: w::$t) -> m::$t {
            match v { $(w::$t::$case => m::$t::$case,)+ }
        }
    };
}
