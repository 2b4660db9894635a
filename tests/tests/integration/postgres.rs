//! The `postgres` sink against a real PostgreSQL server (Debian's
//! `postgresql`, started on loopback by `scripts/postgres`).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, UInt16Array, UInt32Array, UInt64Array,
    UInt8Array,
};
use weir_tests::{plugins, postgres, postgres_url, toml_path, unique_table, Scratch};

fn sink(table: &str, extra: &str) -> String {
    format!(
        "[sinks.db]\ntype = \"postgres\"\ninputs = [\"orders\"]\nurl = \"{}\"\ntable = \"{table}\"\n{extra}\n",
        postgres_url()
    )
}

fn csv_pipeline(table: &str, extra: &str) -> String {
    format!(
        "[sources.orders]\ntype = \"csv\"\npath = \"orders.csv\"\n\n{}",
        sink(table, extra)
    )
}

fn count(table: &str) -> i64 {
    postgres()
        .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
        .unwrap()
        .get(0)
}

#[test]
fn postgres_upsert_loaded_twice_leaves_the_table_as_loaded_once() {
    let scratch = Scratch::new();
    // Duplicate ids, within a batch and across batches: the last one wins.
    let mut csv = String::from("id,amount,status\n");
    for i in 0..5000 {
        csv.push_str(&format!("{},{}.5,s{}\n", i % 3000, i, i % 7));
    }
    scratch.write("orders.csv", csv);
    let table = unique_table("upsert");
    let manifest = csv_pipeline(&table, "mode = \"upsert\"\nkey = [\"id\"]");
    scratch.run(&manifest).unwrap();
    let first: Vec<(i64, f64, String)> = rows(&table);
    scratch.run(&manifest).unwrap();
    let second = rows(&table);
    assert_eq!(first.len(), 3000);
    assert_eq!(first, second, "a second load changes nothing");
    // id 5 appeared at lines 5 and 3005: the later row is kept.
    assert_eq!(first[5], (5, 3005.5, "s2".to_string()));
}

fn rows(table: &str) -> Vec<(i64, f64, String)> {
    postgres()
        .query(
            &format!("SELECT id, amount, status FROM \"{table}\" ORDER BY id"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn postgres_every_mapped_type_round_trips() {
    let scratch = Scratch::new();
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "b",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-128), Some(127), None])),
        ),
        (
            "i16",
            Arc::new(Int16Array::from(vec![Some(-32768), Some(7), None])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![Some(i32::MIN), Some(i32::MAX), None])),
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(i64::MAX), None])),
        ),
        (
            "u8",
            Arc::new(UInt8Array::from(vec![Some(0), Some(255), None])),
        ),
        (
            "u16",
            Arc::new(UInt16Array::from(vec![Some(0), Some(65535), None])),
        ),
        (
            "u32",
            Arc::new(UInt32Array::from(vec![Some(0), Some(u32::MAX), None])),
        ),
        (
            "u64",
            Arc::new(UInt64Array::from(vec![
                Some(0),
                Some(i64::MAX as u64),
                None,
            ])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![Some(1.5), Some(-0.25), None])),
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![Some(1e300), Some(-2.5), None])),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![Some("héllo"), Some(""), None])),
        ),
        (
            "bin",
            Arc::new(BinaryArray::from(vec![
                Some(&[0u8, 255][..]),
                Some(&[][..]),
                None,
            ])),
        ),
        // 1969-12-31, 2024-02-29
        (
            "d",
            Arc::new(Date32Array::from(vec![Some(-1), Some(19782), None])),
        ),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(-1),
                Some(1_709_164_800_123_456),
                None,
            ])),
        ),
        (
            "tstz",
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(0), Some(1_709_164_800_123), None])
                    .with_timezone("+02:00"),
            ),
        ),
        (
            "dec",
            Arc::new(
                Decimal128Array::from(vec![Some(12_345_678), Some(-12), None])
                    .with_precision_and_scale(12, 3)
                    .unwrap(),
            ),
        ),
        (
            "j",
            Arc::new(StringArray::from(vec![
                Some(r#"{"a": [1, "x"]}"#),
                Some("2.5"),
                None,
            ])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    weir_tests::write_ipc(&scratch.path("in.arrow"), &batch);
    let table = unique_table("types");
    scratch
        .run(&format!(
            "[sources.orders]\ntype = \"ipc\"\npath = \"in.arrow\"\n\n{}",
            sink(&table, "json = [\"j\"]")
        ))
        .unwrap();
    let mut client = postgres();
    client.batch_execute("SET TIME ZONE 'UTC'").unwrap();
    let types: Vec<String> = client
        .query(
            "SELECT data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        types,
        [
            "boolean",
            "smallint",
            "smallint",
            "integer",
            "bigint",
            "smallint",
            "integer",
            "bigint",
            "bigint",
            "real",
            "double precision",
            "text",
            "bytea",
            "date",
            "timestamp without time zone",
            "timestamp with time zone",
            "numeric",
            "jsonb"
        ]
    );
    let text: Vec<Vec<Option<String>>> = client
        .query(
            &format!(
                "SELECT b::text, i8::text, i16::text, i32::text, i64::text, u8::text, u16::text, \
                 u32::text, u64::text, f32::text, f64::text, s, encode(bin, 'hex'), d::text, \
                 ts::text, tstz::text, dec::text, j::text FROM \"{table}\" ORDER BY i16 NULLS LAST"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (0..18).map(|i| r.get(i)).collect())
        .collect();
    let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(
        text[0],
        some(&[
            "true",
            "-128",
            "-32768",
            "-2147483648",
            "-9223372036854775808",
            "0",
            "0",
            "0",
            "0",
            "1.5",
            "1e+300",
            "héllo",
            "00ff",
            "1969-12-31",
            "1969-12-31 23:59:59.999999",
            "1970-01-01 00:00:00+00",
            "12345.678",
            r#"{"a": [1, "x"]}"#
        ])
    );
    assert_eq!(
        text[1],
        some(&[
            "false",
            "127",
            "7",
            "2147483647",
            "9223372036854775807",
            "255",
            "65535",
            "4294967295",
            "9223372036854775807",
            "-0.25",
            "-2.5",
            "",
            "",
            "2024-02-29",
            "2024-02-29 00:00:00.123456",
            "2024-02-29 00:00:00.123+00",
            "-0.012",
            "2.5"
        ])
    );
    assert_eq!(text[2], vec![None; 18], "nulls stay null");
}

#[test]
fn postgres_run_transaction_leaves_nothing_when_the_run_fails() {
    let scratch = Scratch::new();
    let table = unique_table("atomic");
    let err = scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 100

            [sources.gen]
            type = "generate"
            rows = 1000

            [transforms.orders]
            plugin = {}
            inputs = ["gen"]
            config = {{ mode = "trap-rows", seqs = [750] }}

            {}
            "#,
            toml_path(plugins::HOSTILE.as_ref()),
            sink(&table, "")
        ))
        .expect_err("the plugin fails at row 750");
    assert!(err.to_string().contains("poison row"), "{err}");
    // Seven batches reached the database, inside the run's transaction.
    assert_eq!(count(&table), 0, "nothing committed");
}

#[test]
fn postgres_constraint_violation_names_the_table_and_the_row() {
    let scratch = Scratch::new();
    let table = unique_table("checked");
    postgres()
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (id bigint, amount double precision CHECK (amount > 0))"
        ))
        .unwrap();
    scratch.write("orders.csv", "id,amount\n1,5.0\n2,3.0\n3,-1.0\n4,2.0\n");
    let err = scratch
        .run(&csv_pipeline(&table, ""))
        .expect_err("a CHECK violation")
        .to_string();
    assert!(err.contains(&table), "{err}");
    assert!(err.contains("check constraint"), "{err}");
    assert!(err.contains("line 3"), "the failing row: {err}");
    assert_eq!(count(&table), 0);
}

#[test]
fn postgres_rejected_load_keeps_the_servers_error_typed_with_its_sqlstate() {
    let scratch = Scratch::new();
    let table = unique_table("typed");
    postgres()
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (id bigint PRIMARY KEY, amount double precision)"
        ))
        .unwrap();
    scratch.write("orders.csv", "id,amount\n1,5.0\n1,3.0\n");
    let err = scratch
        .run(&csv_pipeline(&table, ""))
        .expect_err("a duplicate key");
    let db = std::error::Error::source(&err)
        .and_then(|c| c.downcast_ref::<::postgres::Error>())
        .unwrap_or_else(|| panic!("the client's error under {err:?}"));
    assert_eq!(
        db.code(),
        Some(&::postgres::error::SqlState::UNIQUE_VIOLATION),
        "{err}"
    );
    // The message reads whole: the server's message and detail.
    assert!(err.to_string().contains("(id)=(1)"), "{err}");
}

#[test]
fn postgres_connection_killed_mid_load_loses_and_duplicates_nothing() {
    let scratch = Scratch::new();
    let table = unique_table("killed");
    let app = format!("weir_{table}");
    let manifest = format!(
        r#"
        [pipeline]
        batch_size = 200

        [sources.orders]
        type = "generate"
        rows = 6000
        rate = 4000.0

        [sinks.db]
        type = "postgres"
        inputs = ["orders"]
        url = "{}?application_name={app}"
        table = "{table}"
        transaction = "batch"
        "#,
        postgres_url()
    );
    let killer = std::thread::spawn(move || {
        let mut client = postgres();
        let mut kills = 0;
        // Kill the sink's connection three times while it loads.
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(150));
            let killed: bool = client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity \
                     WHERE application_name = $1",
                    &[&app],
                )
                .unwrap()
                .get(0);
            kills += killed as u32;
            if kills == 3 {
                break;
            }
        }
        kills
    });
    let summary = scratch.run(&manifest).unwrap();
    let kills = killer.join().unwrap();
    assert!(kills >= 1, "the connection was killed mid-load");
    let (rows, distinct): (i64, i64) = {
        let r = postgres()
            .query_one(
                &format!("SELECT count(*), count(DISTINCT seq) FROM \"{table}\""),
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(summary.node("db").unwrap().rows_in, 6000);
    assert_eq!(
        (rows, distinct),
        (6000, 6000),
        "every row once after {kills} kills"
    );
}

#[test]
fn postgres_source_streams_a_table_through_a_cursor_into_another_table() {
    let from = unique_table("src");
    let to = unique_table("copy");
    postgres()
        .batch_execute(&format!(
            "CREATE TABLE \"{from}\" AS SELECT i AS id, (i % 2 = 0) AS even, (i * 1.5)::float8 AS x, \
             ('n' || i)::varchar(20) AS name, DATE '2024-01-01' + i AS day, \
             TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL '1 second' AS at, \
             CASE WHEN i % 7 = 0 THEN NULL ELSE jsonb_build_object('i', i) END AS doc \
             FROM generate_series(1, 10000) i"
        ))
        .unwrap();
    let scratch = Scratch::new();
    let summary = scratch
        .run(&format!(
            "[sources.orders]\ntype = \"postgres\"\nurl = \"{}\"\ntable = \"{from}\"\nbatch_size = 1000\n\n{}",
            postgres_url(),
            sink(&to, "json = [\"doc\"]")
        ))
        .unwrap();
    assert_eq!(summary.node("orders").unwrap().batches_out, 10);
    let differ: i64 = postgres()
        .query_one(
            &format!(
                "SELECT count(*) FROM ((SELECT * FROM \"{from}\" EXCEPT SELECT * FROM \"{to}\") \
                 UNION ALL (SELECT * FROM \"{to}\" EXCEPT SELECT * FROM \"{from}\")) d"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(differ, 0, "every row and value survives the round trip");
    assert_eq!(count(&to), 10_000);
}

#[test]
fn postgres_source_reads_only_rows_after_the_incremental_position() {
    let from = unique_table("inc");
    postgres()
        .batch_execute(&format!(
            "CREATE TABLE \"{from}\" AS SELECT i AS id FROM generate_series(1, 100) i"
        ))
        .unwrap();
    let scratch = Scratch::new();
    let to = unique_table("inc_out");
    scratch
        .run(&format!(
            "[sources.orders]\ntype = \"postgres\"\nurl = \"{}\"\nquery = \"SELECT id FROM \\\"{from}\\\" WHERE id % 2 = 0\"\nincremental = {{ column = \"id\", after = \"90\" }}\n\n{}",
            postgres_url(),
            sink(&to, "")
        ))
        .unwrap();
    let ids: Vec<i32> = postgres()
        .query(&format!("SELECT id FROM \"{to}\" ORDER BY id"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![92, 94, 96, 98, 100]);
}

#[test]
fn postgres_source_names_a_column_it_cannot_read() {
    let scratch = Scratch::new();
    let err = scratch
        .check(&format!(
            "[sources.orders]\ntype = \"postgres\"\nurl = \"{}\"\nquery = \"SELECT point(1, 2) AS token\"\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"orders\"]\n",
            postgres_url()
        ))
        .err()
        .expect("point has no mapping")
        .to_string();
    assert!(err.contains("\"token\"") && err.contains("::text"), "{err}");
}

#[test]
fn postgres_skip_rolls_back_only_the_rejected_batch_in_either_transaction_scope() {
    for scope in ["run", "batch"] {
        let scratch = Scratch::new();
        let table = unique_table("skip");
        postgres()
            .batch_execute(&format!(
                "CREATE TABLE \"{table}\" (id bigint PRIMARY KEY, amount double precision CHECK (amount > 0))"
            ))
            .unwrap();
        // Batches of 2: the second holds the bad row, the others load.
        scratch.write(
            "orders.csv",
            "id,amount\n1,5.0\n2,3.0\n3,-1.0\n4,2.0\n5,1.0\n6,7.0\n",
        );
        scratch
            .run(&format!(
                "[pipeline]\nbatch_size = 2\n\n{}",
                csv_pipeline(
                    &table,
                    &format!("on_error = \"skip\"\ntransaction = \"{scope}\"\nmode = \"upsert\"\nkey = [\"id\"]")
                )
            ))
            .unwrap_or_else(|e| panic!("{scope}: {e}"));
        let ids: Vec<i64> = postgres()
            .query(&format!("SELECT id FROM \"{table}\" ORDER BY id"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            ids,
            vec![1, 2, 5, 6],
            "{scope}: only the batch with id 3 is skipped"
        );
    }
}

#[test]
fn postgres_replace_run_four_times_leaves_the_rows_of_one_run() {
    let scratch = Scratch::new();
    let mut csv = String::from("id,amount,status\n");
    for i in 0..2087 {
        csv.push_str(&format!("{i},{i}.5,s{}\n", i % 7));
    }
    scratch.write("orders.csv", &csv);
    let table = unique_table("replace");
    let manifest = csv_pipeline(&table, "mode = \"replace\"\nkey = [\"id\"]");
    for _ in 0..4 {
        scratch.run(&manifest).unwrap();
    }
    assert_eq!(count(&table), 2087, "replace, not append");
    scratch.write("orders.csv", "id,amount,status\n1,9.5,new\n");
    scratch.run(&manifest).unwrap();
    assert_eq!(rows(&table), [(1, 9.5, "new".to_string())]);
    let staging: i64 = postgres()
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = $1",
            &[&format!("{table}__weir_new")],
        )
        .unwrap()
        .get(0);
    assert_eq!(staging, 0, "no staging table left behind");
}

#[test]
fn postgres_replace_keeps_the_old_table_for_readers_until_the_run_succeeds() {
    let scratch = Scratch::new();
    scratch.write("orders.csv", "id,amount,status\n1,1.5,a\n2,2.5,b\n");
    let table = unique_table("replace_fail");
    let manifest = csv_pipeline(&table, "mode = \"replace\"");
    scratch.run(&manifest).unwrap();
    let mut csv = String::from("id,amount,status\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{i},{i}.5,x\n"));
    }
    csv.push_str("oops,1.5,x\n");
    scratch.write("orders.csv", csv);
    scratch
        .run(&manifest)
        .expect_err("the bad record fails the run");
    assert_eq!(
        rows(&table),
        [(1, 1.5, "a".to_string()), (2, 2.5, "b".to_string())],
        "the old table, whole"
    );
}

#[test]
fn postgres_replace_with_batch_transactions_is_refused_saying_why() {
    let scratch = Scratch::new();
    scratch.write("orders.csv", "id,amount,status\n1,1.5,a\n");
    let err = scratch
        .check(&csv_pipeline(
            &unique_table("r"),
            "mode = \"replace\"\ntransaction = \"batch\"",
        ))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("needs transaction = \"run\""), "{err}");
}

#[test]
fn nested_orders_example_matches_pandas_json_normalize() {
    let example = weir_tests::repo().join("examples/nested-orders");
    let orders = std::fs::read_to_string(example.join("orders.json")).unwrap();
    let api = weir_tests::api::serve(move |_| weir_tests::api::Response::json(orders.clone()));
    let table = unique_table("nested_orders");
    let manifest = std::fs::read_to_string(example.join("pipeline.toml"))
        .unwrap()
        .replace(
            "http://127.0.0.1:8766/orders.json",
            &format!("{}/orders.json", api.base),
        )
        .replace("../../target/plugins/filter.wasm", plugins::FILTER)
        .replace("../../target/plugins/dedupe.wasm", plugins::DEDUPE)
        .replace("../../target/plugins/rename.wasm", plugins::RENAME)
        .replace(
            "table = \"orders_nested\"",
            &format!("table = \"{table}\"\nurl = \"{}\"", postgres_url()),
        );
    let scratch = Scratch::new();
    scratch.run(&manifest).unwrap();
    let check = std::process::Command::new(weir_tests::repo().join(".venv/bin/python"))
        .arg(weir_tests::repo().join("tests/reference/nested_orders.py"))
        .arg(example.join("orders.json"))
        .arg(postgres_url())
        .arg(&table)
        .output()
        .expect("running nested_orders.py (scripts/setup --test makes .venv)");
    assert!(
        check.status.success(),
        "weir's table differs from pandas':\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("4 rows"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
