//! Arrow ↔ WIT on the host side.
//!
//! Into the guest: a column's logical values are copied once into a typed
//! list. Out of the guest: a typed list becomes the Arrow buffer as is (no
//! second copy), and is validated in full before anyone else sees it —
//! every batch a plugin returns is untrusted input.

use std::sync::Arc;

use arrow::array::{
    make_array, Array, ArrayRef, AsArray, BinaryArray, BooleanArray, OffsetSizeTrait,
    PrimitiveArray, StringArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::*;

use crate::bindings::types as wit;

/// Arrow type → WIT type, or why it can't cross.
pub fn data_type_to_wit(t: &DataType) -> Result<wit::DataType, String> {
    Ok(match t {
        DataType::Boolean => wit::DataType::Boolean,
        DataType::Int8 => wit::DataType::Int8,
        DataType::Int16 => wit::DataType::Int16,
        DataType::Int32 => wit::DataType::Int32,
        DataType::Int64 => wit::DataType::Int64,
        DataType::UInt8 => wit::DataType::Uint8,
        DataType::UInt16 => wit::DataType::Uint16,
        DataType::UInt32 => wit::DataType::Uint32,
        DataType::UInt64 => wit::DataType::Uint64,
        DataType::Float32 => wit::DataType::Float32,
        DataType::Float64 => wit::DataType::Float64,
        DataType::Utf8 => wit::DataType::Utf8,
        DataType::Binary => wit::DataType::Binary,
        DataType::Date32 => wit::DataType::Date32,
        DataType::Timestamp(unit, tz) => wit::DataType::Timestamp(wit::TimestampType {
            unit: match unit {
                TimeUnit::Second => wit::TimeUnit::Second,
                TimeUnit::Millisecond => wit::TimeUnit::Millisecond,
                TimeUnit::Microsecond => wit::TimeUnit::Microsecond,
                TimeUnit::Nanosecond => wit::TimeUnit::Nanosecond,
            },
            timezone: tz.as_deref().map(str::to_string),
        }),
        other => return Err(format!("type {other} can't be handed to a plugin")),
    })
}

/// WIT type → Arrow type.
pub fn data_type_from_wit(t: &wit::DataType) -> DataType {
    match t {
        wit::DataType::Boolean => DataType::Boolean,
        wit::DataType::Int8 => DataType::Int8,
        wit::DataType::Int16 => DataType::Int16,
        wit::DataType::Int32 => DataType::Int32,
        wit::DataType::Int64 => DataType::Int64,
        wit::DataType::Uint8 => DataType::UInt8,
        wit::DataType::Uint16 => DataType::UInt16,
        wit::DataType::Uint32 => DataType::UInt32,
        wit::DataType::Uint64 => DataType::UInt64,
        wit::DataType::Float32 => DataType::Float32,
        wit::DataType::Float64 => DataType::Float64,
        wit::DataType::Utf8 => DataType::Utf8,
        wit::DataType::Binary => DataType::Binary,
        wit::DataType::Date32 => DataType::Date32,
        wit::DataType::Timestamp(ts) => DataType::Timestamp(
            match ts.unit {
                wit::TimeUnit::Second => TimeUnit::Second,
                wit::TimeUnit::Millisecond => TimeUnit::Millisecond,
                wit::TimeUnit::Microsecond => TimeUnit::Microsecond,
                wit::TimeUnit::Nanosecond => TimeUnit::Nanosecond,
            },
            ts.timezone.as_deref().map(Into::into),
        ),
    }
}

/// Arrow schema → WIT schema; names the first column that can't cross.
pub fn schema_to_wit(schema: &Schema) -> Result<Vec<wit::Field>, String> {
    schema
        .fields()
        .iter()
        .map(|f| {
            Ok(wit::Field {
                name: f.name().clone(),
                data_type: data_type_to_wit(f.data_type())
                    .map_err(|e| format!("column {:?}: {e}", f.name()))?,
                nullable: f.is_nullable(),
            })
        })
        .collect()
}

/// WIT schema → Arrow schema.
pub fn schema_from_wit(fields: &[wit::Field]) -> Schema {
    Schema::new(
        fields
            .iter()
            .map(|f| Field::new(&f.name, data_type_from_wit(&f.data_type), f.nullable))
            .collect::<Vec<_>>(),
    )
}

fn scalars<T: ArrowPrimitiveType>(array: &dyn Array) -> Vec<T::Native> {
    array.as_primitive::<T>().values().to_vec()
}

fn var_data<O: OffsetSizeTrait>(
    offsets: &OffsetBuffer<O>,
    values: &[u8],
) -> Result<wit::VarData, String> {
    let slice: &[O] = offsets.as_ref();
    let first = slice.first().map_or(0, |o| o.as_usize());
    let last = slice.last().map_or(0, |o| o.as_usize());
    let offsets = slice
        .iter()
        .map(|o| i32::try_from(o.as_usize() - first))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| "a string column over 2 GiB can't be handed to a plugin".to_string())?;
    Ok(wit::VarData {
        offsets,
        data: values[first..last].to_vec(),
    })
}

/// An Arrow array → a WIT column (one copy of its logical range).
pub fn column_to_wit(array: &dyn Array) -> Result<wit::Column, String> {
    let data_type = data_type_to_wit(array.data_type())?;
    let values = match array.data_type() {
        DataType::Boolean => wit::Values::Bool(array.as_boolean().values().iter().collect()),
        DataType::Int8 => wit::Values::S8(scalars::<Int8Type>(array)),
        DataType::Int16 => wit::Values::S16(scalars::<Int16Type>(array)),
        DataType::Int32 => wit::Values::S32(scalars::<Int32Type>(array)),
        DataType::Date32 => wit::Values::S32(scalars::<Date32Type>(array)),
        DataType::Int64 => wit::Values::S64(scalars::<Int64Type>(array)),
        DataType::Timestamp(TimeUnit::Second, _) => {
            wit::Values::S64(scalars::<TimestampSecondType>(array))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            wit::Values::S64(scalars::<TimestampMillisecondType>(array))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            wit::Values::S64(scalars::<TimestampMicrosecondType>(array))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            wit::Values::S64(scalars::<TimestampNanosecondType>(array))
        }
        DataType::UInt8 => wit::Values::U8(scalars::<UInt8Type>(array)),
        DataType::UInt16 => wit::Values::U16(scalars::<UInt16Type>(array)),
        DataType::UInt32 => wit::Values::U32(scalars::<UInt32Type>(array)),
        DataType::UInt64 => wit::Values::U64(scalars::<UInt64Type>(array)),
        DataType::Float32 => wit::Values::F32(scalars::<Float32Type>(array)),
        DataType::Float64 => wit::Values::F64(scalars::<Float64Type>(array)),
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            wit::Values::Var(var_data(a.offsets(), a.values())?)
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            wit::Values::Var(var_data(a.offsets(), a.values())?)
        }
        other => return Err(format!("type {other} can't be handed to a plugin")),
    };
    let validity = array
        .logical_nulls()
        .filter(|n| n.null_count() > 0)
        .map(|n| n.inner().sliced().as_slice().to_vec());
    Ok(wit::Column {
        data_type,
        values,
        validity,
    })
}

fn primitive<T: ArrowPrimitiveType>(
    values: Vec<T::Native>,
    nulls: Option<NullBuffer>,
    data_type: DataType,
) -> Result<ArrayRef, String> {
    PrimitiveArray::<T>::try_new(ScalarBuffer::from(values), nulls)
        .map_err(|e| e.to_string())?
        .with_data_type_checked(data_type)
}

trait WithDataType {
    fn with_data_type_checked(self, data_type: DataType) -> Result<ArrayRef, String>;
}

impl<T: ArrowPrimitiveType> WithDataType for PrimitiveArray<T> {
    fn with_data_type_checked(self, data_type: DataType) -> Result<ArrayRef, String> {
        if !PrimitiveArray::<T>::is_compatible(&data_type) {
            return Err(format!("values don't fit type {data_type}"));
        }
        Ok(Arc::new(self.with_data_type(data_type)))
    }
}

fn var_offsets(offsets: Vec<i32>) -> Result<OffsetBuffer<i32>, String> {
    // Checked here rather than trusted: OffsetBuffer::new panics on bad input.
    if offsets.is_empty() {
        return Err("a string column needs at least one offset".into());
    }
    if offsets[0] < 0 || offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("string offsets must start at 0 or more and never decrease".into());
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(offsets)))
}

/// A WIT column from a plugin → a validated Arrow array of `rows` rows.
pub fn column_from_wit(column: wit::Column, rows: usize) -> Result<ArrayRef, String> {
    let data_type = data_type_from_wit(&column.data_type);
    let nulls = match column.validity {
        Some(bits) => {
            if bits.len() * 8 < rows {
                return Err(format!(
                    "validity bitmap has {} bytes, {rows} rows need {}",
                    bits.len(),
                    rows.div_ceil(8)
                ));
            }
            Some(NullBuffer::new(BooleanBuffer::new(
                Buffer::from_vec(bits),
                0,
                rows,
            )))
        }
        None => None,
    };
    let array: ArrayRef = match (column.values, &data_type) {
        (wit::Values::Bool(v), DataType::Boolean) => {
            if v.len() != rows {
                return Err(format!(
                    "column has {} values, the batch has {rows} rows",
                    v.len()
                ));
            }
            Arc::new(BooleanArray::new(BooleanBuffer::from(v), nulls))
        }
        (wit::Values::S8(v), DataType::Int8) => primitive::<Int8Type>(v, nulls, data_type)?,
        (wit::Values::S16(v), DataType::Int16) => primitive::<Int16Type>(v, nulls, data_type)?,
        (wit::Values::S32(v), DataType::Int32) => primitive::<Int32Type>(v, nulls, data_type)?,
        (wit::Values::S32(v), DataType::Date32) => primitive::<Date32Type>(v, nulls, data_type)?,
        (wit::Values::S64(v), DataType::Int64) => primitive::<Int64Type>(v, nulls, data_type)?,
        (wit::Values::S64(v), DataType::Timestamp(unit, _)) => match unit {
            TimeUnit::Second => primitive::<TimestampSecondType>(v, nulls, data_type)?,
            TimeUnit::Millisecond => primitive::<TimestampMillisecondType>(v, nulls, data_type)?,
            TimeUnit::Microsecond => primitive::<TimestampMicrosecondType>(v, nulls, data_type)?,
            TimeUnit::Nanosecond => primitive::<TimestampNanosecondType>(v, nulls, data_type)?,
        },
        (wit::Values::U8(v), DataType::UInt8) => primitive::<UInt8Type>(v, nulls, data_type)?,
        (wit::Values::U16(v), DataType::UInt16) => primitive::<UInt16Type>(v, nulls, data_type)?,
        (wit::Values::U32(v), DataType::UInt32) => primitive::<UInt32Type>(v, nulls, data_type)?,
        (wit::Values::U64(v), DataType::UInt64) => primitive::<UInt64Type>(v, nulls, data_type)?,
        (wit::Values::F32(v), DataType::Float32) => primitive::<Float32Type>(v, nulls, data_type)?,
        (wit::Values::F64(v), DataType::Float64) => primitive::<Float64Type>(v, nulls, data_type)?,
        (wit::Values::Var(v), DataType::Utf8) => Arc::new(
            StringArray::try_new(var_offsets(v.offsets)?, Buffer::from_vec(v.data), nulls)
                .map_err(|e| e.to_string())?,
        ),
        (wit::Values::Var(v), DataType::Binary) => Arc::new(
            BinaryArray::try_new(var_offsets(v.offsets)?, Buffer::from_vec(v.data), nulls)
                .map_err(|e| e.to_string())?,
        ),
        (_, t) => return Err(format!("values don't match the column's declared type {t}")),
    };
    if array.len() != rows {
        return Err(format!(
            "column has {} values, the batch has {rows} rows",
            array.len()
        ));
    }
    let data = array.to_data();
    data.validate_full().map_err(|e| e.to_string())?;
    Ok(make_array(data))
}
