//! Every source and sink format, and every type the WIT carries, round-trip.

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::ipc::writer::FileWriter;
use weir_tests::{arc, plugins, read_ipc, read_parquet, repo, toml_path, Scratch};

fn every_type() -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("b", DataType::Boolean, true),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("i64", DataType::Int64, false),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("bin", DataType::Binary, true),
        Field::new("d", DataType::Date32, true),
        Field::new("ts_s", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new(
            "ts_ms",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into())),
            true,
        ),
        Field::new(
            "ts_us",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "ts_ns",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            true,
        ),
    ]);
    let columns: Vec<ArrayRef> = vec![
        arc(BooleanArray::from(vec![
            Some(true),
            None,
            Some(false),
            Some(true),
        ])),
        arc(Int8Array::from(vec![Some(-128), None, Some(0), Some(127)])),
        arc(Int16Array::from(vec![
            Some(-1),
            Some(2),
            None,
            Some(i16::MAX),
        ])),
        arc(Int32Array::from(vec![
            None,
            Some(i32::MIN),
            Some(3),
            Some(4),
        ])),
        arc(Int64Array::from(vec![i64::MIN, -1, 0, i64::MAX])),
        arc(UInt8Array::from(vec![Some(255), None, Some(0), Some(1)])),
        arc(UInt16Array::from(vec![Some(65535), Some(1), None, Some(2)])),
        arc(UInt32Array::from(vec![
            None,
            Some(u32::MAX),
            Some(3),
            Some(4),
        ])),
        arc(UInt64Array::from(vec![
            Some(u64::MAX),
            Some(0),
            Some(1),
            None,
        ])),
        arc(Float32Array::from(vec![
            Some(1.5),
            None,
            Some(-0.0),
            Some(f32::INFINITY),
        ])),
        arc(Float64Array::from(vec![
            Some(f64::MIN_POSITIVE),
            Some(-2.25),
            None,
            Some(1e300),
        ])),
        arc(StringArray::from(vec![
            Some("héllo"),
            None,
            Some(""),
            Some("日本"),
        ])),
        arc(BinaryArray::from(vec![
            Some(&b"\x00\xff"[..]),
            Some(&b""[..]),
            None,
            Some(&b"abc"[..]),
        ])),
        arc(Date32Array::from(vec![
            Some(0),
            Some(19723),
            None,
            Some(-1),
        ])),
        arc(TimestampSecondArray::from(vec![
            Some(1),
            None,
            Some(-1),
            Some(1_700_000_000),
        ])),
        arc(
            TimestampMillisecondArray::from(vec![Some(1), Some(2), None, Some(3)])
                .with_timezone("+02:00"),
        ),
        arc(
            TimestampMicrosecondArray::from(vec![None, Some(2), Some(3), Some(4)])
                .with_timezone("UTC"),
        ),
        arc(TimestampNanosecondArray::from(vec![
            Some(1),
            Some(2),
            Some(3),
            None,
        ])),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn write_ipc(path: &std::path::Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = FileWriter::try_new(file, &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn every_wit_type_with_nulls_crosses_into_a_plugin_and_back_unchanged() {
    let scratch = Scratch::new();
    let input = every_type();
    // Sliced batches start at a non-zero offset: the boundary must honour it.
    write_ipc(
        &scratch.path("in.arrow"),
        &[input.slice(0, 3), input.slice(3, 1)],
    );
    scratch
        .run(&format!(
            r#"
            [sources.in]
            type = "ipc"
            path = "in.arrow"

            [transforms.copy]
            plugin = {}
            inputs = ["in"]
            config = {{ copy = true }}

            [sinks.out]
            type = "ipc"
            inputs = ["copy"]
            path = "out.arrow"
            "#,
            toml_path(plugins::PASSTHROUGH.as_ref())
        ))
        .unwrap();
    assert_eq!(read_ipc(&scratch.path("out.arrow")).unwrap(), input);
}

#[test]
fn each_file_format_written_by_a_sink_reads_back_through_its_source() {
    let scratch = Scratch::new();
    scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 1000

            [sources.gen]
            type = "generate"
            rows = 2500

            [transforms.same]
            plugin = {}
            inputs = ["gen"]

            [sinks.parquet]
            type = "parquet"
            inputs = ["same"]
            path = "out/data.parquet"

            [sinks.csv]
            type = "csv"
            inputs = ["same"]
            path = "out/data.csv"

            [sinks.ndjson]
            type = "ndjson"
            inputs = ["same"]
            path = "out/data.ndjson"

            [sinks.ipc]
            type = "ipc"
            inputs = ["same"]
            path = "out/data.arrow"
            "#,
            toml_path(plugins::PASSTHROUGH.as_ref())
        ))
        .unwrap();
    let expected = read_ipc(&scratch.path("out/data.arrow")).unwrap();
    assert_eq!(expected.num_rows(), 2500);

    let declared = r#"schema = [
        { name = "seq", type = "int64", nullable = false },
        { name = "ts", type = 'Timestamp(µs, "UTC")', nullable = false },
        { name = "key", type = "utf8", nullable = false },
        { name = "value", type = "float64", nullable = false },
    ]"#;
    for (kind, file, extra) in [
        ("parquet", "data.parquet", ""),
        ("csv", "data.csv", declared),
        ("ndjson", "data.ndjson", declared),
        ("ipc", "data.arrow", ""),
    ] {
        let back = Scratch::new();
        back.run(&format!(
            r#"
            [sources.back]
            type = "{kind}"
            path = {}
            {extra}

            [sinks.out]
            type = "ipc"
            inputs = ["back"]
            path = "back.arrow"
            "#,
            toml_path(&scratch.path("out").join(file))
        ))
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let got = read_ipc(&back.path("back.arrow")).unwrap();
        assert_eq!(got.columns(), expected.columns(), "{kind} changed the data");
    }
}

#[test]
fn parquet_sink_writes_each_compression_readably() {
    for compression in ["none", "snappy", "zstd"] {
        let scratch = Scratch::new();
        scratch
            .run(&format!(
                r#"
                [sources.gen]
                type = "generate"
                rows = 3000

                [sinks.out]
                type = "parquet"
                inputs = ["gen"]
                path = "out.parquet"
                compression = "{compression}"
                row_group_rows = 1000
                "#
            ))
            .unwrap();
        let file = std::fs::File::open(scratch.path("out.parquet")).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(
            &parquet::file::reader::SerializedFileReader::new(file).unwrap(),
        )
        .clone();
        assert_eq!(meta.num_row_groups(), 3, "{compression}");
        let codec = meta.row_group(0).column(0).compression().to_string();
        assert!(
            codec.to_lowercase().starts_with(if compression == "none" {
                "uncompressed"
            } else {
                compression
            }),
            "{codec}"
        );
        assert_eq!(
            read_parquet(&scratch.path("out.parquet"))
                .unwrap()
                .num_rows(),
            3000
        );
    }
}

#[test]
fn glob_path_reads_every_matching_file_in_sorted_order() {
    let scratch = Scratch::new();
    scratch.write("in/b.csv", "id,name\n3,c\n4,d\n");
    scratch.write("in/a.csv", "id,name\n1,a\n2,b\n");
    scratch.write("in/skip.txt", "id,name\n9,z\n");
    scratch
        .run(
            r#"
            [sources.in]
            type = "csv"
            path = "in/*.csv"

            [sinks.out]
            type = "ipc"
            inputs = ["in"]
            path = "out.arrow"
            "#,
        )
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let ids = out.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(ids.values(), &[1, 2, 3, 4]);
}

#[test]
fn csv_source_honours_delimiter_header_and_declared_schema() {
    let scratch = Scratch::new();
    scratch.write("in.tsv", "1;x;2.5\n2;y;\n");
    scratch
        .run(
            r#"
            [sources.in]
            type = "csv"
            path = "in.tsv"
            delimiter = ";"
            header = false
            schema = [
                { name = "id", type = "int32" },
                { name = "tag", type = "string" },
                { name = "amount", type = "float64" },
            ]

            [sinks.out]
            type = "ipc"
            inputs = ["in"]
            path = "out.arrow"
            "#,
        )
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    assert_eq!(out.schema().field(0).data_type(), &DataType::Int32);
    let amount = out
        .column(2)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(amount.iter().collect::<Vec<_>>(), vec![Some(2.5), None]);
}

#[test]
fn plugin_may_return_the_whole_batch_as_arrow_ipc() {
    let scratch = Scratch::new();
    scratch
        .run(&format!(
            r#"
            [sources.gen]
            type = "generate"
            rows = 1500

            [transforms.echo]
            plugin = {}
            inputs = ["gen"]
            config = {{ mode = "ipc-echo" }}

            [sinks.out]
            type = "ipc"
            inputs = ["echo"]
            path = "out.arrow"

            [sinks.direct]
            type = "ipc"
            inputs = ["gen"]
            path = "direct.arrow"
            "#,
            toml_path(plugins::RAW.as_ref())
        ))
        .unwrap();
    assert_eq!(
        read_ipc(&scratch.path("out.arrow")).unwrap(),
        read_ipc(&scratch.path("direct.arrow")).unwrap()
    );
}

#[test]
fn generate_source_is_deterministic_for_a_seed() {
    let run = |seed: u64| {
        let scratch = Scratch::new();
        scratch
            .run(&format!(
                r#"
                [sources.gen]
                type = "generate"
                rows = 100
                seed = {seed}
                keys = 7

                [sinks.out]
                type = "ipc"
                inputs = ["gen"]
                path = "out.arrow"
                "#
            ))
            .unwrap();
        read_ipc(&scratch.path("out.arrow")).unwrap()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1).column(3), run(2).column(3));
    let keys = run(1);
    let keys = keys
        .column(2)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    assert!(distinct.len() <= 7 && distinct.len() > 1);
}

#[test]
fn generate_source_paces_rows_to_its_rate() {
    let scratch = Scratch::new();
    let started = std::time::Instant::now();
    let summary = scratch
        .run(
            r#"
            [sources.gen]
            type = "generate"
            rows = 60
            rate = 200.0

            [sinks.out]
            type = "ipc"
            inputs = ["gen"]
            path = "out.arrow"
            "#,
        )
        .unwrap();
    // 60 rows at 200 rows/s can't finish in much under 300 ms, and a paced
    // stream is cut into small batches (at most 100 ms of rows each).
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    let gen = summary.node("gen").unwrap();
    assert_eq!(gen.rows_out, 60);
    assert!(gen.batches_out >= 3, "{} batches", gen.batches_out);
}

#[test]
fn every_parquet_file_pyarrow_writes_weir_reads_with_the_same_rows_and_values() {
    let scratch = Scratch::new();
    let python = weir_tests::repo().join(".venv/bin/python");
    let script = weir_tests::repo().join("tests/reference/parquet_files.py");
    let dir = scratch.path("files");
    let written = std::process::Command::new(&python)
        .arg(&script)
        .arg("write")
        .arg(&dir)
        .output()
        .expect("run scripts/setup --test (the pyarrow venv)");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        cases += 1;
        scratch
            .run(&format!(
                r#"
                [sources.in]
                type = "parquet"
                path = {input}

                [sinks.out]
                type = "ipc"
                inputs = ["in"]
                path = {output}
                "#,
                input = toml_path(&path),
                output = toml_path(&path.with_extension("arrow")),
            ))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert!(cases >= 12, "{cases} files written");
    let checked = std::process::Command::new(&python)
        .arg(&script)
        .arg("check")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// A Parquet file of one row group laid out as older writers (parquet-mr
/// before LIST, Thrift/protobuf models) lay out lists: `message` is the
/// schema, `columns` each leaf column's values with its definition and
/// repetition levels (`None`: a required top-level column).
type Leaf<'a> = (Values<'a>, Option<(&'a [i16], &'a [i16])>);
enum Values<'a> {
    I64(&'a [i64]),
    I32(&'a [i32]),
    F64(&'a [f64]),
}

fn write_legacy(path: &std::path::Path, message: &str, columns: &[Leaf<'_>]) {
    use parquet::data_type::{DoubleType, Int32Type, Int64Type};
    use parquet::file::writer::SerializedFileWriter;
    let schema = Arc::new(parquet::schema::parser::parse_message_type(message).unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, schema, Default::default()).unwrap();
    let mut group = writer.next_row_group().unwrap();
    for (values, levels) in columns {
        let (def, rep) = levels.map_or((None, None), |(d, r)| (Some(d), Some(r)));
        let mut column = group.next_column().unwrap().unwrap();
        match values {
            Values::I64(v) => column.typed::<Int64Type>().write_batch(v, def, rep),
            Values::I32(v) => column.typed::<Int32Type>().write_batch(v, def, rep),
            Values::F64(v) => column.typed::<DoubleType>().write_batch(v, def, rep),
        }
        .unwrap();
        column.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
}

/// `file` read by weir's parquet source (written back as IPC).
fn read_by_weir(scratch: &Scratch, file: &str) -> RecordBatch {
    scratch
        .run(&format!(
            "[sources.in]\ntype = \"parquet\"\npath = \"{file}\"\n\n[sinks.out]\ntype = \"ipc\"\ninputs = [\"in\"]\npath = \"out.arrow\"\n"
        ))
        .unwrap();
    read_ipc(&scratch.path("out.arrow")).unwrap()
}

/// Three rows' lists: [a, b], [], [c].
const LEVELS: (&[i16], &[i16]) = (&[1, 1, 0, 1], &[0, 1, 0, 0]);

#[test]
fn a_legacy_repeated_field_without_list_annotation_reads_as_a_list_with_every_row() {
    let scratch = Scratch::new();
    write_legacy(
        &scratch.path("legacy.parquet"),
        "message legacy { required int64 id; repeated int32 tags; }",
        &[
            (Values::I64(&[1, 2, 3]), None),
            (Values::I32(&[10, 11, 12]), Some(LEVELS)),
        ],
    );
    let out = read_by_weir(&scratch, "legacy.parquet");
    assert_eq!(out.num_rows(), 3, "every row of the file, not 0");
    let tags = out.column_by_name("tags").unwrap().as_list::<i32>();
    let lists: Vec<Vec<i32>> = (0..3)
        .map(|i| {
            let v = tags.value(i);
            v.as_any()
                .downcast_ref::<Int32Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(lists, vec![vec![10, 11], vec![], vec![12]]);
}

#[test]
fn a_legacy_repeated_group_without_list_annotation_reads_as_a_list_of_structs_with_every_row() {
    let scratch = Scratch::new();
    write_legacy(
        &scratch.path("legacy.parquet"),
        "message legacy { required int64 id; repeated group points { required double x; required double y; } }",
        &[
            (Values::I64(&[1, 2, 3]), None),
            (Values::F64(&[1.0, 3.0, 5.0]), Some(LEVELS)),
            (Values::F64(&[2.0, 4.0, 6.0]), Some(LEVELS)),
        ],
    );
    let out = read_by_weir(&scratch, "legacy.parquet");
    assert_eq!(out.num_rows(), 3, "every row of the file, not 0");
    let points = out.column_by_name("points").unwrap().as_list::<i32>();
    assert_eq!(
        (0..3).map(|i| points.value(i).len()).collect::<Vec<_>>(),
        [2, 0, 1]
    );
}

#[test]
fn a_file_of_only_a_legacy_repeated_field_reads_every_row() {
    let scratch = Scratch::new();
    write_legacy(
        &scratch.path("legacy.parquet"),
        "message legacy { repeated int32 tags; }",
        &[(Values::I32(&[10, 11, 12]), Some(LEVELS))],
    );
    assert_eq!(read_by_weir(&scratch, "legacy.parquet").num_rows(), 3);
}

/// Nested orders as an API returns them: a customer object, a list of
/// line items, exact amounts, a field missing here and there.
const NESTED_ORDERS: &str = concat!(
    r#"{"id": 1, "amount": 12.30, "customer": {"name": "Ana", "country": "DE"}, "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}], "tags": ["new"]}"#,
    "\n",
    r#"{"id": 2, "amount": 0.05, "customer": {"name": "Bo"}, "items": [], "tags": null}"#,
    "\n",
    r#"{"id": 3, "amount": 99999999.99, "customer": null, "items": [{"sku": null, "qty": 7}]}"#,
    "\n",
);

/// Runs `source` (an ndjson table body) into `out.arrow` and has Python's
/// json module check every value.
fn read_nested_orders(source: &str) -> RecordBatch {
    let scratch = Scratch::new();
    scratch.write("orders.ndjson", NESTED_ORDERS);
    scratch
        .run(&format!(
            "[sources.orders]\n{source}\n\n[sinks.out]\ntype = \"ipc\"\ninputs = [\"orders\"]\npath = \"out.arrow\"\n"
        ))
        .unwrap();
    let check = std::process::Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("tests/reference/check_json_source.py"))
        .arg(scratch.path("orders.ndjson"))
        .arg(scratch.path("out.arrow"))
        .output()
        .expect("running check_json_source.py (scripts/setup --test makes .venv)");
    assert!(
        check.status.success(),
        "weir's reading differs from Python's json:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    read_ipc(&scratch.path("out.arrow")).unwrap()
}

#[test]
fn ndjson_objects_and_arrays_are_inferred_as_structs_and_lists() {
    let out = read_nested_orders("type = \"ndjson\"\npath = \"orders.ndjson\"");
    let schema = out.schema();
    let customer = schema.field_with_name("customer").unwrap().data_type();
    assert!(
        matches!(customer, DataType::Struct(f) if f.len() == 2),
        "{customer}"
    );
    let items = schema.field_with_name("items").unwrap().data_type();
    assert!(
        matches!(items, DataType::List(f) if matches!(f.data_type(), DataType::Struct(_))),
        "{items}"
    );
}

#[test]
fn ndjson_declared_nested_schema_reads_structs_lists_and_exact_decimals() {
    let out = read_nested_orders(
        "type = \"ndjson\"\npath = \"orders.ndjson\"\nschema = [\n\
         { name = \"id\", type = \"int64\" },\n\
         { name = \"amount\", type = \"decimal(12, 2)\" },\n\
         { name = \"customer\", type = \"struct<name: utf8, country: utf8>\" },\n\
         { name = \"items\", type = \"list<struct<sku: utf8, qty: int32>>\" },\n\
         { name = \"tags\", type = \"list<utf8>\" },\n]",
    );
    let amounts = out
        .column_by_name("amount")
        .unwrap()
        .as_primitive::<arrow::datatypes::Decimal128Type>();
    assert_eq!(
        amounts.values().to_vec(),
        vec![1230, 5, 9_999_999_999],
        "cents, exactly"
    );
}

#[test]
fn csv_declared_decimals_read_exactly_past_a_doubles_precision() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "id,amount\n1,12345678901234567.89\n2,-0.01\n3,\n");
    scratch
        .run(
            "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\nschema = [{ name = \"id\", type = \"int64\" }, { name = \"amount\", type = \"decimal(20, 2)\" }]\n\n[sinks.out]\ntype = \"ipc\"\ninputs = [\"in\"]\npath = \"out.arrow\"\n",
        )
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let amounts = out
        .column(1)
        .as_primitive::<arrow::datatypes::Decimal128Type>();
    assert_eq!(amounts.data_type(), &DataType::Decimal128(20, 2));
    assert_eq!(
        (amounts.value(0), amounts.value(1), amounts.is_null(2)),
        (1_234_567_890_123_456_789, -1, true),
        "a float64 would have read 12345678901234568"
    );
}
