//! Turning what a plugin returns into record batches: validated in full,
//! assembled zero-copy from the input's untouched columns where possible.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatchOptions, UInt32Array};
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;

use super::convert::column_from_wit;
use crate::bindings::types as wit;

/// Assembles one plugin output. `input` is `None` for `finish`, where
/// derived outputs are not allowed.
pub fn assemble(
    input: Option<&RecordBatch>,
    output: wit::Output,
) -> Result<Vec<RecordBatch>, String> {
    match output {
        wit::Output::Derived(d) => {
            let input = input.ok_or("`finish` must return whole batches, not a derived output")?;
            derived(input, d).map(|b| vec![b])
        }
        wit::Output::Batch(b) => new_batch(b).map(|b| vec![b]),
        wit::Output::Ipc(bytes) => ipc(bytes),
    }
}

fn derived(input: &RecordBatch, d: wit::Derived) -> Result<RecordBatch, String> {
    let rows = input.num_rows();
    let schema = input.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = input.columns().to_vec();

    for name in &d.drop {
        let i = fields
            .iter()
            .position(|f| f.name() == name)
            .ok_or_else(|| {
                format!("asked to drop column {name:?}, which the input doesn't have")
            })?;
        fields.remove(i);
        columns.remove(i);
    }
    for (from, to) in &d.rename {
        let i = fields
            .iter()
            .position(|f| f.name() == from)
            .ok_or_else(|| {
                format!("asked to rename column {from:?}, which the input doesn't have")
            })?;
        fields[i] = Arc::new(fields[i].as_ref().clone().with_name(to));
    }
    for named in d.columns {
        let array = column_from_wit(named.column, rows)
            .map_err(|e| format!("column {:?}: {e}", named.name))?;
        // Nullable: whether a plugin's column has nulls varies batch to batch,
        // and the schema must not.
        let field = Arc::new(Field::new(&named.name, array.data_type().clone(), true));
        match fields.iter().position(|f| f.name() == &named.name) {
            Some(i) => {
                fields[i] = field;
                columns[i] = array;
            }
            None => {
                fields.push(field);
                columns.push(array);
            }
        }
    }
    if let Some(project) = &d.project {
        let mut picked_fields = Vec::with_capacity(project.len());
        let mut picked = Vec::with_capacity(project.len());
        for name in project {
            let i = fields
                .iter()
                .position(|f| f.name() == name)
                .ok_or_else(|| format!("asked to project column {name:?}, which doesn't exist"))?;
            picked_fields.push(fields[i].clone());
            picked.push(columns[i].clone());
        }
        fields = picked_fields;
        columns = picked;
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = fields.iter().find(|f| !seen.insert(f.name())) {
        return Err(format!(
            "column {:?} appears twice in the output",
            dup.name()
        ));
    }
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| e.to_string())?;

    match d.selection {
        None => Ok(batch),
        Some(wit::Selection::Indices(indices)) => {
            if let Some(w) = indices.windows(2).find(|w| w[0] >= w[1]) {
                return Err(format!(
                    "selection indexes must strictly increase; found {} then {}",
                    w[0], w[1]
                ));
            }
            if let Some(&bad) = indices.iter().find(|&&i| i as usize >= rows) {
                return Err(format!(
                    "selection index {bad} out of range: the batch has {rows} rows"
                ));
            }
            if indices.len() == rows {
                return Ok(batch);
            }
            take_record_batch(&batch, &UInt32Array::from(indices)).map_err(|e| e.to_string())
        }
        Some(wit::Selection::Mask(bits)) => {
            if bits.len() < rows.div_ceil(8) {
                return Err(format!(
                    "selection mask has {} bytes, {rows} rows need {}",
                    bits.len(),
                    rows.div_ceil(8)
                ));
            }
            let mask = BooleanArray::new(BooleanBuffer::new(Buffer::from_vec(bits), 0, rows), None);
            if mask.true_count() == rows {
                return Ok(batch);
            }
            filter_record_batch(&batch, &mask).map_err(|e| e.to_string())
        }
    }
}

fn new_batch(b: wit::NewBatch) -> Result<RecordBatch, String> {
    let rows = b.num_rows as usize;
    let mut fields = Vec::with_capacity(b.columns.len());
    let mut columns = Vec::with_capacity(b.columns.len());
    for named in b.columns {
        if fields.iter().any(|f: &Field| f.name() == &named.name) {
            return Err(format!("column {:?} appears twice", named.name));
        }
        let array = column_from_wit(named.column, rows)
            .map_err(|e| format!("column {:?}: {e}", named.name))?;
        fields.push(Field::new(&named.name, array.data_type().clone(), true));
        columns.push(array);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| e.to_string())
}

fn ipc(bytes: Vec<u8>) -> Result<Vec<RecordBatch>, String> {
    // arrow-rs's IPC reader can panic on a lying stream; a plugin's bytes
    // are untrusted like any file's.
    weir_core::contain::contained(|| read_ipc(bytes))
        .unwrap_or_else(|e| Err(format!("invalid Arrow IPC output: {e}")))
}

fn read_ipc(bytes: Vec<u8>) -> Result<Vec<RecordBatch>, String> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| format!("invalid Arrow IPC output: {e}"))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("invalid Arrow IPC output: {e}"))?;
        for column in batch.columns() {
            column
                .to_data()
                .validate_full()
                .map_err(|e| format!("invalid Arrow IPC output: {e}"))?;
        }
        out.push(batch);
    }
    Ok(out)
}

/// The longest column name a plugin may return, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// What every sink and downstream node relies on, checked once here so
/// that a bad batch is the plugin's failure (under its `on_error`), not a
/// sink's: rows need columns; names are non-empty, unique and at most
/// [`MAX_NAME_BYTES`]; a timestamp's zone is one readers know.
pub fn sound(batch: &RecordBatch) -> Result<(), String> {
    if batch.num_columns() == 0 && batch.num_rows() > 0 {
        return Err(format!("{} rows but no columns", batch.num_rows()));
    }
    let schema = batch.schema();
    for (i, field) in schema.fields().iter().enumerate() {
        let name = field.name();
        if name.is_empty() {
            return Err(format!("column {i} has an empty name"));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(format!(
                "column {i}'s name is {} bytes (at most {MAX_NAME_BYTES})",
                name.len()
            ));
        }
        if schema.fields()[..i].iter().any(|f| f.name() == name) {
            return Err(format!("column {name:?} appears twice"));
        }
        if let arrow::datatypes::DataType::Timestamp(_, Some(zone)) = field.data_type() {
            if zone.parse::<arrow::array::timezone::Tz>().is_err() {
                return Err(format!(
                    "column {name:?} is a timestamp in zone {zone:?}, which is not a time zone \
                     (an IANA name such as \"Europe/Paris\", or an offset such as \"+01:00\")"
                ));
            }
        }
    }
    Ok(())
}

/// Checks `batch` against the schema the plugin declared in `describe`:
/// same names and types in order, and no nulls in a non-nullable column.
pub fn conforms(batch: &RecordBatch, declared: &SchemaRef) -> Result<(), String> {
    let got = batch.schema();
    let names = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same = got.fields().len() == declared.fields().len()
        && got
            .fields()
            .iter()
            .zip(declared.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if !same {
        return Err(format!(
            "output schema [{}] differs from the schema the plugin declared [{}]",
            names(&got),
            names(declared)
        ));
    }
    for (field, column) in declared.fields().iter().zip(batch.columns()) {
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(format!(
                "column {:?} was declared non-nullable but has {} nulls",
                field.name(),
                column.null_count()
            ));
        }
    }
    Ok(())
}

/// Re-stamps a conforming batch with the declared schema, so nullability
/// and metadata downstream are exactly what `weir check` saw.
pub fn with_schema(batch: RecordBatch, declared: &SchemaRef) -> Result<RecordBatch, String> {
    RecordBatch::try_new_with_options(
        declared.clone(),
        batch.columns().to_vec(),
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn input() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("a", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "b",
                Arc::new(StringArray::from(vec!["x", "y", "z"])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn derived(d: wit::Derived) -> Result<RecordBatch, String> {
        assemble(Some(&input()), wit::Output::Derived(d)).map(|mut v| v.remove(0))
    }

    fn empty() -> wit::Derived {
        wit::Derived {
            selection: None,
            columns: vec![],
            drop: vec![],
            rename: vec![],
            project: None,
        }
    }

    #[test]
    fn untouched_columns_are_shared_not_copied() {
        let input = input();
        let out = assemble(Some(&input), wit::Output::Derived(empty()))
            .unwrap()
            .remove(0);
        assert!(Arc::ptr_eq(input.column(0), out.column(0)));
    }

    #[test]
    fn rename_then_project_reorders_without_data() {
        let out = derived(wit::Derived {
            rename: vec![("a".into(), "id".into())],
            project: Some(vec!["b".into(), "id".into()]),
            ..empty()
        })
        .unwrap();
        let names: Vec<_> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["b", "id"]);
    }

    #[test]
    fn mask_selection_keeps_set_bits_in_order() {
        let out = derived(wit::Derived {
            selection: Some(wit::Selection::Mask(vec![0b101])),
            ..empty()
        })
        .unwrap();
        assert_eq!(
            out.column(0).as_ref(),
            &Int64Array::from(vec![1, 3]) as &dyn Array
        );
    }

    #[test]
    fn batches_downstream_would_reject_are_refused_at_the_boundary() {
        let no_columns = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(3)),
        )
        .unwrap();
        assert_eq!(sound(&no_columns).unwrap_err(), "3 rows but no columns");
        let stamped = |zone: &str, name: &str| {
            let t = arrow::array::TimestampMicrosecondArray::from(vec![0]).with_timezone(zone);
            RecordBatch::try_from_iter([(name, Arc::new(t) as ArrayRef)]).unwrap()
        };
        assert!(sound(&stamped("Europe/Paris", "t")).is_ok());
        assert!(sound(&stamped("+01:00", "t")).is_ok());
        let err = sound(&stamped("Mars/Olympus", "t")).unwrap_err();
        assert!(err.contains("not a time zone"), "{err}");
        assert!(sound(&stamped("UTC", ""))
            .unwrap_err()
            .contains("empty name"));
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(sound(&stamped("UTC", &long))
            .unwrap_err()
            .contains("at most 1024"));
    }

    #[test]
    fn duplicate_output_names_are_rejected() {
        let err = derived(wit::Derived {
            rename: vec![("a".into(), "b".into())],
            ..empty()
        })
        .unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn finish_may_not_return_a_derived_output() {
        let err = assemble(None, wit::Output::Derived(empty())).unwrap_err();
        assert!(err.contains("finish"), "{err}");
    }
}
