//! Turning what a plugin returns into record batches: validated in full,
//! assembled zero-copy from the input's untouched columns where possible.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanBufferBuilder, RecordBatchOptions};
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;

use super::convert::column_from_wit;
use crate::bindings::types as wit;
use crate::bindings::v0_2::{map, types as wit2};
use crate::rows::Rows;
use crate::stage::StagedColumns;

/// Assembles one weir:plugin@0.1.0 output. `input` is `None` for
/// `finish`, where derived outputs are not allowed.
pub fn assemble(input: Option<&Rows>, output: wit::Output) -> Result<Vec<Rows>, String> {
    match output {
        wit::Output::Derived(d) => {
            let input = input.ok_or(FINISH_DERIVED)?;
            let rows = input.num_rows();
            let derivation = Derivation {
                selection: d.selection.map(|s| match s {
                    wit::Selection::Indices(i) => Selection::Indices(i),
                    wit::Selection::Mask(m) => Selection::Mask(m),
                }),
                columns: d
                    .columns
                    .into_iter()
                    .map(|named| lift_v0_1(named, rows))
                    .collect::<Result<_, _>>()?,
                drop: d.drop,
                rename: d.rename,
                project: d.project,
            };
            derived(input, derivation).map(|b| vec![b])
        }
        wit::Output::Batch(b) => {
            let rows = b.num_rows as usize;
            let columns = b
                .columns
                .into_iter()
                .map(|named| lift_v0_1(named, rows))
                .collect::<Result<_, _>>()?;
            new_batch(rows, columns).map(|b| vec![Rows::from(b)])
        }
        wit::Output::Ipc(bytes) => ipc(bytes).map(|b| b.into_iter().map(Rows::from).collect()),
    }
}

/// Assembles one weir:plugin@0.2.0 output's data (the caller checked its
/// port); `staged` are the columns the call staged, which its returned
/// columns may name.
pub fn assemble_v0_2(
    input: Option<&Rows>,
    data: wit2::OutputData,
    staged: &StagedColumns,
) -> Result<Vec<Rows>, String> {
    match data {
        wit2::OutputData::Derived(d) => {
            let input = input.ok_or(FINISH_DERIVED)?;
            let rows = input.num_rows();
            let derivation = Derivation {
                selection: d.selection.map(|s| match s {
                    wit2::Selection::Indices(i) => Selection::Indices(i),
                    wit2::Selection::Mask(m) => Selection::Mask(m),
                }),
                columns: d
                    .columns
                    .into_iter()
                    .map(|c| lift_v0_2(c, rows, staged))
                    .collect::<Result<_, _>>()?,
                drop: d.drop,
                rename: d.rename,
                project: d.project,
            };
            derived(input, derivation).map(|b| vec![b])
        }
        wit2::OutputData::Batch(b) => {
            let rows = b.num_rows as usize;
            let columns = b
                .columns
                .into_iter()
                .map(|c| lift_v0_2(c, rows, staged))
                .collect::<Result<_, _>>()?;
            new_batch(rows, columns).map(|b| vec![Rows::from(b)])
        }
        wit2::OutputData::Ipc(bytes) => ipc(bytes).map(|b| b.into_iter().map(Rows::from).collect()),
    }
}

const FINISH_DERIVED: &str = "`finish` must return whole batches, not a derived output";

/// Rows to keep, as either contract version spells it.
enum Selection {
    Indices(Vec<u32>),
    Mask(Vec<u8>),
}

/// A derived output with its columns already lifted into Arrow.
struct Derivation {
    selection: Option<Selection>,
    columns: Vec<(Field, ArrayRef)>,
    drop: Vec<String>,
    rename: Vec<(String, String)>,
    project: Option<Vec<String>>,
}

/// A 0.1 column: typed values, named; always nullable (whether a plugin's
/// column has nulls varies batch to batch, and the schema must not).
fn lift_v0_1(named: wit::NamedColumn, rows: usize) -> Result<(Field, ArrayRef), String> {
    let array =
        column_from_wit(named.column, rows).map_err(|e| format!("column {:?}: {e}", named.name))?;
    Ok((
        Field::new(&named.name, array.data_type().clone(), true),
        array,
    ))
}

/// A 0.2 column: its field (one root of a type tree) and its array nodes
/// (or, with no nodes, the staged column `root` names), validated in full
/// against that field's type.
fn lift_v0_2(
    column: wit2::Column,
    rows: usize,
    staged: &StagedColumns,
) -> Result<(Field, ArrayRef), String> {
    let schema = weir_wit_arrow::schema_from_wit(&map::schema_from_wit(column.field))
        .map_err(|e| format!("a returned column's field: {e}"))?;
    let [field] = schema.fields().iter().collect::<Vec<_>>()[..] else {
        return Err(format!(
            "a returned column's field has {} roots; it must have exactly one",
            schema.fields().len()
        ));
    };
    let field = field.as_ref().clone();
    let nodes = match column.data {
        wit2::ColumnData { nodes, root } if nodes.is_empty() => staged.get(root),
        data => Ok(map::column_from_wit(data)),
    }
    .map_err(|e| format!("column {:?}: {e}", field.name()))?;
    let data = weir_wit_arrow::array_from_wit(nodes, field.data_type())
        .map_err(|e| format!("column {:?}: {e}", field.name()))?;
    let array = arrow::array::make_array(data);
    if array.len() != rows {
        return Err(format!(
            "column {:?} has {} values, the batch has {rows} rows",
            field.name(),
            array.len()
        ));
    }
    if !field.is_nullable() && array.null_count() > 0 {
        return Err(format!(
            "column {:?} is declared non-nullable but has {} nulls",
            field.name(),
            array.null_count()
        ));
    }
    Ok((field, array))
}

/// Where a derived output's column comes from.
enum Source {
    /// The input's column at this index (under the input's pending
    /// selection, if any).
    Input(usize),
    /// A column the plugin returned, one value per input row.
    Returned(ArrayRef),
}

/// Assembles a derived output. Untouched columns are the input's, shared;
/// the plugin's selection stays pending (composed with the input's), so
/// only the columns someone downstream reads get filtered — unless the
/// plugin returned columns, which have one value per kept input row: then
/// the input's surviving columns are filtered now (only those).
fn derived(input: &Rows, d: Derivation) -> Result<Rows, String> {
    let schema = input.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut columns: Vec<Source> = (0..fields.len()).map(Source::Input).collect();

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
    for (field, array) in d.columns {
        let field = Arc::new(field);
        match fields.iter().position(|f| f.name() == field.name()) {
            Some(i) => {
                fields[i] = field;
                columns[i] = Source::Returned(array);
            }
            None => {
                fields.push(field);
                columns.push(Source::Returned(array));
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
            picked.push(match &columns[i] {
                Source::Input(at) => Source::Input(*at),
                Source::Returned(array) => Source::Returned(array.clone()),
            });
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
    // With no returned column, the output keeps the input's rows as they
    // are: its base batch and pending selection.
    let over_base =
        input.is_deferred() && !columns.iter().any(|c| matches!(c, Source::Returned(_)));
    let arrays = columns
        .into_iter()
        .map(|c| match c {
            Source::Returned(array) => Ok(array),
            Source::Input(i) if over_base => Ok(input.base().column(i).clone()),
            Source::Input(i) => input
                .column(i)
                .unwrap_or_else(|| Ok(input.base().column(i).clone()))
                .map_err(|e| e.to_string()),
        })
        .collect::<Result<Vec<_>, String>>()?;
    let rows = match over_base {
        true => input.base().num_rows(),
        false => input.num_rows(),
    };
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| e.to_string())?;
    let assembled = match over_base {
        true => input.with_base(batch),
        false => Rows::from(batch),
    };
    select(assembled, d.selection)
}

/// Keeps the rows `selection` names, as a pending selection.
fn select(rows: Rows, selection: Option<Selection>) -> Result<Rows, String> {
    let count = rows.num_rows();
    let mask = match selection {
        None => return Ok(rows),
        Some(Selection::Indices(indices)) => {
            if let Some(w) = indices.windows(2).find(|w| w[0] >= w[1]) {
                return Err(format!(
                    "selection indexes must strictly increase; found {} then {}",
                    w[0], w[1]
                ));
            }
            if let Some(&bad) = indices.iter().find(|&&i| i as usize >= count) {
                return Err(format!(
                    "selection index {bad} out of range: the batch has {count} rows"
                ));
            }
            let mut mask = BooleanBufferBuilder::new(count);
            mask.append_n(count, false);
            for i in indices {
                mask.set_bit(i as usize, true);
            }
            mask.finish()
        }
        Some(Selection::Mask(bits)) => {
            if bits.len() < count.div_ceil(8) {
                return Err(format!(
                    "selection mask has {} bytes, {count} rows need {}",
                    bits.len(),
                    count.div_ceil(8)
                ));
            }
            BooleanBuffer::new(Buffer::from_vec(bits), 0, count)
        }
    };
    Ok(rows.keep(mask))
}

fn new_batch(rows: usize, columns: Vec<(Field, ArrayRef)>) -> Result<RecordBatch, String> {
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    for (field, array) in columns {
        if fields.iter().any(|f: &Field| f.name() == field.name()) {
            return Err(format!("column {:?} appears twice", field.name()));
        }
        fields.push(field);
        arrays.push(array);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
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
pub fn sound(rows: &Rows) -> Result<(), String> {
    if rows.num_columns() == 0 && rows.num_rows() > 0 {
        return Err(format!("{} rows but no columns", rows.num_rows()));
    }
    let schema = rows.schema();
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
pub fn conforms(rows: &Rows, declared: &SchemaRef) -> Result<(), String> {
    let got = rows.schema();
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
    for (i, field) in declared.fields().iter().enumerate() {
        let nulls = rows.null_count(i);
        if !field.is_nullable() && nulls > 0 {
            return Err(format!(
                "column {:?} was declared non-nullable but has {nulls} nulls",
                field.name(),
            ));
        }
    }
    Ok(())
}

/// Re-stamps conforming rows with the declared schema, so nullability and
/// metadata downstream are exactly what `weir check` saw.
pub fn with_schema(rows: Rows, declared: &SchemaRef) -> Result<Rows, String> {
    let stamp = |batch: &RecordBatch| {
        RecordBatch::try_new_with_options(
            declared.clone(),
            batch.columns().to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
    };
    match stamp(rows.base()) {
        Ok(base) => Ok(rows.with_base(base)),
        // A column declared non-nullable may have nulls in rows the
        // selection drops (`conforms` counted only the kept ones): those
        // rows go now.
        Err(_) if rows.is_deferred() => {
            let whole = rows.to_batch().map_err(|e| e.to_string())?;
            stamp(&whole).map(Rows::from).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
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

    fn derive(d: wit::Derived) -> Result<RecordBatch, String> {
        assemble(Some(&Rows::from(input())), wit::Output::Derived(d))
            .map(|mut v| v.remove(0).to_batch().unwrap())
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
        let out = assemble(
            Some(&Rows::from(input.clone())),
            wit::Output::Derived(empty()),
        )
        .unwrap()
        .remove(0)
        .to_batch()
        .unwrap();
        assert!(Arc::ptr_eq(input.column(0), out.column(0)));
    }

    #[test]
    fn rename_then_project_reorders_without_data() {
        let out = derive(wit::Derived {
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
        let out = derive(wit::Derived {
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
        assert_eq!(
            sound(&Rows::from(no_columns)).unwrap_err(),
            "3 rows but no columns"
        );
        let stamped = |zone: &str, name: &str| {
            let t = arrow::array::TimestampMicrosecondArray::from(vec![0]).with_timezone(zone);
            Rows::from(RecordBatch::try_from_iter([(name, Arc::new(t) as ArrayRef)]).unwrap())
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
        let err = derive(wit::Derived {
            rename: vec![("a".into(), "b".into())],
            ..empty()
        })
        .unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
    }

    /// The input as it arrives behind a filter that kept its first and
    /// last rows (a=1, a=3).
    fn filtered_input() -> Rows {
        Rows::selected(input(), BooleanBuffer::from_iter([true, false, true]))
    }

    #[test]
    fn a_selection_on_filtered_input_stays_pending_over_the_same_batch() {
        let input = filtered_input();
        let out = assemble(
            Some(&input),
            wit::Output::Derived(wit::Derived {
                selection: Some(wit::Selection::Indices(vec![1])),
                ..empty()
            }),
        )
        .unwrap()
        .remove(0);
        assert!(out.is_deferred());
        assert!(Arc::ptr_eq(out.base().column(1), input.base().column(1)));
        let batch = out.to_batch().unwrap();
        assert_eq!(
            batch.column(0).as_ref(),
            &Int64Array::from(vec![3]) as &dyn Array
        );
        assert_eq!(
            batch.column(1).as_ref(),
            &StringArray::from(vec!["z"]) as &dyn Array
        );
    }

    #[test]
    fn returned_columns_on_filtered_input_line_up_with_its_kept_rows() {
        let out = assemble(
            Some(&filtered_input()),
            wit::Output::Derived(wit::Derived {
                columns: vec![wit::NamedColumn {
                    name: "c".into(),
                    column: wit::Column {
                        data_type: wit::DataType::Int64,
                        values: wit::Values::S64(vec![10, 30]),
                        validity: None,
                    },
                }],
                drop: vec!["b".into()],
                ..empty()
            }),
        )
        .unwrap()
        .remove(0);
        let batch = out.to_batch().unwrap();
        assert_eq!(
            batch.column(0).as_ref(),
            &Int64Array::from(vec![1, 3]) as &dyn Array
        );
        assert_eq!(
            batch.column(1).as_ref(),
            &Int64Array::from(vec![10, 30]) as &dyn Array
        );
    }

    #[test]
    fn nulls_only_in_dropped_rows_do_not_break_a_non_nullable_declaration() {
        let base = RecordBatch::try_from_iter([(
            "a",
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
        )])
        .unwrap();
        let declared = Arc::new(Schema::new(vec![Field::new(
            "a",
            arrow::datatypes::DataType::Int64,
            false,
        )]));
        let kept = Rows::selected(base.clone(), BooleanBuffer::from_iter([true, false, true]));
        conforms(&kept, &declared).unwrap();
        let stamped = with_schema(kept, &declared).unwrap().to_batch().unwrap();
        assert_eq!(stamped.schema(), declared);
        assert_eq!(stamped.num_rows(), 2);
        let all = Rows::from(base);
        let err = conforms(&all, &declared).unwrap_err();
        assert!(err.contains("has 1 nulls"), "{err}");
    }

    #[test]
    fn finish_may_not_return_a_derived_output() {
        let err = assemble(None, wit::Output::Derived(empty())).unwrap_err();
        assert!(err.contains("finish"), "{err}");
    }
}
