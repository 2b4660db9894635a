//! Group keys: which column types can key a group, a key's value, and the
//! output column of a key.

use std::sync::Arc;

use weir_plugin_sdk::arrow_array::types::Date32Type;
use weir_plugin_sdk::arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, StringArray,
};
use weir_plugin_sdk::prelude::*;
use weir_plugin_sdk::serde::{Deserialize as De, Serialize};

use crate::{decimals, ints, is_int};

/// A key value of one group column. Within a column every key has the
/// same kind, so the derived order is the column's order (decimals share
/// their column's scale).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, De)]
#[serde(crate = "weir_plugin_sdk::serde")]
pub(crate) enum Key {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// A decimal128's unscaled value.
    Decimal(i128),
    /// Days since the epoch.
    Date(i32),
}

/// The kind of a group column, and so of its output column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, De)]
#[serde(crate = "weir_plugin_sdk::serde")]
pub(crate) enum KeyKind {
    Bool,
    Int,
    Str,
    /// decimal128(precision, scale), kept as it is.
    Decimal(u8, i8),
    Date,
}

impl KeyKind {
    /// The kind of a group column of type `t`, or an error naming `name`.
    pub(crate) fn of(name: &str, t: &DataType) -> Result<KeyKind> {
        Ok(match t {
            DataType::Boolean => KeyKind::Bool,
            t if weir_plugin_sdk::text::is_text(t) => KeyKind::Str,
            t if is_int(t) => KeyKind::Int,
            DataType::Decimal128(p, s) => KeyKind::Decimal(*p, *s),
            DataType::Date32 => KeyKind::Date,
            t => {
                return Err(Error::msg(format!(
                    "aggregate: group_by column {name:?} is {t}; keys can be strings, integers, \
                     booleans, decimal128 or date32 (cast a timestamp to a date, e.g. with \
                     parse-time, to group by day)"
                )))
            }
        })
    }

    /// The output column's type.
    pub(crate) fn data_type(self) -> DataType {
        match self {
            KeyKind::Bool => DataType::Boolean,
            KeyKind::Int => DataType::Int64,
            KeyKind::Str => DataType::Utf8,
            KeyKind::Decimal(p, s) => DataType::Decimal128(p, s),
            KeyKind::Date => DataType::Date32,
        }
    }

    /// The output column of `keys` (each this kind or null).
    pub(crate) fn column<'k>(self, keys: impl Iterator<Item = &'k Key>) -> Result<ArrayRef> {
        Ok(match self {
            KeyKind::Bool => Arc::new(
                keys.map(|k| match k {
                    Key::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
            ),
            KeyKind::Int => Arc::new(
                keys.map(|k| match k {
                    Key::Int(v) => Some(*v),
                    _ => None,
                })
                .collect::<Int64Array>(),
            ),
            KeyKind::Str => Arc::new(
                keys.map(|k| match k {
                    Key::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<StringArray>(),
            ),
            KeyKind::Decimal(p, s) => Arc::new(
                keys.map(|k| match k {
                    Key::Decimal(v) => Some(*v),
                    _ => None,
                })
                .collect::<Decimal128Array>()
                .with_precision_and_scale(p, s)?,
            ),
            KeyKind::Date => Arc::new(
                keys.map(|k| match k {
                    Key::Date(d) => Some(*d),
                    _ => None,
                })
                .collect::<Date32Array>(),
            ),
        })
    }
}

/// The key of every row of a group column.
pub(crate) fn keys_of(array: &ArrayRef) -> Result<Vec<Key>> {
    fn or_null<T>(values: impl IntoIterator<Item = Option<T>>, key: impl Fn(T) -> Key) -> Vec<Key> {
        values
            .into_iter()
            .map(|v| v.map_or(Key::Null, &key))
            .collect()
    }
    if let Some(texts) = weir_plugin_sdk::text::strings(array) {
        return Ok(or_null(texts, |s| Key::Str(s.to_string())));
    }
    Ok(match array.data_type() {
        DataType::Boolean => or_null(array.as_boolean(), Key::Bool),
        DataType::Date32 => or_null(array.as_primitive::<Date32Type>(), Key::Date),
        _ => {
            if let Some(v) = ints(array) {
                or_null(v, Key::Int)
            } else if let Some(v) = decimals(array) {
                or_null(v, Key::Decimal)
            } else {
                return Err(Error::msg(format!(
                    "aggregate: a key column became {}",
                    array.data_type()
                )));
            }
        }
    })
}
