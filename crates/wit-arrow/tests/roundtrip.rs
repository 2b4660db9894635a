//! Every Arrow type crosses the mapping and comes back equal; malformed
//! trees and arrays are refused with an error naming the field.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::*;
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::*;
use arrow::json::ReaderBuilder;
use arrow::record_batch::RecordBatch;
use weir_wit_arrow::{
    array_from_wit, array_to_wit, schema_from_wit, schema_to_wit, ColumnData, DataType as W,
    FieldNode, Schema as WitSchema,
};

/// Columns arrow-json can build from text: the nested shapes a JSON API
/// returns, with nulls at every level.
fn json_batch() -> RecordBatch {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Int64, true),
            ]
            .into(),
        ),
        false,
    );
    let item = Field::new(
        "item",
        DataType::Struct(
            vec![
                Field::new("sku", DataType::Utf8, true),
                Field::new("price", DataType::Decimal128(12, 2), true),
                Field::new("attrs", DataType::Map(Arc::new(entries), false), true),
            ]
            .into(),
        ),
        true,
    );
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::LargeUtf8, true),
        Field::new("view", DataType::Utf8View, true),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("big", DataType::Decimal256(40, 4), true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/Berlin".into())),
            true,
        ),
        Field::new("day", DataType::Date64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("nothing", DataType::Null, true),
        Field::new(
            "customer",
            DataType::Struct(
                vec![
                    Field::new("country", DataType::Utf8, true),
                    Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
                ]
                .into(),
            ),
            true,
        ),
        Field::new("items", DataType::List(Arc::new(item)), true),
        Field::new(
            "scores",
            DataType::LargeList(Arc::new(Field::new("item", DataType::Float64, true))),
            true,
        ),
    ]);
    let text = r#"
{"id": 1, "name": "Ann", "view": "a string longer than twelve bytes", "amount": "12.50", "big": "123456789012345678901234567890.1234", "at": "2026-01-02T03:04:05Z", "day": "2026-01-02", "flag": true, "customer": {"country": "DE", "tags": ["a", null, "b"]}, "items": [{"sku": "x", "price": "1.25", "attrs": {"size": 3, "w": null}}, null, {"sku": null, "price": null, "attrs": null}], "scores": [1.5, null]}
{"id": 2, "name": null, "view": "short", "amount": null, "big": null, "at": null, "day": null, "flag": null, "customer": null, "items": null, "scores": null}
{"id": 3, "name": "", "view": null, "amount": "-0.01", "big": "-1", "at": "1970-01-01T00:00:00Z", "day": "1969-12-31", "flag": false, "customer": {"country": null, "tags": []}, "items": [], "scores": []}
"#;
    let mut reader = ReaderBuilder::new(Arc::new(schema))
        .build(Cursor::new(text))
        .expect("reader");
    reader.next().expect("a batch").expect("valid JSON")
}

/// Columns arrow-json doesn't read: built directly.
fn built_columns() -> Vec<(&'static str, ArrayRef)> {
    let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(3), Some(4)]));
    let strings: ArrayRef = Arc::new(StringArray::from(vec![
        Some("a"),
        None,
        Some("c"),
        Some("d"),
    ]));
    let union_fields = UnionFields::try_new(
        [3, 7],
        [
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ],
    )
    .expect("fields");
    let sparse = UnionArray::try_new(
        union_fields.clone(),
        ScalarBuffer::from(vec![3i8, 7, 3, 7]),
        None,
        vec![ints.clone(), strings.clone()],
    )
    .expect("sparse union");
    let dense = UnionArray::try_new(
        union_fields,
        ScalarBuffer::from(vec![3i8, 7, 7, 3]),
        Some(ScalarBuffer::from(vec![0i32, 0, 1, 1])),
        vec![
            Arc::new(Int32Array::from(vec![10, 20])),
            Arc::new(StringArray::from(vec!["x", "y"])),
        ],
    )
    .expect("dense union");
    let list_view = ListViewArray::try_new(
        Arc::new(Field::new("item", DataType::Int32, true)),
        ScalarBuffer::from(vec![2i32, 0, 1, 0]),
        ScalarBuffer::from(vec![2i32, 1, 0, 4]),
        ints.clone(),
        Some(NullBuffer::from(vec![true, true, false, true])),
    )
    .expect("list view");
    let fixed_list = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Int32, true)),
        2,
        Arc::new(Int32Array::from(vec![Some(1), None, Some(3), Some(4)])),
        Some(NullBuffer::from(vec![true, false])),
    )
    .expect("fixed-size list");
    let run_ends = Int32Array::from(vec![2, 3, 4]);
    let ree = RunArray::<Int32Type>::try_new(&run_ends, &StringArray::from(vec!["a", "b", "c"]))
        .expect("run array");
    let dict: DictionaryArray<Int8Type> = vec![Some("de"), None, Some("fr"), Some("de")]
        .into_iter()
        .collect();
    let large_dict: DictionaryArray<UInt16Type> = DictionaryArray::try_new(
        UInt16Array::from(vec![1, 0, 1, 1]),
        Arc::new(LargeStringArray::from(vec!["one", "two"])),
    )
    .expect("dictionary");
    let f16 = PrimitiveArray::<Float16Type>::new(
        ScalarBuffer::new(Buffer::from_vec(vec![0x3c00u16, 0x4000, 0, 0x7c00]), 0, 4),
        Some(NullBuffer::from(vec![true, true, false, true])),
    );
    vec![
        ("sparse", Arc::new(sparse)),
        ("dense", Arc::new(dense)),
        ("list_view", Arc::new(list_view)),
        ("fixed_list", Arc::new(fixed_list)),
        ("ree", Arc::new(ree)),
        ("dict", Arc::new(dict)),
        ("large_dict", Arc::new(large_dict)),
        ("f16", Arc::new(f16)),
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-1), None, Some(3), Some(4)])),
        ),
        ("u64", Arc::new(UInt64Array::from(vec![u64::MAX, 0, 1, 2]))),
        (
            "f32",
            Arc::new(Float32Array::from(vec![
                Some(1.5),
                None,
                Some(f32::NAN),
                Some(0.0),
            ])),
        ),
        (
            "bin",
            Arc::new(BinaryArray::from_opt_vec(vec![
                Some(b"\0\xff"),
                None,
                Some(b""),
                Some(b"z"),
            ])),
        ),
        (
            "large_bin",
            Arc::new(LargeBinaryArray::from_opt_vec(vec![
                Some(b"a"),
                None,
                Some(b"b"),
                None,
            ])),
        ),
        (
            "bin_view",
            Arc::new(BinaryViewArray::from(vec![
                &b"longer than twelve bytes"[..],
                b"",
                b"x",
                b"y",
            ])),
        ),
        (
            "fixed_bin",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some(*b"ab"), None, Some(*b"cd"), Some(*b"ef")].into_iter(),
                    2,
                )
                .expect("fsb"),
            ),
        ),
        (
            "time32",
            Arc::new(Time32MillisecondArray::from(vec![
                Some(1),
                None,
                Some(86_399_999),
                Some(0),
            ])),
        ),
        (
            "time64",
            Arc::new(Time64NanosecondArray::from(vec![1i64, 2, 3, 4])),
        ),
        (
            "dur",
            Arc::new(DurationSecondArray::from(vec![
                Some(-5),
                None,
                Some(0),
                Some(9),
            ])),
        ),
        (
            "ym",
            Arc::new(IntervalYearMonthArray::from(vec![
                Some(13),
                None,
                Some(-1),
                Some(0),
            ])),
        ),
        (
            "dt",
            Arc::new(IntervalDayTimeArray::from(vec![
                IntervalDayTime::new(1, 2);
                4
            ])),
        ),
        (
            "mdn",
            Arc::new(IntervalMonthDayNanoArray::from(
                vec![IntervalMonthDayNano::new(1, 2, 3); 4],
            )),
        ),
        (
            "d32",
            Arc::new(
                Decimal32Array::from(vec![Some(12345), None, Some(-1), Some(0)])
                    .with_precision_and_scale(9, 2)
                    .expect("d32"),
            ),
        ),
        (
            "d64",
            Arc::new(
                Decimal64Array::from(vec![Some(12345), None, Some(-1), Some(0)])
                    .with_precision_and_scale(18, -2)
                    .expect("d64"),
            ),
        ),
        (
            "date32",
            Arc::new(Date32Array::from(vec![
                Some(0),
                None,
                Some(-1),
                Some(20000),
            ])),
        ),
        ("null", Arc::new(NullArray::new(4))),
    ]
}

fn every_column() -> Vec<(String, ArrayRef)> {
    let batch = json_batch();
    let mut columns: Vec<(String, ArrayRef)> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| (f.name().clone(), c.clone()))
        .collect();
    columns.extend(built_columns().into_iter().map(|(n, c)| (n.to_string(), c)));
    columns
}

fn round_trip(array: &dyn Array) -> ArrayData {
    let column = array_to_wit(&array.to_data()).expect("encodes");
    array_from_wit(column, array.data_type()).expect("decodes")
}

#[test]
fn every_type_round_trips_through_the_type_tree() {
    let fields: Vec<Field> = every_column()
        .iter()
        .map(|(name, c)| Field::new(name, c.data_type().clone(), true))
        .chain([
            Field::new_dictionary("ordered", DataType::Int32, DataType::Utf8, false)
                .with_dict_is_ordered(true)
                .with_metadata(std::collections::HashMap::from([(
                    "unit".to_string(),
                    "EUR".to_string(),
                )])),
        ])
        .collect();
    let schema = Schema::new(fields).with_metadata(std::collections::HashMap::from([(
        "origin".to_string(),
        "test".to_string(),
    )]));
    let tree = schema_to_wit(&schema);
    assert_eq!(schema_from_wit(&tree).expect("decodes"), schema);
    assert!(
        tree.nodes.len() > schema.fields().len(),
        "nested types add nodes"
    );
}

#[test]
fn every_array_round_trips_equal() {
    for (name, column) in every_column() {
        assert_eq!(round_trip(&column), column.to_data(), "column {name}");
    }
}

#[test]
fn a_slice_arrives_as_its_own_rows_starting_at_zero() {
    for (name, column) in every_column() {
        if column.len() < 3 {
            continue;
        }
        let slice = column.slice(1, 2);
        let encoded = array_to_wit(&slice.to_data()).expect("encodes");
        let back = array_from_wit(encoded, slice.data_type()).expect("decodes");
        assert_eq!(back.offset(), 0, "column {name}");
        assert_eq!(make_array(back).as_ref(), slice.as_ref(), "column {name}");
    }
}

#[test]
fn an_unsliced_column_hands_over_its_buffers_without_copying() {
    let column = Int64Array::from(vec![1, 2, 3]);
    let encoded = array_to_wit(&column.to_data()).expect("encodes");
    let values = &encoded.nodes[0].buffers[1];
    assert_eq!(values.as_ptr(), column.values().inner().as_ptr());
    assert!(
        encoded.nodes[0].buffers[0].is_empty(),
        "no nulls: no bitmap"
    );
}

/// The encoding of `column`, changed by `edit`, decoded as `column`'s type.
fn forged(column: &dyn Array, edit: impl FnOnce(&mut ColumnData)) -> String {
    let mut encoded = array_to_wit(&column.to_data()).expect("encodes");
    edit(&mut encoded);
    array_from_wit(encoded, column.data_type())
        .expect_err("a forged array must be refused")
        .to_string()
}

fn nested() -> ArrayRef {
    json_batch()
        .column_by_name("customer")
        .expect("customer")
        .clone()
}

#[test]
fn a_struct_child_shorter_than_the_struct_is_refused_naming_the_field() {
    let e = forged(nested().as_ref(), |c| {
        let country = c.nodes[c.nodes[0].children[0] as usize].clone();
        let idx = c.nodes[0].children[0] as usize;
        c.nodes[idx] = ArrayNode {
            length: country.length - 1,
            ..country
        };
    });
    assert!(e.contains("country") || e.contains("length"), "{e}");
}

use weir_wit_arrow::ArrayNode;

#[test]
fn list_offsets_past_the_child_are_refused() {
    let list = ListArray::new(
        Arc::new(Field::new("item", DataType::Int32, true)),
        OffsetBuffer::new(ScalarBuffer::from(vec![0, 1, 2])),
        Arc::new(Int32Array::from(vec![1, 2])),
        None,
    );
    let e = forged(&list, |c| {
        c.nodes[0].buffers[1] = Buffer::from_vec(vec![0i32, 1, 9]);
    });
    assert!(e.contains("offset") || e.contains("Offset"), "{e}");
}

#[test]
fn a_dictionary_key_out_of_range_is_refused() {
    let dict: DictionaryArray<Int8Type> = vec!["a", "b"].into_iter().collect();
    let e = forged(&dict, |c| {
        c.nodes[0].buffers[1] = Buffer::from_vec(vec![0i8, 5]);
    });
    assert!(e.contains("5"), "{e}");
}

#[test]
fn a_decimal_past_its_precision_is_refused_naming_the_row() {
    let amounts = Decimal128Array::from(vec![100, 200])
        .with_precision_and_scale(3, 2)
        .expect("decimal");
    let e = forged(&amounts, |c| {
        c.nodes[0].buffers[1] = Buffer::from_vec(vec![100i128, 12345]);
    });
    assert!(e.contains("row 1") && e.contains("12345"), "{e}");
}

/// Found by the `wit_arrow` fuzz target: values buffers longer than the
/// values (here by 3 bytes) are legal Arrow, and the precision check used
/// to assert they were a whole number of values — a panic a guest could
/// cause. Every decimal width, with and without the overflow.
#[test]
fn a_decimal_buffer_with_trailing_bytes_is_checked_not_a_panic() {
    fn trailing<T: arrow::datatypes::ArrowNativeType>(values: &[T]) -> Buffer {
        let mut bytes = Buffer::from_slice_ref(values).as_slice().to_vec();
        bytes.extend([7, 7, 7]);
        Buffer::from_vec(bytes)
    }
    let d128 = Decimal128Array::from(vec![100, 200])
        .with_precision_and_scale(3, 2)
        .expect("decimal");
    let d32 = Decimal32Array::from(vec![1, 2])
        .with_precision_and_scale(3, 1)
        .expect("decimal");
    let back = array_from_wit(
        {
            let mut c = array_to_wit(&d128.to_data()).expect("encodes");
            c.nodes[0].buffers[1] = trailing(&[100i128, 200]);
            c
        },
        d128.data_type(),
    )
    .expect("trailing bytes past the values are legal");
    assert_eq!(make_array(back).as_ref(), &d128 as &dyn Array);
    let e = forged(&d128, |c| {
        c.nodes[0].buffers[1] = trailing(&[100i128, 12345]);
    });
    assert!(e.contains("row 1") && e.contains("12345"), "{e}");
    let e = forged(&d32, |c| {
        c.nodes[0].buffers[1] = trailing(&[1i32, 5000]);
    });
    assert!(e.contains("row 1") && e.contains("5000"), "{e}");
}

/// The same for the buffers arrow-rs's own validation reads as typed
/// slices (offsets, keys, run ends), where it asserted a whole number of
/// values and panicked: 3 stray bytes after each are ignored.
#[test]
fn offsets_keys_and_run_ends_with_trailing_bytes_are_read_not_a_panic() {
    let strings = StringArray::from(vec![Some("ab"), None, Some("c")]);
    let dict: DictionaryArray<Int16Type> = vec!["a", "b", "a"].into_iter().collect();
    let runs = RunArray::<Int32Type>::try_new(
        &Int32Array::from(vec![2, 3]),
        &StringArray::from(vec!["x", "y"]),
    )
    .expect("runs");
    for array in [&strings as &dyn Array, &dict, &runs] {
        let mut column = array_to_wit(&array.to_data()).expect("encodes");
        for node in &mut column.nodes {
            for buffer in node.buffers.iter_mut().skip(1) {
                let mut bytes = buffer.as_slice().to_vec();
                if !bytes.is_empty() {
                    bytes.extend([1, 2, 3]);
                }
                *buffer = Buffer::from_vec(bytes);
            }
        }
        let back = array_from_wit(column, array.data_type())
            .unwrap_or_else(|e| panic!("{}: {e}", array.data_type()));
        assert_eq!(make_array(back).as_ref(), array);
    }
}

/// Found by the `wit_arrow` fuzz target: an empty string, binary or list
/// array may come with a 0-byte offsets buffer (Arrow allows it); it is
/// read as one zero offset, so nothing downstream indexes past it
/// (arrow-rs 60's `ArrayData` equality did, and panicked).
#[test]
fn an_empty_array_without_offsets_reads_as_one_zero_offset() {
    let empty: [&dyn Array; 3] = [
        &StringArray::from(Vec::<&str>::new()),
        &LargeBinaryArray::from(Vec::<&[u8]>::new()),
        &ListArray::from_iter_primitive::<Int32Type, Vec<Option<i32>>, _>(Vec::<
            Option<Vec<Option<i32>>>,
        >::new()),
    ];
    for array in empty {
        let mut column = array_to_wit(&array.to_data()).expect("encodes");
        column.nodes[0].buffers[1] = Buffer::from_vec(Vec::<u8>::new());
        let back = array_from_wit(column, array.data_type()).expect("an empty array is valid");
        assert_eq!(back.buffers()[0].len(), array.to_data().buffers()[0].len());
        assert_eq!(make_array(back).as_ref(), array, "{}", array.data_type());
    }
}

#[test]
fn invalid_utf8_is_refused() {
    let strings = StringArray::from(vec!["ok", "no"]);
    let e = forged(&strings, |c| {
        c.nodes[0].buffers[2] = Buffer::from_vec(vec![b'o', b'k', 0xff, 0xfe]);
    });
    assert!(e.to_lowercase().contains("utf"), "{e}");
}

#[test]
fn a_null_count_that_disagrees_with_the_bitmap_is_refused() {
    let ints = Int32Array::from(vec![Some(1), None, Some(3)]);
    let e = forged(&ints, |c| c.nodes[0].null_count = 0);
    assert!(e.contains("null-count says 0"), "{e}");
    let e = forged(&ints, |c| {
        c.nodes[0].buffers[0] = Buffer::from_vec(Vec::<u8>::new())
    });
    assert!(e.contains("null-count says 1"), "{e}");
}

#[test]
fn a_bitmap_too_short_for_the_rows_is_refused_not_a_panic() {
    let ints = Int32Array::from(
        vec![Some(1); 20]
            .into_iter()
            .chain([None])
            .collect::<Vec<_>>(),
    );
    let e = forged(&ints, |c| {
        c.nodes[0].buffers[0] = Buffer::from_vec(vec![0xffu8])
    });
    assert!(e.contains("validity bitmap has 1 bytes"), "{e}");
}

#[test]
fn an_array_tree_that_does_not_fit_its_type_is_refused() {
    let customer = nested();
    let one_field = DataType::Struct(vec![Field::new("country", DataType::Utf8, true)].into());
    let encoded = array_to_wit(&customer.to_data()).expect("encodes");
    let e = array_from_wit(encoded, &one_field).expect_err("two children, one field");
    assert!(
        e.to_string().contains("has 2 child arrays, its type has 1"),
        "{e}"
    );
}

#[test]
fn dropping_a_child_array_is_refused() {
    let e = forged(nested().as_ref(), |c| {
        c.nodes[0].children.pop();
    });
    assert!(e.contains("referenced 0 times"), "{e}");
}

#[test]
fn a_shared_or_cyclic_array_tree_is_refused() {
    let e = forged(nested().as_ref(), |c| {
        let first = c.nodes[0].children[0];
        c.nodes[0].children[1] = first;
    });
    assert!(e.contains("referenced"), "{e}");
}

#[test]
fn a_wrong_number_of_buffers_is_refused() {
    let ints = Int32Array::from(vec![1, 2]);
    let e = forged(&ints, |c| c.nodes[0].buffers.truncate(1));
    assert!(e.contains("buffer"), "{e}");
    let e = forged(&ints, |c| c.nodes[0].buffers.clear());
    assert!(e.contains("validity bitmap"), "{e}");
}

#[test]
fn a_type_tree_nested_past_the_limit_is_refused_not_a_stack_overflow() {
    let depth = 10_000u32;
    let nodes = (0..depth)
        .map(|i| FieldNode {
            name: "item".into(),
            data_type: if i + 1 < depth {
                W::List(i + 1)
            } else {
                W::Int32
            },
            nullable: true,
            metadata: vec![],
        })
        .collect();
    let e = schema_from_wit(&WitSchema {
        nodes,
        columns: vec![0],
        metadata: vec![],
    })
    .expect_err("too deep");
    assert!(e.to_string().contains("deeper than 64"), "{e}");
}

#[test]
fn a_forged_type_is_refused_naming_the_field() {
    let schema = Schema::new(vec![Field::new(
        "customer",
        DataType::Struct(vec![Field::new("paid", DataType::Decimal128(10, 2), true)].into()),
        true,
    )]);
    let mut tree = schema_to_wit(&schema);
    tree.nodes[1].data_type = W::Decimal128(weir_wit_arrow::DecimalType {
        precision: 50,
        scale: 2,
    });
    let e = schema_from_wit(&tree).expect_err("precision 50");
    assert_eq!(e.path(), "customer.paid");
    assert!(e.to_string().contains("precision 50"), "{e}");
    tree.nodes[1].data_type = W::Time32(weir_wit_arrow::TimeUnit::Nanosecond);
    assert!(schema_from_wit(&tree).is_err());
}

#[test]
fn a_map_whose_entries_are_not_key_and_value_is_refused() {
    let mut tree = schema_to_wit(&json_batch().schema());
    let map = tree
        .nodes
        .iter()
        .position(|n| matches!(n.data_type, W::Map(..)))
        .expect("a map");
    let W::Map(entries, _) = tree.nodes[map].data_type else {
        unreachable!()
    };
    tree.nodes[entries as usize].nullable = true;
    let e = schema_from_wit(&tree).expect_err("nullable entries");
    assert!(e.to_string().contains("map's entries"), "{e}");
}
