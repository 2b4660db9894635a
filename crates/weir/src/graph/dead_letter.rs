//! The schema of a transform's `NODE.dead_letter` output: part of the
//! graph (a sink reading it is checked against it before any data moves).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Columns a dead-letter batch adds to the failing input rows.
pub const ERROR_COLUMN: &str = "_error";
/// The node that failed.
pub const NODE_COLUMN: &str = "_node";
/// When it failed.
pub const TIME_COLUMN: &str = "_failed_at";

/// The schema of `NODE.dead_letter` for a node whose input is `input`.
pub fn dead_letter_schema(input: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = input.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(ERROR_COLUMN, DataType::Utf8, false)));
    fields.push(Arc::new(Field::new(NODE_COLUMN, DataType::Utf8, false)));
    fields.push(Arc::new(Field::new(
        TIME_COLUMN,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )));
    Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
}
