//! Damaged files other tools wrote (`tests/corpus/`, made by
//! `tests/corpus/make.py` from pyarrow output: truncations, flipped bytes,
//! lying lengths, bad records), read under every `on_bad_record` policy:
//! never a panic; under `fail` an error naming the file and the position
//! (line, row group); under `skip` and `dead_letter` every good row kept
//! and each bad record counted once.

use std::path::{Path, PathBuf};

use weir_tests::{read_ipc, repo, toml_path, Scratch};

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("tests/corpus/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn corpus(kind: &str) -> Vec<(PathBuf, serde_json::Value)> {
    let expected = expected();
    let verdicts = expected[kind].as_object().unwrap();
    assert!(verdicts.len() >= 6, "{kind}: {verdicts:?}");
    verdicts
        .iter()
        .map(|(name, verdict)| {
            (
                repo().join("tests/corpus").join(kind).join(name),
                verdict.clone(),
            )
        })
        .collect()
}

/// `[sources.in]` reading `path` as `kind` under `policy`, into `out.arrow`
/// (and `dead.arrow` for dead letters).
fn manifest(kind: &str, path: &Path, policy: &str) -> String {
    let schema = match kind {
        "csv" => "schema = [{ name = \"id\", type = \"int64\" }, { name = \"name\", type = \"utf8\" }, { name = \"amount\", type = \"float64\" }]",
        "ndjson" => "schema = [{ name = \"id\", type = \"int64\" }, { name = \"name\", type = \"utf8\" }]",
        _ => "",
    };
    let dead = if policy == "dead_letter" {
        "[sinks.dead]\ntype = \"ipc\"\ninputs = [\"in.dead_letter\"]\npath = \"dead.arrow\"\n"
    } else {
        ""
    };
    format!(
        "[sources.in]\ntype = \"{kind}\"\npath = {}\non_bad_record = \"{policy}\"\n{schema}\n\n\
         [sinks.out]\ntype = \"ipc\"\ninputs = [\"in\"]\npath = \"out.arrow\"\n\n{dead}",
        toml_path(path)
    )
}

fn rows(scratch: &Scratch, file: &str) -> usize {
    read_ipc(&scratch.path(file))
        .map(|b| b.num_rows())
        .unwrap_or(0)
}

fn text_records_are_named_by_line_and_salvaged(kind: &str) {
    for (file, verdict) in corpus(kind) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let line = verdict["line"].as_u64().unwrap();
        let good = verdict["good"].as_u64().unwrap() as usize;

        let err = Scratch::new()
            .run(&manifest(kind, &file, "fail"))
            .expect_err(&name)
            .to_string();
        assert!(
            err.contains("source \"in\"")
                && err.contains(&name)
                && err.contains(&format!("line {line}:")),
            "{name}: {err}"
        );

        for policy in ["skip", "dead_letter"] {
            let scratch = Scratch::new();
            let summary = scratch
                .run(&manifest(kind, &file, policy))
                .unwrap_or_else(|e| panic!("{name} under {policy}: {e}"));
            assert_eq!(rows(&scratch, "out.arrow"), good, "{name} under {policy}");
            assert_eq!(
                summary.node("in").unwrap().dead_rows,
                1,
                "{name} under {policy}"
            );
            if policy == "dead_letter" {
                assert_eq!(rows(&scratch, "dead.arrow"), 1, "{name}");
            }
        }
    }
}

#[test]
fn damaged_csv_files_fail_naming_file_and_line_or_keep_every_good_row() {
    text_records_are_named_by_line_and_salvaged("csv");
}

#[test]
fn damaged_ndjson_files_fail_naming_file_and_line_or_keep_every_good_row() {
    text_records_are_named_by_line_and_salvaged("ndjson");
}

/// Each damaged Parquet file after an intact one (`*.parquet`: the intact
/// file gives the schema): where pyarrow rejects the file, weir fails
/// naming it and the row group or footer, or under `skip`/`dead_letter`
/// keeps the intact file and every readable row group of the damaged one;
/// where pyarrow reads it, weir reads the same rows.
#[test]
fn damaged_parquet_files_fail_naming_file_and_row_group_or_keep_what_is_readable() {
    let intact = 300;
    for (file, verdict) in corpus("parquet") {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let scratch = Scratch::new();
        std::fs::create_dir_all(scratch.path("in")).unwrap();
        std::fs::write(scratch.path("in/a-intact.parquet"), parquet_of(300)).unwrap();
        std::fs::copy(&file, scratch.path(&format!("in/b-{name}"))).unwrap();
        let glob = scratch.path("in/*.parquet");
        for policy in ["fail", "skip", "dead_letter"] {
            let result = scratch.run(&manifest("parquet", &glob, policy));
            match verdict.get("rows") {
                Some(rows) => {
                    result.unwrap_or_else(|e| panic!("{name} under {policy}: {e}"));
                    assert_eq!(
                        self::rows(&scratch, "out.arrow"),
                        intact + rows.as_u64().unwrap() as usize,
                        "{name} under {policy}"
                    );
                }
                None if policy == "fail" => {
                    let err = result.expect_err(&name).to_string();
                    assert!(
                        err.contains(&format!("b-{name}"))
                            && (err.contains("row group") || err.contains("footer")),
                        "{name}: {err}"
                    );
                }
                None => {
                    let summary = result.unwrap_or_else(|e| panic!("{name} under {policy}: {e}"));
                    let read = self::rows(&scratch, "out.arrow");
                    assert!(
                        (intact..intact + 300).contains(&read),
                        "{name} under {policy}: {read}"
                    );
                    assert!(
                        summary.node("in").unwrap().dead_rows >= 1,
                        "{name} under {policy}"
                    );
                }
            }
        }
    }
}

/// An intact Parquet file of `rows` rows shaped like the corpus's.
fn parquet_of(rows: i64) -> Vec<u8> {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;

    // Nullable, as pyarrow writes them.
    let batch = RecordBatch::try_from_iter_with_nullable([
        (
            "id",
            Arc::new(Int64Array::from_iter_values(0..rows)) as _,
            true,
        ),
        (
            "name",
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("name-{i}")),
            )) as _,
            true,
        ),
        (
            "amount",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| i as f64 * 0.25),
            )) as _,
            true,
        ),
    ])
    .unwrap();
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

/// An IPC file whose footer places a record batch far past its end (found
/// by the `ipc` fuzz target: arrow-rs would first allocate the stated
/// 512 GiB): an error naming the file and the block, before any read.
#[test]
fn an_ipc_footer_placing_a_block_outside_the_file_is_an_error_not_an_allocation() {
    let file = repo().join("tests/corpus/ipc-footer/lying-block-length.arrow");
    for policy in ["fail", "skip"] {
        let err = Scratch::new()
            .run(&manifest("ipc", &file, policy))
            .expect_err("the only file can't be read")
            .to_string();
        assert!(
            err.contains("lying-block-length.arrow")
                && err.contains("record batch block 0")
                && err.contains("outside the file"),
            "{policy}: {err}"
        );
    }
}

/// A Parquet page header declaring a list of 2^31 doubles past the end of
/// a 3 KB file (found by the `parquet` fuzz target): arrow-rs skipped it
/// one empty read at a time (77 s); weir stops at the first read past the
/// end, naming the file and the row groups.
#[test]
fn a_parquet_page_header_lying_past_the_end_of_the_file_fails_at_once() {
    let file = repo().join("tests/corpus/parquet-header/lying-list-length.parquet");
    let err = Scratch::new()
        .run(&manifest("parquet", &file, "fail"))
        .expect_err("the file is unreadable")
        .to_string();
    assert!(
        err.contains("lying-list-length.parquet")
            && err.contains("row group")
            && err.contains("read past the end of the file"),
        "{err}"
    );
    let scratch = Scratch::new();
    let summary = scratch.run(&manifest("parquet", &file, "skip")).unwrap();
    assert_eq!(summary.node("in").unwrap().dead_rows, 2, "both row groups");
}

/// A Parquet footer whose root claims 671 million children (found by the
/// `parquet` fuzz target: arrow-rs reserves room for them first, 5 GiB,
/// and where the system refuses, the process aborts): refused before
/// arrow-rs reads it, naming the file and the schema element.
#[test]
fn a_parquet_footer_claiming_children_it_lacks_is_refused_before_any_allocation() {
    let file = repo().join("tests/corpus/parquet-header/lying-num-children.parquet");
    let err = Scratch::new()
        .run(&manifest("parquet", &file, "fail"))
        .expect_err("the footer lies")
        .to_string();
    assert!(
        err.contains("lying-num-children.parquet: can't read the footer: schema element 0 claims 671088540 children"),
        "{err}"
    );
}
