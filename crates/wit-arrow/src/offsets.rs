//! The value checks of offset-based arrays (strings, binary, lists) at
//! memory speed.
//!
//! arrow-rs checks offsets one at a time with an error path per value, and
//! a string's offsets as UTF-8 boundaries one by one: for a column of
//! short strings that is several times the copy that brought it across.
//! These checks hold the same invariants as `ArrayData::validate_values`
//! for these types, as whole-slice passes the compiler vectorizes: offsets
//! start at zero or more, never decrease and end within the values (the
//! child array for lists); a string column's used bytes are UTF-8 and
//! every offset falls on a character boundary (trivially when the bytes
//! are ASCII, the common case). A yes is final; on a no (or an array
//! these don't read, such as an empty one without offsets) the caller
//! runs arrow-rs's own check, which decides and names the bad value.

use arrow_buffer::ArrowNativeType;
use arrow_data::ArrayData;
use arrow_schema::DataType as A;

/// Whether [`valid`] checks arrays of `data_type`.
pub(crate) fn checks(data_type: &A) -> bool {
    matches!(
        data_type,
        A::Utf8
            | A::LargeUtf8
            | A::Binary
            | A::LargeBinary
            | A::List(_)
            | A::LargeList(_)
            | A::Map(..)
    )
}

/// Whether `data`'s values are valid. `data` passed `ArrayData::validate`
/// (its offsets buffer holds `len + 1` aligned offsets, or none for an
/// empty array), and is one of the types [`checks`] names.
pub(crate) fn valid(data: &ArrayData) -> bool {
    let values = || data.buffers().get(1).map_or(&[][..], |b| b.as_slice());
    let child_len = || data.child_data().first().map_or(0, ArrayData::len);
    let answer = match data.data_type() {
        A::Utf8 => offsets::<i32>(data).map(|o| strings(o, values(), true)),
        A::LargeUtf8 => offsets::<i64>(data).map(|o| strings(o, values(), true)),
        A::Binary => offsets::<i32>(data).map(|o| strings(o, values(), false)),
        A::LargeBinary => offsets::<i64>(data).map(|o| strings(o, values(), false)),
        A::List(_) | A::Map(..) => offsets::<i32>(data).map(|o| within(o, child_len())),
        A::LargeList(_) => offsets::<i64>(data).map(|o| within(o, child_len())),
        _ => None,
    };
    answer.unwrap_or(false)
}

/// The array's `len + 1` offsets, if its first buffer holds them aligned
/// (checked first: `typed_data` asserts it).
fn offsets<O: ArrowNativeType>(data: &ArrayData) -> Option<&[O]> {
    let buffer = data.buffers().first()?;
    let size = std::mem::size_of::<O>();
    let whole =
        buffer.as_ptr().align_offset(std::mem::align_of::<O>()) == 0 && buffer.len() % size == 0;
    if !whole {
        return None;
    }
    buffer
        .typed_data::<O>()
        .get(data.offset()..data.offset() + data.len() + 1)
}

/// Offsets start at zero or more, never decrease, and end at `limit` or
/// before.
fn within<O: ArrowNativeType + Ord>(offsets: &[O], limit: usize) -> bool {
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        return true;
    };
    let increasing = offsets[..offsets.len() - 1]
        .iter()
        .zip(&offsets[1..])
        .fold(true, |ok, (a, b)| ok & (a <= b));
    increasing && first.to_usize().is_some() && last.to_usize().is_some_and(|l| l <= limit)
}

/// Offsets [`within`] the values; for strings, the bytes they span are
/// UTF-8 and each offset starts a character.
fn strings<O: ArrowNativeType + Ord>(offsets: &[O], values: &[u8], utf8: bool) -> bool {
    if !within(offsets, values.len()) {
        return false;
    }
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        return true;
    };
    if !utf8 {
        return true;
    }
    let (first, last) = (first.as_usize(), last.as_usize());
    let used = &values[first..last];
    if used.is_ascii() {
        return true;
    }
    // A continuation byte (0b10xx_xxxx) is the only byte no character
    // starts with; an offset at `last` is the end, a boundary.
    std::str::from_utf8(used).is_ok()
        && offsets
            .iter()
            .map(|o| o.as_usize())
            .fold(true, |ok, o| ok & (o == last || (values[o] as i8) >= -0x40))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_must_start_at_zero_or_more_increase_and_end_within_the_values() {
        assert!(within::<i32>(&[0, 1, 1, 4], 4));
        assert!(within::<i32>(&[], 0));
        assert!(!within::<i32>(&[0, 2, 1], 4));
        assert!(!within::<i32>(&[-1, 2], 4));
        assert!(!within::<i32>(&[0, 5], 4));
    }

    #[test]
    fn string_offsets_must_fall_on_character_boundaries() {
        let text = "añb".as_bytes(); // ñ is two bytes: 1..3
        assert!(strings::<i32>(&[0, 1, 3, 4], text, true));
        assert!(!strings::<i32>(&[0, 2, 4], text, true));
        // Binary has no characters.
        assert!(strings::<i32>(&[0, 2, 4], text, false));
        // Bytes outside the offsets' span aren't read as text.
        assert!(strings::<i32>(&[0, 1], &[b'a', 0xff], true));
        assert!(!strings::<i32>(&[0, 2], &[b'a', 0xff], true));
    }
}
