//! Plain Rust mirrors of `weir:plugin@0.2.0`'s type and value records.
//!
//! Each side converts its bindgen-generated types into these by moving
//! fields (no buffer is copied), so the mapping in [`crate::schema`] and
//! [`crate::array`] is written once.

/// Resolution of a time, timestamp or duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds.
    Second,
    /// Milliseconds.
    Millisecond,
    /// Microseconds.
    Microsecond,
    /// Nanoseconds.
    Nanosecond,
}

/// What an interval counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalUnit {
    /// Months (i32).
    YearMonth,
    /// Days and milliseconds (2 × i32).
    DayTime,
    /// Months, days (i32 each) and nanoseconds (i64).
    MonthDayNano,
}

/// How a union lays out its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnionMode {
    /// Every child has the union's length.
    Sparse,
    /// Children are packed; an offsets buffer points into them.
    Dense,
}

/// The integer type of a dictionary's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexType {
    /// i8 keys.
    Int8,
    /// i16 keys.
    Int16,
    /// i32 keys.
    Int32,
    /// i64 keys.
    Int64,
    /// u8 keys.
    Uint8,
    /// u16 keys.
    Uint16,
    /// u32 keys.
    Uint32,
    /// u64 keys.
    Uint64,
}

/// A timestamp: unit and optional IANA or offset zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampType {
    /// Ticks per second.
    pub unit: TimeUnit,
    /// "UTC", "Europe/Berlin", "+02:00"; none for a naive timestamp.
    pub timezone: Option<String>,
}

/// A decimal's precision (total digits) and scale (digits after the point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalType {
    /// Total significant digits.
    pub precision: u8,
    /// Digits after the decimal point (negative: powers of ten before it).
    pub scale: i8,
}

/// A dictionary-encoded column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DictionaryType {
    /// The keys' integer type.
    pub index: IndexType,
    /// The node of the values' type (its name and nullability are unused).
    pub value: u32,
    /// Whether the dictionary's order is meaningful.
    pub ordered: bool,
}

/// A union's children and the type id of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnionType {
    /// Sparse or dense.
    pub mode: UnionMode,
    /// The id each child is tagged with, in child order.
    pub type_ids: Vec<i8>,
    /// The children's nodes.
    pub children: Vec<u32>,
}

/// A logical Arrow type. Nested types name their children by node index
/// into the enclosing [`Schema::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the variants are Arrow's types, named as Arrow names them
pub enum DataType {
    Null,
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Float16,
    Float32,
    Float64,
    Utf8,
    LargeUtf8,
    Utf8View,
    Binary,
    LargeBinary,
    BinaryView,
    FixedSizeBinary(i32),
    Date32,
    Date64,
    Time32(TimeUnit),
    Time64(TimeUnit),
    Timestamp(TimestampType),
    Duration(TimeUnit),
    Interval(IntervalUnit),
    Decimal32(DecimalType),
    Decimal64(DecimalType),
    Decimal128(DecimalType),
    Decimal256(DecimalType),
    /// The item node.
    List(u32),
    /// The item node.
    LargeList(u32),
    /// The item node, the list size.
    FixedSizeList(u32, i32),
    /// The item node.
    ListView(u32),
    /// The item node.
    LargeListView(u32),
    /// The field nodes.
    Struct(Vec<u32>),
    /// The entries node (a non-nullable struct of key and value), and
    /// whether keys are sorted within each map.
    Map(u32, bool),
    Dictionary(DictionaryType),
    Union(UnionType),
    /// The run-ends node (int16/32/64) and the values node.
    RunEndEncoded(u32, u32),
}

/// One field of the type tree: a column, a struct member, a list's item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNode {
    /// The field's name ("item" for a list's values, as Arrow names it).
    pub name: String,
    /// Its type; nested types point at later nodes.
    pub data_type: DataType,
    /// Whether it may hold nulls.
    pub nullable: bool,
    /// Arrow field metadata, sorted by key.
    pub metadata: Vec<(String, String)>,
}

/// A schema as a flattened tree: `nodes[i]` names its children by index,
/// always a larger one, and every node but the roots is the child of
/// exactly one node. `columns` are the roots, in column order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    /// Every field of every column, parents before children.
    pub nodes: Vec<FieldNode>,
    /// The top-level columns' nodes.
    pub columns: Vec<u32>,
    /// Schema metadata, sorted by key.
    pub metadata: Vec<(String, String)>,
}

/// One Arrow array of a column's tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArrayNode {
    /// Number of slots.
    pub length: u32,
    /// Number of null slots in the validity bitmap (0 when `buffers[0]`
    /// is empty, as for every null, union and run-end-encoded array).
    pub null_count: u32,
    /// `buffers[0]` is the validity bitmap (empty: no nulls; always empty
    /// for null, union and run-end-encoded arrays), then Arrow's buffers
    /// for the type in Arrow's order: values; offsets then data; views
    /// then the data buffers; type ids then offsets (dense unions);
    /// offsets then sizes (list views). Every array starts at offset 0.
    pub buffers: Vec<arrow_buffer::Buffer>,
    /// The child arrays' nodes (list item, struct fields, map entries,
    /// union members, run ends then values).
    pub children: Vec<u32>,
    /// A dictionary array's values.
    pub dictionary: Option<u32>,
}

/// A column's arrays, flattened like its type, parents before children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnData {
    /// Every array of the column.
    pub nodes: Vec<ArrayNode>,
    /// The column's own array.
    pub root: u32,
}
