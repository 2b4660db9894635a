//! Files pyarrow writes — one per Arrow type and nested combination, IPC
//! and Parquet under every codec (`tests/reference/every_type.py`) — cross
//! the mapping and come back equal: schema, every batch, every slice.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{make_array, Array, RecordBatch};
use arrow::ipc::reader::FileReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use weir_wit_arrow::{array_from_wit, array_to_wit, schema_from_wit, schema_to_wit};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// pyarrow's files, written fresh into a scratch directory.
fn written_by_pyarrow() -> PathBuf {
    let out = std::env::temp_dir().join(format!("weir-every-type-{}", std::process::id()));
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `scripts/setup --test` makes it",
        python.display()
    );
    let status = Command::new(python)
        .arg(repo().join("tests/reference/every_type.py"))
        .arg(&out)
        .status()
        .expect("running every_type.py");
    assert!(status.success(), "every_type.py failed");
    out
}

fn read(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).expect("open");
    if path.extension().is_some_and(|e| e == "arrow") {
        FileReader::try_new(file, None)
            .expect("IPC file")
            .collect::<Result<_, _>>()
            .expect("IPC batches")
    } else {
        ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("Parquet file")
            .build()
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("Parquet batches")
    }
}

fn crosses_unchanged(name: &str, column: &dyn Array) {
    let back = array_from_wit(
        array_to_wit(&column.to_data()).unwrap_or_else(|e| panic!("{name}: encoding: {e}")),
        column.data_type(),
    )
    .unwrap_or_else(|e| panic!("{name}: decoding: {e}"));
    assert_eq!(make_array(back).as_ref(), column, "{name}");
}

#[test]
fn every_type_pyarrow_writes_crosses_the_mapping_unchanged() {
    let dir = written_by_pyarrow();
    let mut files = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("scratch dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let batches = read(&path);
        assert!(!batches.is_empty(), "{name}: no batches");
        let schema = batches[0].schema();
        let tree = schema_to_wit(&schema);
        assert_eq!(
            schema_from_wit(&tree).unwrap_or_else(|e| panic!("{name}: schema: {e}")),
            *schema,
            "{name}: schema"
        );
        for (i, batch) in batches.iter().enumerate() {
            let column = batch.column(0);
            crosses_unchanged(&format!("{name} batch {i}"), column);
            if column.len() > 2 {
                crosses_unchanged(&format!("{name} batch {i} slice"), &column.slice(1, 2));
            }
        }
        files += 1;
    }
    std::fs::remove_dir_all(&dir).ok();
    // 57 IPC files, and 6 codecs × the 38 types Parquet holds.
    assert_eq!(files, 57 + 6 * 38, "files pyarrow wrote");
}
