//! Arrow arrays ↔ array nodes.
//!
//! Encoding hands over the array's own buffers (reference-counted, not
//! copied); only an array that starts past offset 0 (a slice) is first
//! compacted, so every node the other side sees starts at 0. Decoding moves
//! the received buffers into the array and validates everything Arrow's
//! readers assume — buffer sizes, offsets in range and increasing, UTF-8,
//! dictionary keys, union type ids, child lengths, null counts and decimal
//! precision — because the other side of the boundary is untrusted.

use arrow_buffer::{
    bit_util, i256, ArrowNativeType, BooleanBuffer, Buffer, NullBuffer, ScalarBuffer,
};
use arrow_data::decimal::{
    is_validate_decimal256_precision, is_validate_decimal32_precision,
    is_validate_decimal64_precision, is_validate_decimal_precision,
};
use arrow_data::transform::MutableArrayData;
use arrow_data::{ArrayData, ArrayDataBuilder, BufferSpec};
use arrow_schema::{DataType as A, Field};

use crate::offsets;
use crate::schema::MAX_DEPTH;
use crate::tree;
use crate::types::{ArrayNode, ColumnData};
use crate::{Error, Result};

/// An array as array nodes: its buffers are shared, not copied, unless it
/// is a slice.
pub fn array_to_wit(data: &ArrayData) -> Result<ColumnData> {
    let mut nodes = Vec::new();
    let root = push_array(&mut nodes, data)?;
    Ok(ColumnData { nodes, root })
}

/// Array nodes as an array of `data_type`, validated in full.
pub fn array_from_wit(column: ColumnData, data_type: &A) -> Result<ArrayData> {
    decode(column, data_type, Checks::All)
}

/// Array nodes as an array of `data_type`, with the tree's shape, the
/// lengths and the validity bitmaps checked but not the values (offsets,
/// UTF-8, dictionary keys, decimal precision): for a side that sends only
/// valid Arrow — a plugin reading the host's batches, which the host
/// validated or built itself. Checking them again in the guest cost as
/// much as the copy that brought them.
///
/// # Safety
///
/// The nodes must hold a valid Arrow array of `data_type` (as
/// [`array_to_wit`] makes them from one), or the array's readers have
/// undefined behaviour.
#[allow(unsafe_code)]
pub unsafe fn array_from_wit_unchecked(column: ColumnData, data_type: &A) -> Result<ArrayData> {
    decode(column, data_type, Checks::Structure)
}

/// What decoding checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// Everything Arrow's readers assume: the other side is untrusted.
    All,
    /// The tree and the buffers' presence, not the values: the other
    /// side made the array from valid Arrow.
    Structure,
}

fn decode(column: ColumnData, data_type: &A, checks: Checks) -> Result<ArrayData> {
    tree::check(
        column.nodes.len(),
        &[column.root],
        column
            .nodes
            .iter()
            .map(|n| n.children.iter().copied().chain(n.dictionary).collect()),
    )?;
    let mut slots: Vec<Option<ArrayNode>> = column.nodes.into_iter().map(Some).collect();
    build(&mut slots, column.root, data_type, 1, checks)
}

fn push_array(nodes: &mut Vec<ArrayNode>, data: &ArrayData) -> Result<u32> {
    if starts_past_zero(data) {
        return push_array(nodes, &compact(data)?);
    }
    let index = nodes.len();
    nodes.push(ArrayNode::default());
    let validity = match data.nulls() {
        Some(nulls) if nulls.null_count() > 0 => nulls
            .buffer()
            .slice_with_length(0, bit_util::ceil(data.len(), 8)),
        _ => Buffer::from_vec(Vec::<u8>::new()),
    };
    let (children, dictionary) = match data.data_type() {
        A::Dictionary(..) => (
            Vec::new(),
            data.child_data()
                .first()
                .map(|v| push_array(nodes, v))
                .transpose()?,
        ),
        _ => (
            data.child_data()
                .iter()
                .map(|c| push_array(nodes, c))
                .collect::<Result<_>>()?,
            None,
        ),
    };
    nodes[index] = ArrayNode {
        length: to_u32(data.len(), data.data_type())?,
        null_count: to_u32(data.null_count(), data.data_type())?,
        buffers: std::iter::once(validity)
            .chain(data.buffers().iter().cloned())
            .collect(),
        children,
        dictionary,
    };
    to_u32(index, data.data_type())
}

/// The WIT counts slots and nodes in u32: an array past that (a list's
/// child of over 4 billion items) can't cross, and says so rather than
/// crossing cut short.
fn to_u32(n: usize, data_type: &A) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::new(format!(
            "a {data_type} array of {n} slots is past the 4,294,967,295 a plugin can be handed"
        ))
    })
}

fn starts_past_zero(data: &ArrayData) -> bool {
    data.offset() != 0 || data.nulls().is_some_and(|n| n.offset() != 0)
}

/// A copy of `data` that starts at offset 0 and holds only its own slots
/// (a list's child is cut to the range its offsets use).
fn compact(data: &ArrayData) -> Result<ArrayData> {
    let mut copy = MutableArrayData::new(vec![data], false, data.len());
    copy.try_extend(0, 0, data.len())
        .map_err(|e| Error::new(format!("copying a sliced {} array: {e}", data.data_type())))?;
    Ok(copy.freeze())
}

/// The child types an array of `data_type` has, with their names for
/// error messages; a dictionary's values come separately.
fn child_fields(data_type: &A) -> Vec<Field> {
    let field = |f: &arrow_schema::FieldRef| f.as_ref().clone();
    match data_type {
        A::List(f) | A::LargeList(f) | A::ListView(f) | A::LargeListView(f) => vec![field(f)],
        A::FixedSizeList(f, _) | A::Map(f, _) => vec![field(f)],
        A::Struct(fields) => fields.iter().map(field).collect(),
        A::Union(fields, _) => fields.iter().map(|(_, f)| field(f)).collect(),
        A::RunEndEncoded(ends, values) => vec![field(ends), field(values)],
        _ => Vec::new(),
    }
}

// `skip_validation` is unsafe: each use says why the data is valid.
#[allow(unsafe_code)]
fn build(
    slots: &mut [Option<ArrayNode>],
    index: u32,
    data_type: &A,
    depth: usize,
    checks: Checks,
) -> Result<ArrayData> {
    if depth > MAX_DEPTH {
        return Err(Error::new(format!(
            "arrays nest deeper than {MAX_DEPTH} levels"
        )));
    }
    // `tree::check` proved every node has exactly one parent, so each is
    // taken once.
    let node = slots[index as usize]
        .take()
        .ok_or_else(|| Error::new(format!("node {index} is used twice")))?;
    let fields = child_fields(data_type);
    if node.children.len() != fields.len() {
        return Err(Error::new(format!(
            "a {data_type} array has {} child arrays, its type has {}",
            node.children.len(),
            fields.len()
        )));
    }
    let mut child_data = node
        .children
        .iter()
        .zip(&fields)
        .map(|(&c, f)| {
            build(slots, c, f.data_type(), depth + 1, checks).map_err(|e| e.within(f.name()))
        })
        .collect::<Result<Vec<_>>>()?;
    match (data_type, node.dictionary) {
        (A::Dictionary(_, value), Some(d)) => {
            child_data.push(build(slots, d, value, depth + 1, checks)?)
        }
        (A::Dictionary(..), None) => {
            return Err(Error::new("a dictionary array without its values"))
        }
        (_, Some(_)) => {
            return Err(Error::new(format!(
                "a {data_type} array can't carry a dictionary"
            )))
        }
        (_, None) => {}
    }
    let (nulls, buffers) = validity(node.buffers, node.length, node.null_count, data_type)?;
    let buffers = first_offset(data_type, node.length, whole_values(data_type, buffers));
    let builder = ArrayDataBuilder::new(data_type.clone())
        .len(node.length as usize)
        .nulls(nulls)
        .buffers(buffers)
        .child_data(child_data)
        .align_buffers(true);
    let arrow = |e: arrow_schema::ArrowError| Error::new(e.to_string());
    match checks {
        Checks::Structure => {
            // SAFETY: the caller of `array_from_wit_unchecked` vouches for
            // the values; `validate` still checks buffer counts and sizes.
            let data = unsafe { builder.skip_validation(true) }
                .build()
                .map_err(arrow)?;
            data.validate().map_err(arrow)?;
            Ok(data)
        }
        Checks::All if offsets::checks(data_type) => {
            // Arrow's structural checks, then its value checks done by
            // `offsets` at memory speed; arrow-rs's own value checks
            // decide (and name the first bad value) when those say no.
            // SAFETY: validated in full below before it is returned.
            let data = unsafe { builder.skip_validation(true) }
                .build()
                .map_err(arrow)?;
            data.validate().map_err(arrow)?;
            data.validate_nulls().map_err(arrow)?;
            if !offsets::valid(&data) {
                data.validate_values().map_err(arrow)?;
            }
            Ok(data)
        }
        Checks::All => {
            let data = builder.build().map_err(arrow)?;
            check_precision(&data)?;
            Ok(data)
        }
    }
}

/// Each fixed-width buffer cut to a whole number of values. Bytes past the
/// last value are legal (padding), but arrow-rs 60's validation asserts a
/// whole number of values when it reads offsets, keys or run ends: a guest
/// sending 3 stray bytes would panic the host (found by the `wit_arrow`
/// fuzz target). Padding Arrow writers add is a multiple of 8 or 64 bytes,
/// so a whole buffer of values is never cut.
fn whole_values(data_type: &A, buffers: Vec<Buffer>) -> Vec<Buffer> {
    let layout = arrow_data::layout(data_type);
    buffers
        .into_iter()
        .enumerate()
        .map(|(i, buffer)| match layout.buffers.get(i) {
            Some(BufferSpec::FixedWidth { byte_width, .. })
                if *byte_width > 0 && buffer.len() % byte_width != 0 =>
            {
                let whole = buffer.len() - buffer.len() % byte_width;
                buffer.slice_with_length(0, whole)
            }
            _ => buffer,
        })
        .collect()
}

/// An empty array's offsets as one zero offset. Arrow allows a 0-byte
/// offsets buffer for an empty array and arrow-rs's validation accepts it,
/// but parts of arrow-rs 60 index its first offset anyway (`ArrayData`
/// equality panics on it: found by the `wit_arrow` fuzz target).
fn first_offset(data_type: &A, length: u32, mut buffers: Vec<Buffer>) -> Vec<Buffer> {
    let zero = match data_type {
        A::Utf8 | A::Binary | A::List(_) | A::Map(..) => Buffer::from_vec(vec![0i32]),
        A::LargeUtf8 | A::LargeBinary | A::LargeList(_) => Buffer::from_vec(vec![0i64]),
        _ => return buffers,
    };
    if length == 0 && buffers.first().is_some_and(|b| b.is_empty()) {
        buffers[0] = zero;
    }
    buffers
}

/// Splits off `buffers[0]`, the validity bitmap, and checks it against the
/// claimed length and null count.
fn validity(
    buffers: Vec<Buffer>,
    length: u32,
    null_count: u32,
    data_type: &A,
) -> Result<(Option<NullBuffer>, Vec<Buffer>)> {
    let mut buffers = buffers.into_iter();
    let Some(bitmap) = buffers.next() else {
        return Err(Error::new(
            "no buffers: buffers[0] is the validity bitmap (empty for no nulls)",
        ));
    };
    let len = length as usize;
    let nulls = if bitmap.is_empty() {
        None
    } else if matches!(data_type, A::Null | A::Union(..) | A::RunEndEncoded(..)) {
        return Err(Error::new(format!(
            "a {data_type} array has no validity bitmap: buffers[0] must be empty"
        )));
    } else if bitmap.len() < bit_util::ceil(len, 8) {
        return Err(Error::new(format!(
            "the validity bitmap has {} bytes for {len} rows (needs {})",
            bitmap.len(),
            bit_util::ceil(len, 8)
        )));
    } else {
        Some(NullBuffer::new(BooleanBuffer::new(bitmap, 0, len)))
    };
    // The count of the bitmap's nulls (0 without one, null arrays included:
    // they have no bitmap), as arrow-rs counts them.
    let claimed = nulls.as_ref().map_or(0, NullBuffer::null_count);
    if null_count as usize != claimed {
        return Err(Error::new(format!(
            "null-count says {null_count}, the array has {claimed}"
        )));
    }
    Ok((nulls, buffers.collect()))
}

/// Every non-null decimal fits its declared precision (Arrow doesn't check
/// this when it builds an array; a sink or a sum downstream would
/// misbehave on it).
fn check_precision(data: &ArrayData) -> Result<()> {
    match data.data_type() {
        A::Decimal32(p, _) => first_overflow(data, |v: i32| is_validate_decimal32_precision(v, *p)),
        A::Decimal64(p, _) => first_overflow(data, |v: i64| is_validate_decimal64_precision(v, *p)),
        A::Decimal128(p, _) => first_overflow(data, |v: i128| is_validate_decimal_precision(v, *p)),
        A::Decimal256(p, _) => {
            first_overflow(data, |v: i256| is_validate_decimal256_precision(v, *p))
        }
        _ => Ok(()),
    }
}

fn first_overflow<T: ArrowNativeType + std::fmt::Display>(
    data: &ArrayData,
    fits: impl Fn(T) -> bool,
) -> Result<()> {
    // Not `data.buffer::<T>(0)`: that asserts the buffer is a whole number
    // of values, and a guest may send trailing bytes past the last one
    // (validation only checks there are enough). Aligned by the builder.
    let values = ScalarBuffer::<T>::new(data.buffers()[0].clone(), data.offset(), data.len());
    match (0..data.len()).find(|&i| data.is_valid(i) && !fits(values[i])) {
        None => Ok(()),
        Some(row) => Err(Error::new(format!(
            "row {row}: {} (unscaled) exceeds the precision of {}",
            values[row],
            data.data_type()
        ))),
    }
}
