//! Bad input data under each `on_bad_record` policy: the error names file,
//! line (or row group) and text; under skip and dead_letter every good
//! record arrives, in order.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use weir_tests::{read_ipc, Scratch};

/// `source` table body → ipc sink (+ a dead-letter sink when asked).
fn pipeline(source: &str, policy: &str) -> String {
    let dead = if policy == "dead_letter" {
        "\n[sinks.dlq]\ntype = \"ipc\"\ninputs = [\"in.dead_letter\"]\npath = \"dead.arrow\"\n"
    } else {
        ""
    };
    format!(
        "[pipeline]\nbatch_size = 4\n\n[sources.in]\n{source}\non_bad_record = \"{policy}\"\n\n[sinks.out]\ntype = \"ipc\"\ninputs = [\"in\"]\npath = \"out.arrow\"\n{dead}"
    )
}

fn ids(scratch: &Scratch) -> Vec<i64> {
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    out.column(0).as_primitive::<Int64Type>().values().to_vec()
}

fn dead(scratch: &Scratch) -> Vec<(String, String, String, String)> {
    let dead = read_ipc(&scratch.path("dead.arrow")).unwrap();
    let col = |name: &str| {
        dead.column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone()
    };
    let (file, location, record, error) = (
        col("_file"),
        col("_location"),
        col("_record"),
        col("_error"),
    );
    (0..dead.num_rows())
        .map(|i| {
            let file = std::path::Path::new(file.value(i))
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                file,
                location.value(i).to_string(),
                record.value(i).to_string(),
                error.value(i).to_string(),
            )
        })
        .collect()
}

const CSV: &str = "id,amount\n1,1.5\n2,2.5\n3,oops\n4,4.5\n5,5.5\n6,6.5,extra\n7,7.5\n";
const CSV_SOURCE: &str = "type = \"csv\"\npath = \"in.csv\"\nschema = [{ name = \"id\", type = \"int64\" }, { name = \"amount\", type = \"float64\" }]";

#[test]
fn malformed_csv_fails_naming_file_line_and_text() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let err = scratch
        .run(&pipeline(CSV_SOURCE, "fail"))
        .expect_err("must fail")
        .to_string();
    assert!(
        err.contains("in.csv") && err.contains("line 4") && err.contains("oops"),
        "{err}"
    );
    assert!(!scratch.path("out.arrow").exists());
}

#[test]
fn malformed_csv_rows_are_skipped_and_the_rest_arrive_in_order() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    let summary = scratch.run(&pipeline(CSV_SOURCE, "skip")).unwrap();
    assert_eq!(ids(&scratch), [1, 2, 4, 5, 7]);
    assert_eq!(summary.node("in").unwrap().dead_rows, 2);
}

#[test]
fn malformed_csv_rows_go_to_the_dead_letter_sink_with_line_and_text() {
    let scratch = Scratch::new();
    scratch.write("in.csv", CSV);
    scratch.run(&pipeline(CSV_SOURCE, "dead_letter")).unwrap();
    assert_eq!(ids(&scratch), [1, 2, 4, 5, 7]);
    let dead = dead(&scratch);
    assert_eq!(dead.len(), 2);
    assert_eq!(
        (dead[0].0.as_str(), dead[0].1.as_str(), dead[0].2.as_str()),
        ("in.csv", "line 4", "3,oops")
    );
    assert!(dead[0].3.contains("oops"), "{}", dead[0].3);
    assert_eq!(
        (dead[1].1.as_str(), dead[1].2.as_str()),
        ("line 7", "6,6.5,extra")
    );
    assert!(
        dead[1].3.contains("expected 2 fields, found 3"),
        "{}",
        dead[1].3
    );
}

const NDJSON: &str = "{\"id\":1,\"name\":\"a\"}\n{\"id\":\"two\",\"name\":\"b\"}\n\n{\"id\":3,\"name\":\"c\"}\n{broken\n{\"id\":5,\"name\":\"e\"}\n";
const NDJSON_SOURCE: &str = "type = \"ndjson\"\npath = \"in.ndjson\"\nschema = [{ name = \"id\", type = \"int64\" }, { name = \"name\", type = \"utf8\" }]";

#[test]
fn ndjson_not_matching_the_schema_under_each_policy() {
    let scratch = Scratch::new();
    scratch.write("in.ndjson", NDJSON);
    let err = scratch
        .run(&pipeline(NDJSON_SOURCE, "fail"))
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("in.ndjson"), "{err}");

    let scratch = Scratch::new();
    scratch.write("in.ndjson", NDJSON);
    scratch.run(&pipeline(NDJSON_SOURCE, "skip")).unwrap();
    assert_eq!(ids(&scratch), [1, 3, 5]);

    let scratch = Scratch::new();
    scratch.write("in.ndjson", NDJSON);
    scratch
        .run(&pipeline(NDJSON_SOURCE, "dead_letter"))
        .unwrap();
    assert_eq!(ids(&scratch), [1, 3, 5]);
    let dead = dead(&scratch);
    let where_: Vec<(&str, &str)> = dead.iter().map(|d| (d.1.as_str(), d.2.as_str())).collect();
    assert_eq!(
        where_,
        [
            ("line 2", "{\"id\":\"two\",\"name\":\"b\"}"),
            ("line 5", "{broken")
        ]
    );
}

fn write_parquet(path: &std::path::Path, first_id: i64, groups: usize) {
    let file = std::fs::File::create(path).unwrap();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, false),
    ]));
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
    let ids: Vec<i64> = (first_id..first_id + 100 * groups as i64).collect();
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids))]).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn truncated_parquet_file_under_each_policy() {
    for policy in ["fail", "skip", "dead_letter"] {
        let scratch = Scratch::new();
        write_parquet(&scratch.path("a.parquet"), 0, 1);
        write_parquet(&scratch.path("b.parquet"), 100, 1);
        let bytes = std::fs::read(scratch.path("b.parquet")).unwrap();
        std::fs::write(scratch.path("b.parquet"), &bytes[..bytes.len() / 2]).unwrap();
        let result = scratch.run(&pipeline(
            "type = \"parquet\"\npath = \"*.parquet\"",
            policy,
        ));
        if policy == "fail" {
            let err = result.expect_err("must fail").to_string();
            assert!(err.contains("b.parquet"), "{err}");
            continue;
        }
        result.unwrap();
        assert_eq!(
            ids(&scratch),
            (0..100).collect::<Vec<_>>(),
            "{policy}: a.parquet read whole"
        );
        if policy == "dead_letter" {
            let dead = dead(&scratch);
            assert_eq!(
                (dead[0].0.as_str(), dead[0].1.as_str()),
                ("b.parquet", "file")
            );
        }
    }
}

#[test]
fn corrupt_parquet_row_group_is_skipped_and_the_others_read() {
    let scratch = Scratch::new();
    write_parquet(&scratch.path("in.parquet"), 0, 3);
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::reader::SerializedFileReader::new(
            std::fs::File::open(scratch.path("in.parquet")).unwrap(),
        )
        .unwrap(),
    )
    .clone();
    // Scribble over the middle row group's compressed page data.
    let column = meta.row_group(1).column(0);
    let start = column.data_page_offset() as usize + 16;
    let mut bytes = std::fs::read(scratch.path("in.parquet")).unwrap();
    for b in &mut bytes[start..start + 64] {
        *b = 0xA5;
    }
    std::fs::write(scratch.path("in.parquet"), &bytes).unwrap();

    let err = scratch
        .run(&pipeline(
            "type = \"parquet\"\npath = \"in.parquet\"",
            "fail",
        ))
        .expect_err("must fail");
    assert!(err.to_string().contains("in.parquet"), "{err}");

    let expected: Vec<i64> = (0..100).chain(200..300).collect();
    for policy in ["skip", "dead_letter"] {
        let scratch = Scratch::new();
        std::fs::write(scratch.path("in.parquet"), &bytes).unwrap();
        let summary = scratch
            .run(&pipeline(
                "type = \"parquet\"\npath = \"in.parquet\"",
                policy,
            ))
            .unwrap();
        assert_eq!(ids(&scratch), expected, "{policy}");
        assert_eq!(summary.node("in").unwrap().dead_rows, 1, "{policy}");
        if policy == "dead_letter" {
            assert_eq!(dead(&scratch)[0].1, "row group 1");
        }
    }
}

#[test]
fn file_deleted_before_it_is_read_under_each_policy() {
    for policy in ["fail", "skip", "dead_letter"] {
        let scratch = Scratch::new();
        scratch.write("a.csv", "id\n1\n2\n");
        scratch.write("b.csv", "id\n3\n");
        scratch.write("c.csv", "id\n4\n");
        let manifest = scratch.write(
            "pipeline.toml",
            pipeline("type = \"csv\"\npath = \"*.csv\"", policy),
        );
        let graph =
            weir::graph::Graph::new(weir::manifest::Manifest::load(&manifest).unwrap()).unwrap();
        let prepared = graph.prepare(weir_tests::host()).unwrap();
        // Listed when the source opened, gone by the time it is read.
        std::fs::remove_file(scratch.path("b.csv")).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let result = runtime.block_on(weir::exec::run(&graph, prepared, Default::default()));
        if policy == "fail" {
            let err = result.expect_err("must fail").to_string();
            assert!(err.contains("b.csv"), "{err}");
            continue;
        }
        result.unwrap();
        assert_eq!(ids(&scratch), [1, 2, 4], "{policy}");
    }
}

#[test]
fn truncated_arrow_ipc_file_is_skipped_whole_under_skip() {
    let scratch = Scratch::new();
    let batch =
        RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)])
            .unwrap();
    for name in ["a.arrow", "b.arrow"] {
        let mut w = arrow::ipc::writer::FileWriter::try_new(
            std::fs::File::create(scratch.path(name)).unwrap(),
            &batch.schema(),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }
    let bytes = std::fs::read(scratch.path("b.arrow")).unwrap();
    std::fs::write(scratch.path("b.arrow"), &bytes[..bytes.len() - 20]).unwrap();
    let source = "type = \"ipc\"\npath = \"?.arrow\"";
    let err = scratch
        .run(&pipeline(source, "fail"))
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("b.arrow"), "{err}");
    let summary = scratch.run(&pipeline(source, "skip")).unwrap();
    assert_eq!(ids(&scratch), [1, 2, 3]);
    assert_eq!(summary.node("in").unwrap().dead_rows, 1);
}

#[test]
fn stdin_csv_bad_records_go_to_the_dead_letter_sink() {
    use std::io::Write;
    let scratch = Scratch::new();
    let manifest = scratch.write(
        "pipeline.toml",
        "[sources.in]\ntype = \"stdin\"\nformat = \"csv\"\nschema = [{ name = \"id\", type = \"int64\" }]\non_bad_record = \"dead_letter\"\n\n[sinks.out]\ntype = \"ipc\"\ninputs = [\"in\"]\npath = \"out.arrow\"\n\n[sinks.dlq]\ntype = \"ipc\"\ninputs = [\"in.dead_letter\"]\npath = \"dead.arrow\"\n",
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir-under-test"))
        .args(["run", "--quiet"])
        .arg(&manifest)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"id\n1\nx\n3\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&scratch), [1, 3]);
    let dead = dead(&scratch);
    assert_eq!(
        (dead[0].0.as_str(), dead[0].1.as_str(), dead[0].2.as_str()),
        ("stdin", "line 3", "x")
    );
}

#[test]
fn a_source_failure_keeps_the_readers_error_typed_under_its_message() {
    let scratch = Scratch::new();
    write_parquet(&scratch.path("in.parquet"), 0, 1);
    let mut bytes = std::fs::read(scratch.path("in.parquet")).unwrap();
    // Damage inside the footer's thrift, which arrow-rs decodes.
    let n = bytes.len();
    bytes[n - 60..n - 20].fill(0x55);
    std::fs::write(scratch.path("in.parquet"), &bytes).unwrap();
    let err = scratch
        .run(&pipeline(
            "type = \"parquet\"\npath = \"in.parquet\"",
            "fail",
        ))
        .expect_err("a damaged footer");
    assert!(
        matches!(&err, weir::Error::Source { node, .. } if node == "in"),
        "{err:?}"
    );
    let cause = std::error::Error::source(&err)
        .and_then(|c| c.downcast_ref::<parquet::errors::ParquetError>())
        .unwrap_or_else(|| panic!("arrow-rs's ParquetError under {err:?}"));
    assert!(
        err.to_string().ends_with(&cause.to_string()),
        "the message says what the cause does: {err}"
    );
}

#[test]
fn a_sink_failure_keeps_the_io_error_typed_under_its_message() {
    let scratch = Scratch::new();
    scratch.write("in.csv", "id\n1\n");
    let err = scratch
        .run(
            "[sources.in]\ntype = \"csv\"\npath = \"in.csv\"\n\n[sinks.out]\ntype = \"csv\"\n\
             inputs = [\"in\"]\npath = \"in.csv/under/out.csv\"\n",
        )
        .expect_err("a directory under a file");
    let io = std::error::Error::source(&err)
        .and_then(|c| c.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("the io::Error under {err:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::NotADirectory, "{err}");
    assert!(err.to_string().contains("can't create directory"), "{err}");
}
