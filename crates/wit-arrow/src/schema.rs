//! Arrow schemas ↔ the flattened type tree.
//!
//! Encoding walks each column depth first, so a parent always precedes its
//! children. Decoding checks what a plugin could get wrong or forge —
//! indices out of range, backward references (cycles), a node shared by
//! two parents (a type that would grow exponentially when expanded),
//! nesting deeper than [`MAX_DEPTH`] — before it builds anything.

use std::sync::Arc;

use arrow_schema as arrow;

use crate::tree;
use crate::types::*;
use crate::{Error, Result};

/// The deepest nesting either side accepts: deeper than any file format
/// writes in practice, shallow enough that decoding recursion is safe.
pub const MAX_DEPTH: usize = 64;

/// An Arrow schema as a type tree.
pub fn schema_to_wit(schema: &arrow::Schema) -> Schema {
    let mut nodes = Vec::new();
    let columns = schema
        .fields()
        .iter()
        .map(|f| push_field(&mut nodes, f))
        .collect();
    Schema {
        nodes,
        columns,
        metadata: metadata_to_wit(schema.metadata()),
    }
}

/// One Arrow field (a column) as a type tree with one root.
pub fn field_to_wit(field: &arrow::Field) -> Schema {
    let mut nodes = Vec::new();
    let root = push_field(&mut nodes, field);
    Schema {
        nodes,
        columns: vec![root],
        metadata: Vec::new(),
    }
}

/// A type tree as an Arrow schema, or what is wrong with it.
///
/// Time zone names are carried, not checked (that needs a zone database
/// this crate doesn't link): the host checks them at its boundary, as it
/// does for 0.1 outputs.
pub fn schema_from_wit(schema: &Schema) -> Result<arrow::Schema> {
    tree::check(
        schema.nodes.len(),
        &schema.columns,
        schema.nodes.iter().map(|n| type_children(&n.data_type)),
    )?;
    let decoder = Decoder {
        nodes: &schema.nodes,
    };
    let fields = schema
        .columns
        .iter()
        .map(|&c| decoder.field(c, 1))
        .collect::<Result<Vec<_>>>()?;
    Ok(arrow::Schema::new_with_metadata(
        fields,
        metadata_from_wit(&schema.metadata),
    ))
}

fn metadata_to_wit(metadata: &arrow::Metadata) -> Vec<(String, String)> {
    metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn metadata_from_wit(metadata: &[(String, String)]) -> arrow::Metadata {
    metadata.iter().cloned().collect()
}

/// Appends `field` and its descendants; returns its index.
fn push_field(nodes: &mut Vec<FieldNode>, field: &arrow::Field) -> u32 {
    let index = reserve(nodes);
    let data_type = push_type(nodes, field.data_type(), field.dict_is_ordered());
    nodes[index as usize] = FieldNode {
        name: field.name().clone(),
        data_type,
        nullable: field.is_nullable(),
        metadata: metadata_to_wit(field.metadata()),
    };
    index
}

/// A dictionary's value type has no field of its own: a nameless,
/// nullable node stands for it.
fn push_value_type(nodes: &mut Vec<FieldNode>, data_type: &arrow::DataType) -> u32 {
    let index = reserve(nodes);
    let data_type = push_type(nodes, data_type, None);
    nodes[index as usize] = FieldNode {
        name: String::new(),
        data_type,
        nullable: true,
        metadata: Vec::new(),
    };
    index
}

fn reserve(nodes: &mut Vec<FieldNode>) -> u32 {
    nodes.push(FieldNode {
        name: String::new(),
        data_type: DataType::Null,
        nullable: true,
        metadata: Vec::new(),
    });
    // A schema with 4 billion fields can't be built in memory to begin with.
    u32::try_from(nodes.len() - 1).unwrap_or(u32::MAX)
}

fn push_type(
    nodes: &mut Vec<FieldNode>,
    data_type: &arrow::DataType,
    ordered: Option<bool>,
) -> DataType {
    use arrow::DataType as A;
    match data_type {
        A::List(f) => DataType::List(push_field(nodes, f)),
        A::LargeList(f) => DataType::LargeList(push_field(nodes, f)),
        A::FixedSizeList(f, n) => DataType::FixedSizeList(push_field(nodes, f), *n),
        A::ListView(f) => DataType::ListView(push_field(nodes, f)),
        A::LargeListView(f) => DataType::LargeListView(push_field(nodes, f)),
        A::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| push_field(nodes, f)).collect())
        }
        A::Map(entries, sorted) => DataType::Map(push_field(nodes, entries), *sorted),
        A::Union(fields, mode) => {
            let (type_ids, children) = fields
                .iter()
                .map(|(id, f)| (id, push_field(nodes, f)))
                .unzip();
            DataType::Union(UnionType {
                mode: match mode {
                    arrow::UnionMode::Sparse => UnionMode::Sparse,
                    arrow::UnionMode::Dense => UnionMode::Dense,
                },
                type_ids,
                children,
            })
        }
        A::RunEndEncoded(ends, values) => {
            let ends = push_field(nodes, ends);
            DataType::RunEndEncoded(ends, push_field(nodes, values))
        }
        A::Dictionary(key, value) => DataType::Dictionary(DictionaryType {
            index: index_type(key),
            value: push_value_type(nodes, value),
            ordered: ordered.unwrap_or(false),
        }),
        flat => flat_to_wit(flat),
    }
}

/// A dictionary key type. Arrow only builds dictionaries over integer
/// keys; anything else can't have come out of a valid array.
fn index_type(key: &arrow::DataType) -> IndexType {
    use arrow::DataType as A;
    match key {
        A::Int8 => IndexType::Int8,
        A::Int16 => IndexType::Int16,
        A::Int64 => IndexType::Int64,
        A::UInt8 => IndexType::Uint8,
        A::UInt16 => IndexType::Uint16,
        A::UInt32 => IndexType::Uint32,
        A::UInt64 => IndexType::Uint64,
        _ => IndexType::Int32,
    }
}

fn flat_to_wit(data_type: &arrow::DataType) -> DataType {
    use arrow::DataType as A;
    let decimal = |precision: &u8, scale: &i8| DecimalType {
        precision: *precision,
        scale: *scale,
    };
    match data_type {
        A::Boolean => DataType::Boolean,
        A::Int8 => DataType::Int8,
        A::Int16 => DataType::Int16,
        A::Int32 => DataType::Int32,
        A::Int64 => DataType::Int64,
        A::UInt8 => DataType::Uint8,
        A::UInt16 => DataType::Uint16,
        A::UInt32 => DataType::Uint32,
        A::UInt64 => DataType::Uint64,
        A::Float16 => DataType::Float16,
        A::Float32 => DataType::Float32,
        A::Float64 => DataType::Float64,
        A::Utf8 => DataType::Utf8,
        A::LargeUtf8 => DataType::LargeUtf8,
        A::Utf8View => DataType::Utf8View,
        A::Binary => DataType::Binary,
        A::LargeBinary => DataType::LargeBinary,
        A::BinaryView => DataType::BinaryView,
        A::FixedSizeBinary(n) => DataType::FixedSizeBinary(*n),
        A::Date32 => DataType::Date32,
        A::Date64 => DataType::Date64,
        A::Time32(u) => DataType::Time32(unit_to_wit(u)),
        A::Time64(u) => DataType::Time64(unit_to_wit(u)),
        A::Timestamp(u, tz) => DataType::Timestamp(TimestampType {
            unit: unit_to_wit(u),
            timezone: tz.as_deref().map(str::to_string),
        }),
        A::Duration(u) => DataType::Duration(unit_to_wit(u)),
        A::Interval(u) => DataType::Interval(match u {
            arrow::IntervalUnit::YearMonth => IntervalUnit::YearMonth,
            arrow::IntervalUnit::DayTime => IntervalUnit::DayTime,
            arrow::IntervalUnit::MonthDayNano => IntervalUnit::MonthDayNano,
        }),
        A::Decimal32(p, s) => DataType::Decimal32(decimal(p, s)),
        A::Decimal64(p, s) => DataType::Decimal64(decimal(p, s)),
        A::Decimal128(p, s) => DataType::Decimal128(decimal(p, s)),
        A::Decimal256(p, s) => DataType::Decimal256(decimal(p, s)),
        A::Null => DataType::Null,
        // `push_type` maps the nested types before it gets here. Listed,
        // not caught by a wildcard: a type a new arrow version adds must
        // fail to compile here, not cross as null.
        A::List(_)
        | A::LargeList(_)
        | A::FixedSizeList(..)
        | A::ListView(_)
        | A::LargeListView(_)
        | A::Struct(_)
        | A::Map(..)
        | A::Union(..)
        | A::Dictionary(..)
        | A::RunEndEncoded(..) => DataType::Null,
    }
}

fn unit_to_wit(unit: &arrow::TimeUnit) -> TimeUnit {
    match unit {
        arrow::TimeUnit::Second => TimeUnit::Second,
        arrow::TimeUnit::Millisecond => TimeUnit::Millisecond,
        arrow::TimeUnit::Microsecond => TimeUnit::Microsecond,
        arrow::TimeUnit::Nanosecond => TimeUnit::Nanosecond,
    }
}

fn unit_from_wit(unit: TimeUnit) -> arrow::TimeUnit {
    match unit {
        TimeUnit::Second => arrow::TimeUnit::Second,
        TimeUnit::Millisecond => arrow::TimeUnit::Millisecond,
        TimeUnit::Microsecond => arrow::TimeUnit::Microsecond,
        TimeUnit::Nanosecond => arrow::TimeUnit::Nanosecond,
    }
}

/// The nodes a type refers to, in order.
pub(crate) fn type_children(data_type: &DataType) -> Vec<u32> {
    match data_type {
        DataType::List(c)
        | DataType::LargeList(c)
        | DataType::FixedSizeList(c, _)
        | DataType::ListView(c)
        | DataType::LargeListView(c)
        | DataType::Map(c, _) => vec![*c],
        DataType::Struct(children) => children.clone(),
        DataType::Union(u) => u.children.clone(),
        DataType::RunEndEncoded(ends, values) => vec![*ends, *values],
        DataType::Dictionary(d) => vec![d.value],
        _ => Vec::new(),
    }
}

struct Decoder<'a> {
    nodes: &'a [FieldNode],
}

impl Decoder<'_> {
    fn field(&self, index: u32, depth: usize) -> Result<arrow::Field> {
        let node = &self.nodes[index as usize];
        let data_type = self
            .data_type(&node.data_type, depth)
            .map_err(|e| e.within(&node.name))?;
        let ordered = match &node.data_type {
            DataType::Dictionary(d) => d.ordered,
            _ => false,
        };
        Ok(arrow::Field::new(&node.name, data_type, node.nullable)
            .with_dict_is_ordered(ordered)
            .with_metadata(metadata_from_wit(&node.metadata)))
    }

    fn child(&self, index: u32, depth: usize) -> Result<arrow::FieldRef> {
        if depth >= MAX_DEPTH {
            return Err(Error::new(format!(
                "types nest deeper than {MAX_DEPTH} levels"
            )));
        }
        self.field(index, depth + 1).map(Arc::new)
    }

    fn data_type(&self, data_type: &DataType, depth: usize) -> Result<arrow::DataType> {
        use arrow::DataType as A;
        Ok(match data_type {
            DataType::List(c) => A::List(self.child(*c, depth)?),
            DataType::LargeList(c) => A::LargeList(self.child(*c, depth)?),
            DataType::FixedSizeList(c, n) => {
                if *n < 0 {
                    return Err(Error::new(format!("fixed-size-list of size {n}")));
                }
                A::FixedSizeList(self.child(*c, depth)?, *n)
            }
            DataType::ListView(c) => A::ListView(self.child(*c, depth)?),
            DataType::LargeListView(c) => A::LargeListView(self.child(*c, depth)?),
            DataType::Struct(children) => A::Struct(
                children
                    .iter()
                    .map(|&c| self.child(c, depth))
                    .collect::<Result<arrow::Fields>>()?,
            ),
            DataType::Map(c, sorted) => {
                let entries = self.child(*c, depth)?;
                check_map_entries(&entries)?;
                A::Map(entries, *sorted)
            }
            DataType::Union(u) => self.union(u, depth)?,
            DataType::RunEndEncoded(ends, values) => {
                let ends = self.child(*ends, depth)?;
                if !matches!(ends.data_type(), A::Int16 | A::Int32 | A::Int64) {
                    return Err(Error::new(format!(
                        "run-end-encoded run ends must be int16, int32 or int64, not {}",
                        ends.data_type()
                    )));
                }
                A::RunEndEncoded(ends, self.child(*values, depth)?)
            }
            DataType::Dictionary(d) => {
                let value = self.child(d.value, depth)?;
                A::Dictionary(
                    Box::new(index_from_wit(d.index)),
                    Box::new(value.data_type().clone()),
                )
            }
            flat => flat_from_wit(flat)?,
        })
    }

    fn union(&self, u: &UnionType, depth: usize) -> Result<arrow::DataType> {
        if u.type_ids.len() != u.children.len() {
            return Err(Error::new(format!(
                "union has {} type ids for {} children",
                u.type_ids.len(),
                u.children.len()
            )));
        }
        let children = u
            .children
            .iter()
            .map(|&c| self.child(c, depth))
            .collect::<Result<Vec<_>>>()?;
        let fields = arrow::UnionFields::try_new(u.type_ids.iter().copied(), children)
            .map_err(|e| Error::new(format!("union: {e}")))?;
        Ok(arrow::DataType::Union(
            fields,
            match u.mode {
                UnionMode::Sparse => arrow::UnionMode::Sparse,
                UnionMode::Dense => arrow::UnionMode::Dense,
            },
        ))
    }
}

/// A map's entries are a non-nullable struct of exactly a key and a value,
/// and keys can't be null (the Arrow format's rule; readers rely on it).
fn check_map_entries(entries: &arrow::Field) -> Result<()> {
    let arrow::DataType::Struct(kv) = entries.data_type() else {
        return Err(Error::new(
            "a map's entries must be a struct of key and value",
        ));
    };
    if kv.len() != 2 || entries.is_nullable() || kv[0].is_nullable() {
        return Err(Error::new(
            "a map's entries must be a non-nullable struct of a non-nullable key and a value",
        ));
    }
    Ok(())
}

fn index_from_wit(index: IndexType) -> arrow::DataType {
    use arrow::DataType as A;
    match index {
        IndexType::Int8 => A::Int8,
        IndexType::Int16 => A::Int16,
        IndexType::Int32 => A::Int32,
        IndexType::Int64 => A::Int64,
        IndexType::Uint8 => A::UInt8,
        IndexType::Uint16 => A::UInt16,
        IndexType::Uint32 => A::UInt32,
        IndexType::Uint64 => A::UInt64,
    }
}

fn flat_from_wit(data_type: &DataType) -> Result<arrow::DataType> {
    use arrow::DataType as A;
    Ok(match data_type {
        DataType::Null => A::Null,
        DataType::Boolean => A::Boolean,
        DataType::Int8 => A::Int8,
        DataType::Int16 => A::Int16,
        DataType::Int32 => A::Int32,
        DataType::Int64 => A::Int64,
        DataType::Uint8 => A::UInt8,
        DataType::Uint16 => A::UInt16,
        DataType::Uint32 => A::UInt32,
        DataType::Uint64 => A::UInt64,
        DataType::Float16 => A::Float16,
        DataType::Float32 => A::Float32,
        DataType::Float64 => A::Float64,
        DataType::Utf8 => A::Utf8,
        DataType::LargeUtf8 => A::LargeUtf8,
        DataType::Utf8View => A::Utf8View,
        DataType::Binary => A::Binary,
        DataType::LargeBinary => A::LargeBinary,
        DataType::BinaryView => A::BinaryView,
        DataType::FixedSizeBinary(n) if *n >= 0 => A::FixedSizeBinary(*n),
        DataType::FixedSizeBinary(n) => {
            return Err(Error::new(format!("fixed-size-binary of width {n}")))
        }
        DataType::Date32 => A::Date32,
        DataType::Date64 => A::Date64,
        DataType::Time32(u @ (TimeUnit::Second | TimeUnit::Millisecond)) => {
            A::Time32(unit_from_wit(*u))
        }
        DataType::Time64(u @ (TimeUnit::Microsecond | TimeUnit::Nanosecond)) => {
            A::Time64(unit_from_wit(*u))
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            return Err(Error::new(
                "time32 counts seconds or milliseconds, time64 microseconds or nanoseconds",
            ))
        }
        DataType::Timestamp(t) => {
            A::Timestamp(unit_from_wit(t.unit), t.timezone.as_deref().map(Into::into))
        }
        DataType::Duration(u) => A::Duration(unit_from_wit(*u)),
        DataType::Interval(u) => A::Interval(match u {
            IntervalUnit::YearMonth => arrow::IntervalUnit::YearMonth,
            IntervalUnit::DayTime => arrow::IntervalUnit::DayTime,
            IntervalUnit::MonthDayNano => arrow::IntervalUnit::MonthDayNano,
        }),
        DataType::Decimal32(d) => decimal(d, 9, A::Decimal32)?,
        DataType::Decimal64(d) => decimal(d, 18, A::Decimal64)?,
        DataType::Decimal128(d) => decimal(d, 38, A::Decimal128)?,
        DataType::Decimal256(d) => decimal(d, 76, A::Decimal256)?,
        // Nested types are decoded by the caller.
        nested => return Err(Error::new(format!("{nested:?} is not a flat type"))),
    })
}

/// A decimal whose precision fits its width (Arrow's rule; every reader
/// and writer assumes it).
fn decimal(
    d: &DecimalType,
    max: u8,
    make: fn(u8, i8) -> arrow::DataType,
) -> Result<arrow::DataType> {
    if d.precision == 0 || d.precision > max {
        return Err(Error::new(format!(
            "{} precision {} is outside 1..={max}",
            make(max, 0)
                .to_string()
                .split('(')
                .next()
                .unwrap_or("decimal"),
            d.precision
        )));
    }
    Ok(make(d.precision, d.scale))
}
