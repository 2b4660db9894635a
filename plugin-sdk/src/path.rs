//! Struct fields by path: `customer.address.city` names field `city` of
//! struct `address` of column `customer` — unless a column is called
//! `customer.address.city`, which wins (CSV headers may hold dots).

use arrow_array::cast::AsArray;
use arrow_array::{make_array, Array, ArrayRef};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, FieldRef, Schema};

use crate::{Error, Result};

/// The field `name` names in `schema`: a column, or a struct field by
/// path. `None` when neither exists.
pub fn field(schema: &Schema, name: &str) -> Option<FieldRef> {
    if let Ok(i) = schema.index_of(name) {
        return Some(schema.fields()[i].clone());
    }
    let mut parts = name.split('.');
    let top = schema.index_of(parts.next()?).ok()?;
    let mut field = schema.fields()[top].clone();
    for part in parts {
        let DataType::Struct(children) = field.data_type() else {
            return None;
        };
        field = children.iter().find(|f| f.name() == part)?.clone();
    }
    Some(field)
}

/// Field `name` of struct array `parent`: null wherever the struct is,
/// whatever the child holds there.
pub fn child(parent: &ArrayRef, name: &str) -> Result<ArrayRef> {
    let parent = parent.as_struct_opt().ok_or_else(|| {
        Error::msg(format!(
            "{} is not a struct, so it has no field {name:?}",
            parent.data_type()
        ))
    })?;
    let child = parent
        .column_by_name(name)
        .ok_or_else(|| Error::msg(format!("the struct has no field {name:?}")))?;
    let Some(outer) = parent.nulls() else {
        return Ok(child.clone());
    };
    let nulls = NullBuffer::union(Some(outer), child.nulls());
    let data = child.to_data().into_builder().nulls(nulls).build()?;
    Ok(make_array(data))
}
