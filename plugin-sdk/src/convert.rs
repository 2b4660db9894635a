//! Arrow ↔ WIT on the guest side: the shared mapping of
//! `weir:plugin@0.2.0` (`weir-wit-arrow`, the same code the host runs),
//! moved to and from this crate's generated bindings.
//!
//! Received buffers become the arrays' buffers without a copy. A sent
//! column of [`STAGE_FROM`] bytes or more is staged: the host copies its
//! buffers out of this plugin's memory as they lie (`stage.column`), the
//! one copy of the way out; a smaller one is copied into the lists the
//! bindings lower.

use std::sync::Arc;

use arrow_array::{make_array, Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use crate::wit::weir::plugin::types as wit;
use crate::{Error, Result};

weir_wit_arrow::bind!(mod map = crate::wit::weir::plugin::types);

/// A schema from the host.
pub(crate) fn schema_from_wit(schema: wit::Schema) -> Result<Schema> {
    weir_wit_arrow::schema_from_wit(&map::schema_from_wit(schema))
        .map_err(|e| Error::msg(format!("the host sent a schema this SDK can't read: {e}")))
}

/// A schema for the host.
pub(crate) fn schema_to_wit(schema: &Schema) -> wit::Schema {
    map::schema_to_wit(weir_wit_arrow::schema_to_wit(schema))
}

/// A column's arrays from the host, as an arrow-rs array of `data_type`.
pub(crate) fn array_from_wit(column: wit::ColumnData, data_type: &DataType) -> Result<ArrayRef> {
    // SAFETY: the host lends only valid Arrow arrays — its readers' and
    // its own, and plugins' outputs, which it validated in full — and
    // `data_type` is the field the host declared for them. Validating
    // their values again here (UTF-8, offsets) cost as much as the copy
    // that brought them; their structure is still checked.
    let data = unsafe {
        weir_wit_arrow::array_from_wit_unchecked(map::column_from_wit(column), data_type)
    }
    .map_err(|e| Error::msg(e.to_string()))?;
    Ok(make_array(data))
}

/// `array` as a column called by `field`'s name, of `field`'s type.
pub(crate) fn column_to_wit(field: &Field, array: &dyn Array) -> Result<wit::Column> {
    if field.data_type() != array.data_type() {
        return Err(Error::msg(format!(
            "column {:?} is declared {} but holds {}",
            field.name(),
            field.data_type(),
            array.data_type()
        )));
    }
    let data = weir_wit_arrow::array_to_wit(&array.to_data())
        .map_err(|e| Error::msg(format!("column {:?}: {e}", field.name())))?;
    let data = if buffer_bytes(&data) >= STAGE_FROM {
        stage(&data).map_err(|e| Error::msg(format!("column {:?}: {e}", field.name())))?
    } else {
        map::column_to_wit(data)
    };
    Ok(wit::Column {
        field: map::schema_to_wit(weir_wit_arrow::field_to_wit(field)),
        data,
    })
}

/// Columns with at least this many bytes of buffers are staged (one copy,
/// by the host) rather than copied into the returned lists (two copies):
/// below it the extra call costs more than the copy it saves.
const STAGE_FROM: usize = 1024;

fn buffer_bytes(data: &weir_wit_arrow::ColumnData) -> usize {
    data.nodes
        .iter()
        .flat_map(|n| &n.buffers)
        .map(|b| b.len())
        .sum()
}

/// Hands `data`'s buffers to the host where they lie (`stage.column`),
/// and returns the column data that names them in an output.
fn stage(data: &weir_wit_arrow::ColumnData) -> std::result::Result<wit::ColumnData, String> {
    use crate::staging::{stage, types as b};
    let buffers: Vec<Vec<&[u8]>> = data
        .nodes
        .iter()
        .map(|n| n.buffers.iter().map(|b| b.as_slice()).collect())
        .collect();
    let nodes: Vec<b::ArrayNodeParam<'_>> = data
        .nodes
        .iter()
        .zip(&buffers)
        .map(|(n, buffers)| b::ArrayNodeParam {
            length: n.length,
            null_count: n.null_count,
            buffers,
            children: &n.children,
            dictionary: n.dictionary,
        })
        .collect();
    let number = stage::column(b::ColumnDataParam {
        nodes: &nodes,
        root: data.root,
    })?;
    Ok(wit::ColumnData {
        nodes: Vec::new(),
        root: number,
    })
}

/// A column a plugin adds by name: nullable, since whether it has nulls
/// may vary batch to batch and the node's schema must not.
pub(crate) fn named_column_to_wit(name: &str, array: &ArrayRef) -> Result<wit::Column> {
    column_to_wit(&Field::new(name, array.data_type().clone(), true), array)
}

/// A whole batch, each column with its field as the batch declares it.
pub(crate) fn batch_to_wit(batch: &RecordBatch) -> Result<wit::NewBatch> {
    let columns = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| column_to_wit(field, array.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    Ok(wit::NewBatch {
        num_rows: u32::try_from(batch.num_rows())
            .map_err(|_| Error::msg("an output batch has more than 2^32 rows"))?,
        columns,
    })
}

/// A schema from the host, shared.
pub(crate) fn schema_ref_from_wit(schema: wit::Schema) -> Result<Arc<Schema>> {
    schema_from_wit(schema).map(Arc::new)
}
