//! Nested values as JSON text, for the sinks whose format has no nested
//! type: a CSV cell, a SQLite column, a PostgreSQL `jsonb`.
//!
//! The encoding is arrow-json's, the one the ndjson sink writes, so a value
//! reads the same whichever sink wrote it: structs and maps as objects,
//! lists as arrays, decimals as exact numbers (`12.50`, never a float),
//! timestamps as ISO 8601 strings, binary as hex, nulls inside a value
//! written out (`{"id": 1, "note": null}`). A null value stays a null cell.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use arrow::error::ArrowError;
use arrow::json::writer::{make_encoder, EncoderOptions};

/// Whether a column of type `t` is written as JSON text by the sinks
/// without nested types.
pub(crate) fn is_nested(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, values) => is_nested(values),
        other => other.is_nested(),
    }
}

/// Each value of `array` (of `field`) as JSON text; nulls stay null.
pub(crate) fn json_text(field: &FieldRef, array: &dyn Array) -> Result<ArrayRef, ArrowError> {
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let mut encoder = make_encoder(field, array, &options).map_err(|e| {
        ArrowError::InvalidArgumentError(format!(
            "column {:?} ({}) can't be written as JSON: {e}",
            field.name(),
            field.data_type()
        ))
    })?;
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 16);
    let mut text = Vec::new();
    for row in 0..array.len() {
        if encoder.is_null(row) {
            out.append_null();
            continue;
        }
        text.clear();
        encoder.encode(row, &mut text);
        // arrow-json writes UTF-8 (strings escaped, binary as hex).
        out.append_value(String::from_utf8_lossy(&text));
    }
    Ok(Arc::new(out.finish()))
}

/// `batch` with every nested column (list, struct, map, union, and
/// dictionaries of them) replaced by its JSON text, under the same name.
/// Other columns are untouched (the same arrays, not copies).
pub(crate) fn nested_as_json(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| is_nested(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if is_nested(field.data_type()) {
            fields.push(Arc::new(Field::new(
                field.name(),
                DataType::Utf8,
                field.is_nullable(),
            )));
            columns.push(json_text(field, column.as_ref())?);
        } else {
            fields.push(field.clone());
            columns.push(column.clone());
        }
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    RecordBatch::try_new(Arc::new(schema), columns)
}

/// `batch` for a sink of flat columns: nested columns as their JSON text
/// ([`nested_as_json`]), and dictionary columns as their values — a sink
/// formatting values one by one must not see the dictionary (a dictionary
/// of binary would otherwise be written as its text form).
#[cfg(any(feature = "sqlite", test))]
pub(crate) fn flat_values(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let batch = nested_as_json(batch)?;
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Dictionary(..)))
    {
        return Ok(batch);
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Dictionary(_, values) => {
                columns.push(arrow::compute::cast(column, values)?);
                fields.push(Arc::new(
                    field.as_ref().clone().with_data_type((**values).clone()),
                ));
            }
            _ => {
                columns.push(column.clone());
                fields.push(field.clone());
            }
        }
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    RecordBatch::try_new(Arc::new(schema), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        AsArray, Decimal128Array, Int64Array, Int64Builder, ListBuilder, MapBuilder, StringArray,
        StructArray,
    };

    fn texts(array: &ArrayRef) -> Vec<Option<String>> {
        array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[test]
    fn a_struct_with_a_null_field_and_a_null_struct_read_as_json_and_sql_null() {
        let ids = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])) as ArrayRef;
        let names = Arc::new(StringArray::from(vec![Some("a\"b"), Some("c"), None])) as ArrayRef;
        let customer = StructArray::try_new(
            vec![
                Arc::new(Field::new("id", DataType::Int64, true)),
                Arc::new(Field::new("name", DataType::Utf8, true)),
            ]
            .into(),
            vec![ids, names],
            Some(vec![true, true, false].into()),
        )
        .unwrap();
        let field = Arc::new(Field::new("customer", customer.data_type().clone(), true));
        let text = json_text(&field, &customer).unwrap();
        assert_eq!(
            texts(&text),
            vec![
                Some(r#"{"id":1,"name":"a\"b"}"#.to_string()),
                Some(r#"{"id":null,"name":"c"}"#.to_string()),
                None
            ]
        );
    }

    #[test]
    fn lists_maps_and_decimals_are_exact_json() {
        let mut lists = ListBuilder::new(Int64Builder::new());
        lists.append_value([Some(1), None, Some(3)]);
        lists.append_value([]);
        lists.append_null();
        let lists = Arc::new(lists.finish()) as ArrayRef;
        let amounts = Arc::new(
            Decimal128Array::from(vec![Some(1250), Some(-5), None])
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ) as ArrayRef;
        let mut tags = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        tags.keys().append_value("x");
        tags.values().append_value(7);
        tags.append(true).unwrap();
        tags.append(true).unwrap();
        tags.append(false).unwrap();
        let tags = Arc::new(tags.finish()) as ArrayRef;
        let schema = Schema::new(vec![
            Field::new("items", lists.data_type().clone(), true),
            Field::new("amount", amounts.data_type().clone(), true),
            Field::new("tags", tags.data_type().clone(), true),
        ]);
        let batch =
            RecordBatch::try_new(Arc::new(schema), vec![lists, amounts.clone(), tags]).unwrap();
        let out = nested_as_json(&batch).unwrap();
        assert_eq!(
            texts(out.column(0)),
            vec![Some("[1,null,3]".into()), Some("[]".into()), None]
        );
        assert!(
            Arc::ptr_eq(out.column(1), &amounts),
            "a decimal column is not nested: kept as it is"
        );
        assert_eq!(
            texts(out.column(2)),
            vec![Some(r#"{"x":7}"#.into()), Some("{}".into()), None]
        );
        assert_eq!(out.schema().field(0).data_type(), &DataType::Utf8);
    }

    #[test]
    fn a_dictionary_of_binary_is_unpacked_to_its_bytes() {
        use arrow::array::{BinaryArray, DictionaryArray, Int8Array};
        let values = Arc::new(BinaryArray::from(vec![&b"\x00\xff"[..], b"z"])) as ArrayRef;
        let dict = DictionaryArray::new(Int8Array::from(vec![Some(1), None, Some(0)]), values);
        let schema = Schema::new(vec![Field::new("b", dict.data_type().clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(dict)]).unwrap();
        let out = flat_values(&batch).unwrap();
        let bytes = out.column(0).as_binary::<i32>();
        assert_eq!(
            bytes.iter().collect::<Vec<_>>(),
            vec![Some(&b"z"[..]), None, Some(&b"\x00\xff"[..])]
        );
    }

    #[test]
    fn decimals_inside_a_list_stay_exact() {
        let values = Decimal128Array::from(vec![1999, 1])
            .with_precision_and_scale(38, 2)
            .unwrap();
        let field = Arc::new(Field::new("price", values.data_type().clone(), true));
        let list = arrow::array::ListArray::try_new(
            field.clone(),
            arrow::buffer::OffsetBuffer::new(vec![0, 2].into()),
            Arc::new(values),
            None,
        )
        .unwrap();
        let outer = Arc::new(Field::new("prices", list.data_type().clone(), true));
        assert_eq!(
            texts(&json_text(&outer, &list).unwrap()),
            vec![Some("[19.99,0.01]".into())]
        );
    }
}
