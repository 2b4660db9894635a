//! The `sqlite` sink and source: the embedded, zero-set-up database.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Float64Array, Int64Array,
    RecordBatch, StringArray,
};
use arrow::datatypes::{Float64Type, Int64Type};
use weir_tests::{plugins, read_ipc, toml_path, Scratch};

fn rows(db: &std::path::Path, sql: &str) -> Vec<(i64, f64, String)> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn sqlite_upsert_loaded_twice_leaves_the_table_as_loaded_once() {
    let scratch = Scratch::new();
    let mut csv = String::from("id,amount,status\n");
    for i in 0..5000 {
        csv.push_str(&format!("{},{}.5,s{}\n", i % 3000, i, i % 7));
    }
    scratch.write("orders.csv", csv);
    let manifest = "[sources.orders]\ntype = \"csv\"\npath = \"orders.csv\"\n\n[sinks.db]\ntype = \"sqlite\"\ninputs = [\"orders\"]\npath = \"out/shop.db\"\ntable = \"orders\"\nmode = \"upsert\"\nkey = [\"id\"]\n";
    scratch.run(manifest).unwrap();
    let db = scratch.path("out/shop.db");
    let first = rows(&db, "SELECT id, amount, status FROM orders ORDER BY id");
    scratch.run(manifest).unwrap();
    assert_eq!(
        first,
        rows(&db, "SELECT id, amount, status FROM orders ORDER BY id")
    );
    assert_eq!(first.len(), 3000);
    assert_eq!(
        first[5],
        (5, 3005.5, "s2".to_string()),
        "the later row wins"
    );
}

#[test]
fn sqlite_sink_and_source_round_trip_every_type() {
    let scratch = Scratch::new();
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "id",
            Arc::new(Int64Array::from(vec![Some(1), Some(i64::MAX), None])),
        ),
        (
            "x",
            Arc::new(Float64Array::from(vec![Some(1.5), Some(-1e300), None])),
        ),
        (
            "ok",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
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
        (
            "day",
            Arc::new(Date32Array::from(vec![Some(19782), Some(-1), None])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    weir_tests::write_ipc(&scratch.path("in.arrow"), &batch);
    scratch
        .run("[sources.orders]\ntype = \"ipc\"\npath = \"in.arrow\"\n\n[sinks.db]\ntype = \"sqlite\"\ninputs = [\"orders\"]\npath = \"t.db\"\ntable = \"t\"\n")
        .unwrap();
    scratch
        .run("[pipeline]\nbatch_size = 2\n\n[sources.back]\ntype = \"sqlite\"\npath = \"t.db\"\ntable = \"t\"\n\n[sinks.out]\ntype = \"ipc\"\ninputs = [\"back\"]\npath = \"out.arrow\"\n")
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let id = out
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(
        (id.value(0), id.value(1), id.is_null(2)),
        (1, i64::MAX, true)
    );
    let x = out
        .column_by_name("x")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!((x.value(0), x.value(1), x.is_null(2)), (1.5, -1e300, true));
    let ok = out
        .column_by_name("ok")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(
        (ok.value(0), ok.value(1)),
        (1, 0),
        "booleans are INTEGER 1/0"
    );
    let s = out.column_by_name("s").unwrap().as_string::<i32>();
    assert_eq!((s.value(0), s.value(1), s.is_null(2)), ("héllo", "", true));
    let bin = out.column_by_name("bin").unwrap().as_binary::<i32>();
    assert_eq!((bin.value(0), bin.value(1)), (&[0u8, 255][..], &[][..]));
    let day = out.column_by_name("day").unwrap().as_string::<i32>();
    assert_eq!(
        (day.value(0), day.value(1)),
        ("2024-02-29", "1969-12-31"),
        "dates as ISO text"
    );
}

#[test]
fn sqlite_run_transaction_leaves_nothing_when_the_run_fails() {
    let scratch = Scratch::new();
    let err = scratch
        .run(&format!(
            "[pipeline]\nbatch_size = 100\n\n[sources.gen]\ntype = \"generate\"\nrows = 1000\n\n[transforms.orders]\nplugin = {}\ninputs = [\"gen\"]\nconfig = {{ mode = \"trap-rows\", seqs = [750] }}\n\n[sinks.db]\ntype = \"sqlite\"\ninputs = [\"orders\"]\npath = \"t.db\"\ntable = \"t\"\n",
            toml_path(plugins::HOSTILE.as_ref())
        ))
        .expect_err("the plugin fails at row 750");
    assert!(err.to_string().contains("poison row"), "{err}");
    let connection = rusqlite::Connection::open(scratch.path("t.db")).unwrap();
    let count: i64 = connection
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0, "seven batches were written, none committed");
}

#[test]
fn sqlite_skip_rolls_back_only_the_rejected_batch() {
    let scratch = Scratch::new();
    let db = scratch.path("t.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, amount REAL CHECK (amount > 0))")
        .unwrap();
    scratch.write(
        "orders.csv",
        "id,amount\n1,5.0\n2,3.0\n3,-1.0\n4,2.0\n5,1.0\n6,7.0\n",
    );
    scratch
        .run("[pipeline]\nbatch_size = 2\n\n[sources.orders]\ntype = \"csv\"\npath = \"orders.csv\"\n\n[sinks.db]\ntype = \"sqlite\"\ninputs = [\"orders\"]\npath = \"t.db\"\ntable = \"t\"\non_error = \"skip\"\n")
        .unwrap();
    let connection = rusqlite::Connection::open(&db).unwrap();
    let ids: Vec<i64> = connection
        .prepare("SELECT id FROM t ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, vec![1, 2, 5, 6]);
}

#[test]
fn sqlite_replace_run_four_times_leaves_the_rows_of_one_run() {
    let scratch = Scratch::new();
    let mut csv = String::from("id,amount,status\n");
    for i in 0..2087 {
        csv.push_str(&format!("{i},{i}.5,s{}\n", i % 7));
    }
    scratch.write("orders.csv", &csv);
    let manifest = "[sources.orders]\ntype = \"csv\"\npath = \"orders.csv\"\n\n[sinks.db]\ntype = \"sqlite\"\ninputs = [\"orders\"]\npath = \"out/shop.db\"\ntable = \"orders\"\nmode = \"replace\"\n";
    for _ in 0..4 {
        scratch.run(manifest).unwrap();
    }
    let db = scratch.path("out/shop.db");
    let got = rows(&db, "SELECT id, amount, status FROM orders ORDER BY id");
    assert_eq!(got.len(), 2087, "replace, not append");
    // The next run's input changed: the table is the new input, whole.
    scratch.write("orders.csv", "id,amount,status\n1,9.5,new\n");
    scratch.run(manifest).unwrap();
    assert_eq!(
        rows(&db, "SELECT id, amount, status FROM orders"),
        [(1, 9.5, "new".to_string())]
    );
    let tables: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "no staging table left behind");
}

#[test]
fn sqlite_replace_leaves_the_old_table_whole_when_the_run_fails() {
    let scratch = Scratch::new();
    scratch.write("orders.csv", "id,amount,status\n1,1.5,a\n2,2.5,b\n");
    let manifest = "[sources.orders]\ntype = \"csv\"\npath = \"orders.csv\"\n\n[sinks.db]\ntype = \"sqlite\"\ninputs = [\"orders\"]\npath = \"out/shop.db\"\ntable = \"orders\"\nmode = \"replace\"\n";
    scratch.run(manifest).unwrap();
    // A second run that fails half-way (a bad record after good ones).
    let mut csv = String::from("id,amount,status\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{i},{i}.5,x\n"));
    }
    csv.push_str("oops,1.5,x\n");
    scratch.write("orders.csv", csv);
    scratch
        .run(manifest)
        .expect_err("the bad record fails the run");
    let db = scratch.path("out/shop.db");
    assert_eq!(
        rows(&db, "SELECT id, amount, status FROM orders ORDER BY id"),
        [(1, 1.5, "a".to_string()), (2, 2.5, "b".to_string())],
        "readers still see the old table, whole"
    );
}
