//! Event time: a timestamp column of any unit as microseconds since the
//! UNIX epoch, the unit watermarks (`Batch::watermark`) come in.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};

use crate::{Error, Result};

/// `array`'s timestamps (any unit, any time zone) as µs since the epoch;
/// nanoseconds round down, so every instant keeps its order. Null stays
/// null; a column that isn't a timestamp is an error naming its type.
pub fn micros(array: &ArrayRef) -> Result<Vec<Option<i64>>> {
    Ok(match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array
            .as_primitive::<TimestampSecondType>()
            .iter()
            .map(|v| v.map(|s| s.saturating_mul(1_000_000)))
            .collect(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => array
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .map(|v| v.map(|ms| ms.saturating_mul(1000)))
            .collect(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => array
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .map(|v| v.map(|ns| ns.div_euclid(1000)))
            .collect(),
        other => {
            return Err(Error::msg(format!(
                "a {other} column is not a timestamp (event time needs one)"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, TimestampMillisecondArray, TimestampNanosecondArray};

    use super::*;

    #[test]
    fn every_unit_becomes_microseconds_and_nanoseconds_round_down() {
        let ms: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![Some(2), None]));
        assert_eq!(micros(&ms).unwrap(), [Some(2000), None]);
        let ns: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1_999, -1]));
        assert_eq!(micros(&ns).unwrap(), [Some(1), Some(-1)]);
        let int: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(micros(&int).unwrap_err().to_string().contains("Int64"));
    }
}
