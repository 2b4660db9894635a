//! The `postgres` source on the types real tables hold — numerics of every
//! precision, arrays, uuids, times, intervals — checked against the
//! server's own rendering of the same values.

use arrow::array::{
    Array, AsArray, Decimal128Array, Decimal256Array, Int32Array, IntervalMonthDayNanoArray,
    StringArray, Time64MicrosecondArray,
};
use arrow::datatypes::{DataType, IntervalMonthDayNano};
use weir_tests::{postgres, postgres_url, read_ipc, unique_table, Scratch};

/// `query` through the postgres source into an IPC file, read back.
fn read(query: &str) -> weir::Result<arrow::array::RecordBatch> {
    let scratch = Scratch::new();
    scratch.run(&format!(
        "[sources.db]\ntype = \"postgres\"\nurl = \"{}\"\nquery = \"{}\"\nbatch_size = 64\n\n\
         [sinks.out]\ntype = \"ipc\"\ninputs = [\"db\"]\npath = \"out.arrow\"\n",
        postgres_url(),
        query.replace('"', "\\\"")
    ))?;
    Ok(read_ipc(&scratch.path("out.arrow")).expect("the sink's file"))
}

/// Column `i` of `query`'s rows as PostgreSQL prints them (`None`: null).
fn server_text(query: &str, i: usize) -> Vec<Option<String>> {
    postgres()
        .query(query, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(i))
        .collect()
}

#[test]
fn postgres_numerics_are_read_exactly_as_the_server_prints_them() {
    let table = unique_table("numerics");
    postgres()
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (id int4, price numeric(12,2), big numeric(50,10), free numeric);
             INSERT INTO \"{table}\" SELECT i,
               CASE WHEN i % 11 = 0 THEN NULL ELSE (((i * 7919) % 2000001) - 1000000) / 100.0 END,
               i * 123456789012345678901234567.1234567891 * (CASE WHEN i % 2 = 0 THEN -1 ELSE 1 END),
               CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN 1e30 WHEN 2 THEN 0.0001 WHEN 3 THEN 'NaN'
                          WHEN 4 THEN -(i::numeric / 7) ELSE i END
             FROM generate_series(1, 500) i"
        ))
        .unwrap();
    let out = read(&format!("SELECT * FROM \"{table}\" ORDER BY id")).unwrap();
    assert_eq!(out.num_rows(), 500);
    let schema = out.schema();
    assert_eq!(schema.field(1).data_type(), &DataType::Decimal128(12, 2));
    assert_eq!(schema.field(2).data_type(), &DataType::Decimal256(50, 10));
    assert_eq!(
        schema.field(3).data_type(),
        &DataType::Utf8,
        "no declared scale: exact text"
    );

    let decimal128 = out
        .column(1)
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap();
    let decimal256 = out
        .column(2)
        .as_any()
        .downcast_ref::<Decimal256Array>()
        .unwrap();
    let text = out.column(3).as_string::<i32>();
    let ours = |a: &dyn Array, f: &dyn Fn(usize) -> String| {
        (0..a.len())
            .map(|i| a.is_valid(i).then(|| f(i)))
            .collect::<Vec<_>>()
    };
    let sql = |column: &str| {
        server_text(
            &format!("SELECT {column}::text FROM \"{table}\" ORDER BY id"),
            0,
        )
    };
    assert_eq!(
        ours(decimal128, &|i| decimal128.value_as_string(i)),
        sql("price")
    );
    assert_eq!(
        ours(decimal256, &|i| decimal256.value_as_string(i)),
        sql("big")
    );
    assert_eq!(ours(text, &|i| text.value(i).to_string()), sql("free"));
}

#[test]
fn nan_in_a_decimal_column_fails_the_run_naming_the_column_and_the_cast() {
    let err = read("SELECT 1.5::numeric(12,2) AS amount UNION ALL SELECT 'NaN'::numeric(12,2)")
        .expect_err("NaN has no decimal")
        .to_string();
    assert!(
        err.contains("\"amount\"") && err.contains("NaN") && err.contains("float8"),
        "{err}"
    );
}

#[test]
fn postgres_arrays_round_trip_through_weir_into_equal_arrays() {
    let from = unique_table("arrays");
    let to = unique_table("arrays_copy");
    postgres()
        .batch_execute(&format!(
            "CREATE TABLE \"{from}\" (id int4, ints int4[], words text[], prices numeric(10,2)[], big int8[]);
             INSERT INTO \"{from}\" SELECT i,
               CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN '{{}}' ELSE ARRAY[i, NULL, -i] END,
               ARRAY['w' || i, NULL, 'grüße, \"quoted\" {{x}}'],
               ARRAY[i / 3.0, NULL],
               ARRAY[i::int8 * 10000000000]
             FROM generate_series(1, 300) i"
        ))
        .unwrap();
    let scratch = Scratch::new();
    scratch
        .run(&format!(
            "[sources.db]\ntype = \"postgres\"\nurl = \"{url}\"\ntable = \"{from}\"\nbatch_size = 50\n\n\
             [sinks.db2]\ntype = \"postgres\"\ninputs = [\"db\"]\nurl = \"{url}\"\ntable = \"{to}\"\n",
            url = postgres_url()
        ))
        .unwrap();
    let types = server_text(
        &format!(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = '\"{to}\"'::regclass AND attnum > 0 ORDER BY attnum"
        ),
        0,
    );
    assert_eq!(
        types.into_iter().flatten().collect::<Vec<_>>(),
        [
            "integer",
            "integer[]",
            "text[]",
            "numeric(10,2)[]",
            "bigint[]"
        ]
    );
    let differ: i64 = postgres()
        .query_one(
            &format!(
                "SELECT count(*) FROM ((SELECT * FROM \"{from}\" EXCEPT ALL SELECT * FROM \"{to}\") \
                 UNION ALL (SELECT * FROM \"{to}\" EXCEPT ALL SELECT * FROM \"{from}\")) d"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(differ, 0, "every array, element and null survives");
}

#[test]
fn a_two_dimensional_array_is_an_error_saying_how_to_flatten_it() {
    let err = read("SELECT ARRAY[[1, 2], [3, 4]] AS grid")
        .expect_err("two dimensions don't fit a list")
        .to_string();
    assert!(
        err.contains("\"grid\"") && err.contains("2-dimensional"),
        "{err}"
    );
}

#[test]
fn uuid_time_and_interval_keep_the_servers_values() {
    let out = read(
        "SELECT i AS id, md5(i::text)::uuid AS token, TIME '00:00:00' + i * INTERVAL '1.25 second' AS at, \
         make_interval(months => i % 13, days => i % 31, secs => i * 1.25) AS wait \
         FROM generate_series(1, 100) i ORDER BY i",
    )
    .unwrap();
    let tokens = out
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let expected = server_text(
        "SELECT md5(i::text)::uuid::text FROM generate_series(1, 100) i ORDER BY i",
        0,
    );
    assert_eq!(
        tokens
            .iter()
            .map(|t| t.map(str::to_string))
            .collect::<Vec<_>>(),
        expected
    );
    let ids = out.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
    let at = out
        .column(2)
        .as_any()
        .downcast_ref::<Time64MicrosecondArray>()
        .unwrap();
    let wait = out
        .column(3)
        .as_any()
        .downcast_ref::<IntervalMonthDayNanoArray>()
        .unwrap();
    for row in 0..out.num_rows() {
        let i = i64::from(ids.value(row));
        assert_eq!(at.value(row), i * 1_250_000, "row {row}");
        assert_eq!(
            wait.value(row),
            IntervalMonthDayNano::new((i % 13) as i32, (i % 31) as i32, i * 1_250_000_000),
            "row {row}"
        );
    }
}
