//! The `wit_arrow` target: what a `weir:plugin@0.2.0` guest hands the host
//! — a column as array nodes and a schema as a field tree — damaged the
//! ways a buggy or hostile guest could, then lifted by the shared mapping
//! (`weir-wit-arrow`) as the host lifts a real guest's output.
//!
//! Whatever the mapping accepts must be an array Arrow itself finds valid
//! in full, and must cross the boundary again unchanged: an accepted lie
//! would reach downstream kernels, which trust their input and may panic
//! or read out of bounds.

use std::sync::{Arc, OnceLock};

use arbitrary::{Result, Unstructured};
use arrow::array::*;
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::*;
use weir_wit_arrow::{
    array_from_wit, array_to_wit, schema_from_wit, schema_to_wit, ColumnData, DataType as W,
};

/// Columns of every shape the mapping handles, with nulls at each level:
/// the starting points the damage is applied to.
fn samples() -> &'static [(Field, ArrayRef)] {
    static SAMPLES: OnceLock<Vec<(Field, ArrayRef)>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        build_samples()
            .into_iter()
            .map(|(name, array)| (Field::new(name, array.data_type().clone(), true), array))
            .collect()
    })
}

fn build_samples() -> Vec<(&'static str, ArrayRef)> {
    let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(-3), Some(4)]));
    let words: ArrayRef = Arc::new(StringArray::from(vec![
        Some("a"),
        None,
        Some("bc"),
        Some(""),
    ]));
    let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    map.keys().append_value("size");
    map.values().append_value(3);
    map.append(true).expect("keys and values line up");
    map.append(false).expect("a null map");
    let struct_of = StructArray::from(vec![
        (
            Arc::new(Field::new("id", DataType::Int64, true)),
            ints.clone(),
        ),
        (
            Arc::new(Field::new("w", DataType::Utf8, true)),
            words.clone(),
        ),
    ]);
    let list_of_struct = ListArray::new(
        Arc::new(Field::new("item", struct_of.data_type().clone(), true)),
        OffsetBuffer::new(ScalarBuffer::from(vec![0, 2, 2, 4])),
        Arc::new(struct_of.clone()),
        Some(vec![true, false, true].into()),
    );
    let union_fields = UnionFields::try_new(
        vec![0, 5],
        vec![
            Field::new("i", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ],
    )
    .expect("distinct ids");
    let dense = UnionArray::try_new(
        union_fields.clone(),
        ScalarBuffer::from(vec![0, 5, 5, 0]),
        Some(ScalarBuffer::from(vec![0, 0, 1, 1])),
        vec![
            Arc::new(Int64Array::from(vec![Some(7), None])) as ArrayRef,
            Arc::new(StringArray::from(vec!["x", "yz"])),
        ],
    )
    .expect("a valid dense union");
    let sparse = UnionArray::try_new(
        union_fields,
        ScalarBuffer::from(vec![5, 0, 0, 5]),
        None,
        vec![ints.clone(), words.clone()],
    )
    .expect("a valid sparse union");
    let list_view = ListViewArray::try_new(
        Arc::new(Field::new("item", DataType::Int64, true)),
        ScalarBuffer::from(vec![2, 0, 0, 1]),
        ScalarBuffer::from(vec![2, 0, 3, 1]),
        ints.clone(),
        Some(vec![true, false, true, true].into()),
    )
    .expect("a valid list view");
    let run_ends = RunArray::<Int32Type>::try_new(
        &Int32Array::from(vec![2, 3, 4]),
        &StringArray::from(vec![Some("a"), None, Some("b")]),
    )
    .expect("increasing run ends");
    vec![
        ("null", Arc::new(NullArray::new(3))),
        (
            "bool",
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
        ),
        ("i64", ints.clone()),
        ("u8", Arc::new(UInt8Array::from(vec![0, 255]))),
        ("f64", Arc::new(Float64Array::from(vec![Some(1.5), None]))),
        ("utf8", words.clone()),
        (
            "large_utf8",
            Arc::new(LargeStringArray::from(vec![Some("é"), None])),
        ),
        (
            "utf8_view",
            Arc::new(StringViewArray::from(vec![
                Some("short"),
                None,
                Some("a string longer than twelve bytes"),
            ])),
        ),
        (
            "binary_view",
            Arc::new(BinaryViewArray::from(vec![
                b"a binary value past the inline size".as_slice(),
                b"x",
            ])),
        ),
        (
            "binary",
            Arc::new(BinaryArray::from(vec![Some(b"\x00\xff".as_slice()), None])),
        ),
        (
            "fixed_binary",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some(b"ab".to_vec()), None, Some(b"cd".to_vec())].into_iter(),
                    2,
                )
                .expect("two bytes each"),
            ),
        ),
        (
            "decimal128",
            Arc::new(
                Decimal128Array::from(vec![Some(12_345), None, Some(-1)])
                    .with_precision_and_scale(5, 2)
                    .expect("a valid precision"),
            ),
        ),
        (
            "decimal32",
            Arc::new(
                Decimal32Array::from(vec![Some(999), None])
                    .with_precision_and_scale(3, 1)
                    .expect("a valid precision"),
            ),
        ),
        (
            "timestamp",
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(0), None, Some(1_700_000_000_000_000)])
                    .with_timezone("Europe/Berlin"),
            ),
        ),
        (
            "date32",
            Arc::new(Date32Array::from(vec![Some(19_000), None])),
        ),
        (
            "time64",
            Arc::new(Time64NanosecondArray::from(vec![Some(1), None])),
        ),
        (
            "interval",
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                Some(IntervalMonthDayNano::new(1, 2, 3)),
                None,
            ])),
        ),
        (
            "list",
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
                Some(vec![Some(1), None]),
                None,
                Some(vec![]),
            ])),
        ),
        (
            "large_list",
            Arc::new(LargeListArray::from_iter_primitive::<Int32Type, _, _>(
                vec![Some(vec![Some(1)]), None],
            )),
        ),
        (
            "fixed_list",
            Arc::new(FixedSizeListArray::from_iter_primitive::<Int32Type, _, _>(
                vec![
                    Some(vec![Some(1), None]),
                    None,
                    Some(vec![Some(3), Some(4)]),
                ],
                2,
            )),
        ),
        ("list_view", Arc::new(list_view)),
        ("struct", Arc::new(struct_of)),
        ("list_of_struct", Arc::new(list_of_struct)),
        ("map", Arc::new(map.finish())),
        (
            "dictionary",
            Arc::new(
                vec![Some("a"), None, Some("a"), Some("b")]
                    .into_iter()
                    .collect::<DictionaryArray<Int16Type>>(),
            ),
        ),
        ("dense_union", Arc::new(dense)),
        ("sparse_union", Arc::new(sparse)),
        ("run_end_encoded", Arc::new(run_ends)),
    ]
}

/// A length or count: mostly near the real ones, sometimes a lie.
fn count(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0..=3u8)? {
        0..=1 => u.int_in_range(0..=8)?,
        2 => [0x7fff_ffff, 0xffff_ffff, 0x8000_0000, 1 << 20][u.choose_index(4)?],
        _ => u.arbitrary()?,
    })
}

/// One buffer, changed: a flipped bit, a byte set, a lying 4-byte value,
/// cut short, or grown.
fn damage_buffer(u: &mut Unstructured<'_>, buffer: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = buffer.to_vec();
    let at = u.choose_index(bytes.len().max(1))?;
    match u.int_in_range(0..=4u8)? {
        0 if !bytes.is_empty() => bytes[at] ^= 1 << u.int_in_range(0..=7u8)?,
        1 if !bytes.is_empty() => bytes[at] = u.arbitrary()?,
        2 if bytes.len() >= at + 4 => bytes[at..at + 4].copy_from_slice(&count(u)?.to_le_bytes()),
        3 => bytes.truncate(at),
        _ => {
            let extra: Vec<u8> = u.arbitrary()?;
            bytes.extend(extra);
        }
    }
    Ok(bytes)
}

/// One change to a column's array nodes, as a guest could send them.
fn damage_column(u: &mut Unstructured<'_>, column: &mut ColumnData) -> Result<()> {
    let op = u.int_in_range(0..=8u8)?;
    if op == 8 || column.nodes.is_empty() {
        column.root = count(u)?;
        return Ok(());
    }
    let i = u.choose_index(column.nodes.len())?;
    let node = &mut column.nodes[i];
    match op {
        0 => node.length = count(u)?,
        1 => node.null_count = count(u)?,
        2 | 3 if !node.buffers.is_empty() => {
            let j = u.choose_index(node.buffers.len())?;
            let damaged = damage_buffer(u, node.buffers[j].as_slice())?;
            node.buffers[j] = arrow::buffer::Buffer::from_vec(damaged);
        }
        4 => {
            if u.arbitrary()? {
                node.buffers.pop();
            } else {
                let extra: Vec<u8> = u.arbitrary()?;
                node.buffers.push(arrow::buffer::Buffer::from_vec(extra));
            }
        }
        5 => match node.children.len() {
            0 => node.children.push(count(u)?),
            n => {
                let k = u.choose_index(n)?;
                if u.arbitrary()? {
                    node.children[k] = count(u)?;
                } else {
                    node.children.remove(k);
                }
            }
        },
        6 => node.dictionary = u.arbitrary::<bool>()?.then(|| count(u)).transpose()?,
        _ => {
            let j = u.choose_index(column.nodes.len())?;
            column.nodes.swap(i, j);
        }
    }
    Ok(())
}

/// One change to a field tree: a node's type replaced, a child index, a
/// name or the column list.
fn damage_schema(u: &mut Unstructured<'_>, schema: &mut weir_wit_arrow::Schema) -> Result<()> {
    if schema.nodes.is_empty() || u.int_in_range(0..=5u8)? == 0 {
        let lie = count(u)?;
        match schema.columns.first_mut() {
            Some(first) if u.arbitrary()? => *first = lie,
            _ => schema.columns.push(lie),
        }
        return Ok(());
    }
    let count = schema.nodes.len() as u32;
    let i = u.choose_index(schema.nodes.len())?;
    let node = &mut schema.nodes[i];
    match u.int_in_range(0..=3u8)? {
        0 => node.name = u.arbitrary()?,
        1 => node.nullable = !node.nullable,
        _ => node.data_type = data_type(u, count)?,
    }
    Ok(())
}

/// An arbitrary node type; child indexes mostly among the `nodes` there are.
fn data_type(u: &mut Unstructured<'_>, nodes: u32) -> Result<W> {
    use weir_wit_arrow::{DecimalType, DictionaryType, IndexType, TimeUnit, UnionMode, UnionType};
    let index = |u: &mut Unstructured<'_>| -> Result<u32> {
        if u.ratio(7u8, 8)? {
            u.int_in_range(0..=nodes)
        } else {
            count(u)
        }
    };
    let decimal = |u: &mut Unstructured<'_>| -> Result<DecimalType> {
        Ok(DecimalType {
            precision: u.arbitrary()?,
            scale: u.arbitrary()?,
        })
    };
    let unit = |u: &mut Unstructured<'_>| -> Result<TimeUnit> {
        Ok(*u.choose(&[
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ])?)
    };
    Ok(match u.int_in_range(0..=15u8)? {
        0 => W::Int32,
        1 => W::Utf8View,
        2 => W::FixedSizeBinary(u.arbitrary()?),
        3 => W::Time32(unit(u)?),
        4 => W::Timestamp(weir_wit_arrow::TimestampType {
            unit: unit(u)?,
            timezone: u.arbitrary()?,
        }),
        5 => W::Decimal32(decimal(u)?),
        6 => W::Decimal256(decimal(u)?),
        7 => W::List(index(u)?),
        8 => W::FixedSizeList(index(u)?, u.arbitrary()?),
        9 => W::LargeListView(index(u)?),
        10 => W::Struct(
            (0..u.int_in_range(0..=3u8)?)
                .map(|_| index(u))
                .collect::<Result<_>>()?,
        ),
        11 => W::Map(index(u)?, u.arbitrary()?),
        12 => W::Dictionary(DictionaryType {
            index: *u.choose(&[IndexType::Int8, IndexType::Uint64, IndexType::Int32])?,
            value: index(u)?,
            ordered: u.arbitrary()?,
        }),
        13 => W::Union(UnionType {
            mode: *u.choose(&[UnionMode::Sparse, UnionMode::Dense])?,
            type_ids: u.arbitrary()?,
            children: (0..u.int_in_range(0..=3u8)?)
                .map(|_| index(u))
                .collect::<Result<_>>()?,
        }),
        14 => W::RunEndEncoded(index(u)?, index(u)?),
        _ => W::Null,
    })
}

/// One sample column and its field, lowered, damaged, lifted.
pub fn wit_arrow(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((field, array)) = u.choose(samples()) else {
        return;
    };
    let mut schema = schema_to_wit(&Schema::new(vec![field.clone()]));
    let mut column = array_to_wit(&array.to_data()).expect("a sample lowers");
    let Ok(changes) = u.int_in_range(0..=4u8) else {
        return;
    };
    for _ in 0..changes {
        let damaged = match u.int_in_range(0..=4u8) {
            Ok(0) => damage_schema(&mut u, &mut schema),
            Ok(_) => damage_column(&mut u, &mut column),
            Err(e) => Err(e),
        };
        if damaged.is_err() {
            break;
        }
    }
    let Ok(lifted) = schema_from_wit(&schema) else {
        return;
    };
    // A schema that lifts lowers to the same tree again.
    match schema_from_wit(&schema_to_wit(&lifted)) {
        Ok(again) => assert_eq!(again, lifted, "a lifted schema crosses again unchanged"),
        Err(e) => panic!("a lifted schema fails to cross again: {e}"),
    }
    // The column is lifted against the sample's own type, as the host
    // lifts against the schema the guest declared; a damaged schema may
    // have changed that type.
    let data_type = lifted
        .fields()
        .first()
        .map(|f| f.data_type().clone())
        .unwrap_or_else(|| field.data_type().clone());
    let Ok(lifted) = array_from_wit(column, &data_type) else {
        return;
    };
    if let Err(e) = lifted.validate_full() {
        panic!("the mapping accepted an array Arrow finds invalid: {e}");
    }
    match array_to_wit(&lifted).and_then(|c| array_from_wit(c, &data_type)) {
        Ok(again) => assert_eq!(again, lifted, "an accepted array crosses again unchanged"),
        Err(e) => panic!("an accepted array fails to cross again: {e}"),
    }
}
