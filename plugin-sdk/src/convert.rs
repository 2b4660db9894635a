//! Arrow ↔ WIT conversions on the guest side.
//!
//! Primitive buffers move without a copy: a `Vec<i64>` from the host becomes
//! the array's buffer as is.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, PrimitiveArray, RecordBatch, StringArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use crate::wit::weir::plugin::types as wit;
use crate::{Error, Result};

pub(crate) fn data_type_from_wit(t: &wit::DataType) -> DataType {
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

pub(crate) fn data_type_to_wit(t: &DataType) -> Result<wit::DataType> {
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
        other => {
            return Err(Error::msg(format!(
                "type {other} can't cross the weir plugin boundary; cast it first"
            )))
        }
    })
}

pub(crate) fn schema_from_wit(fields: &[wit::Field]) -> Schema {
    Schema::new(
        fields
            .iter()
            .map(|f| Field::new(&f.name, data_type_from_wit(&f.data_type), f.nullable))
            .collect::<Vec<_>>(),
    )
}

pub(crate) fn schema_to_wit(schema: &Schema) -> Result<Vec<wit::Field>> {
    schema
        .fields()
        .iter()
        .map(|f| {
            Ok(wit::Field {
                name: f.name().clone(),
                data_type: data_type_to_wit(f.data_type())?,
                nullable: f.is_nullable(),
            })
        })
        .collect()
}

fn primitive<T: ArrowPrimitiveType>(
    values: Vec<T::Native>,
    nulls: Option<NullBuffer>,
    data_type: DataType,
) -> Result<ArrayRef> {
    let array =
        PrimitiveArray::<T>::try_new(ScalarBuffer::from(values), nulls)?.with_data_type(data_type);
    Ok(Arc::new(array))
}

/// Turns a column received from the host into an arrow-rs array.
pub(crate) fn column_from_wit(column: wit::Column) -> Result<ArrayRef> {
    let data_type = data_type_from_wit(&column.data_type);
    let len = match &column.values {
        wit::Values::Bool(v) => v.len(),
        wit::Values::S8(v) => v.len(),
        wit::Values::S16(v) => v.len(),
        wit::Values::S32(v) => v.len(),
        wit::Values::S64(v) => v.len(),
        wit::Values::U8(v) => v.len(),
        wit::Values::U16(v) => v.len(),
        wit::Values::U32(v) => v.len(),
        wit::Values::U64(v) => v.len(),
        wit::Values::F32(v) => v.len(),
        wit::Values::F64(v) => v.len(),
        wit::Values::Var(v) => v.offsets.len().saturating_sub(1),
    };
    let nulls = match column.validity {
        Some(bits) => {
            if bits.len() * 8 < len {
                return Err(Error::msg("validity bitmap shorter than the column"));
            }
            Some(NullBuffer::new(BooleanBuffer::new(
                Buffer::from_vec(bits),
                0,
                len,
            )))
        }
        None => None,
    };
    let mismatch = || {
        Error::msg(format!(
            "column values don't match its declared type {data_type}"
        ))
    };
    match (column.values, &data_type) {
        (wit::Values::Bool(v), DataType::Boolean) => {
            Ok(Arc::new(BooleanArray::new(BooleanBuffer::from(v), nulls)))
        }
        (wit::Values::S8(v), DataType::Int8) => primitive::<Int8Type>(v, nulls, data_type),
        (wit::Values::S16(v), DataType::Int16) => primitive::<Int16Type>(v, nulls, data_type),
        (wit::Values::S32(v), DataType::Int32) => primitive::<Int32Type>(v, nulls, data_type),
        (wit::Values::S32(v), DataType::Date32) => primitive::<Date32Type>(v, nulls, data_type),
        (wit::Values::S64(v), DataType::Int64) => primitive::<Int64Type>(v, nulls, data_type),
        (wit::Values::S64(v), DataType::Timestamp(unit, _)) => match unit {
            TimeUnit::Second => primitive::<TimestampSecondType>(v, nulls, data_type),
            TimeUnit::Millisecond => primitive::<TimestampMillisecondType>(v, nulls, data_type),
            TimeUnit::Microsecond => primitive::<TimestampMicrosecondType>(v, nulls, data_type),
            TimeUnit::Nanosecond => primitive::<TimestampNanosecondType>(v, nulls, data_type),
        },
        (wit::Values::U8(v), DataType::UInt8) => primitive::<UInt8Type>(v, nulls, data_type),
        (wit::Values::U16(v), DataType::UInt16) => primitive::<UInt16Type>(v, nulls, data_type),
        (wit::Values::U32(v), DataType::UInt32) => primitive::<UInt32Type>(v, nulls, data_type),
        (wit::Values::U64(v), DataType::UInt64) => primitive::<UInt64Type>(v, nulls, data_type),
        (wit::Values::F32(v), DataType::Float32) => primitive::<Float32Type>(v, nulls, data_type),
        (wit::Values::F64(v), DataType::Float64) => primitive::<Float64Type>(v, nulls, data_type),
        (wit::Values::Var(v), DataType::Utf8) => {
            let offsets = OffsetBuffer::new(ScalarBuffer::from(v.offsets));
            Ok(Arc::new(StringArray::try_new(
                offsets,
                Buffer::from_vec(v.data),
                nulls,
            )?))
        }
        (wit::Values::Var(v), DataType::Binary) => {
            let offsets = OffsetBuffer::new(ScalarBuffer::from(v.offsets));
            Ok(Arc::new(BinaryArray::try_new(
                offsets,
                Buffer::from_vec(v.data),
                nulls,
            )?))
        }
        _ => Err(mismatch()),
    }
}

/// Copies the logical values of `buffer` out, honouring the array's offset.
fn scalars<T: ArrowPrimitiveType>(array: &dyn Array) -> Vec<T::Native> {
    array.as_primitive::<T>().values().to_vec()
}

/// The validity bitmap of `array`, re-based to offset 0.
fn validity(array: &dyn Array) -> Option<Vec<u8>> {
    array
        .logical_nulls()
        .filter(|n| n.null_count() > 0)
        .map(|n| n.inner().sliced().as_slice().to_vec())
}

fn var_data<O: arrow_array::OffsetSizeTrait>(
    offsets: &OffsetBuffer<O>,
    values: &[u8],
) -> Result<wit::VarData> {
    let slice: &[O] = offsets.as_ref();
    let first = slice.first().map_or(0, |o| o.as_usize());
    let last = slice.last().map_or(0, |o| o.as_usize());
    let offsets = offsets
        .iter()
        .map(|o| i32::try_from(o.as_usize() - first))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| Error::msg("string column over 2 GiB can't cross the boundary"))?;
    Ok(wit::VarData {
        offsets,
        data: values[first..last].to_vec(),
    })
}

/// Turns an arrow-rs array into a column for the host.
pub(crate) fn column_to_wit(array: &dyn Array) -> Result<wit::Column> {
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
        other => {
            return Err(Error::msg(format!(
                "type {other} can't cross the weir plugin boundary"
            )))
        }
    };
    Ok(wit::Column {
        data_type,
        values,
        validity: validity(array),
    })
}

/// Turns a record batch into named columns for the host.
pub(crate) fn batch_to_wit(batch: &RecordBatch) -> Result<wit::NewBatch> {
    let columns = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            Ok(wit::NamedColumn {
                name: field.name().clone(),
                column: column_to_wit(array.as_ref())?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(wit::NewBatch {
        num_rows: u32::try_from(batch.num_rows())
            .map_err(|_| Error::msg("a batch can hold at most 2^32-1 rows"))?,
        columns,
    })
}
