//! String columns whatever their encoding: utf8, large_utf8, utf8_view, or
//! a dictionary of them (how Spark and pyarrow write repeated strings).

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

/// Whether `t` holds text: a string type or a dictionary of one.
pub fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

/// Each row's text (`None` where null), or `None` when `array` doesn't
/// hold text. A dictionary's rows read their key's value.
pub fn strings(array: &ArrayRef) -> Option<Vec<Option<&str>>> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
        DataType::Utf8View => array.as_string_view().iter().collect(),
        DataType::Dictionary(..) => {
            let dict = array.as_any_dictionary();
            let values = strings(dict.values())?;
            let null_keys = dict.keys().logical_nulls();
            dict.normalized_keys()
                .iter()
                .enumerate()
                .map(|(row, &k)| {
                    let null = null_keys.as_ref().is_some_and(|n| n.is_null(row));
                    if null {
                        None
                    } else {
                        values.get(k).copied().flatten()
                    }
                })
                .collect()
        }
        _ => return None,
    })
}
