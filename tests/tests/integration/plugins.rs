//! The shipped plugins, each on its own, through real pipelines.

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use weir_tests::{plugins, read_ipc, toml_path, Scratch};

/// Runs `input.csv` through one plugin with `config` into `out.arrow`.
fn through(plugin: &str, config: &str, csv: &str) -> weir::Result<arrow::array::RecordBatch> {
    let scratch = Scratch::new();
    scratch.write("in.csv", csv);
    scratch.run(&format!(
        r#"
        [sources.in]
        type = "csv"
        path = "in.csv"

        [transforms.t]
        plugin = {}
        inputs = ["in"]
        config = {config}

        [sinks.out]
        type = "ipc"
        inputs = ["t"]
        path = "out.arrow"
        "#,
        toml_path(plugin.as_ref())
    ))?;
    Ok(read_ipc(&scratch.path("out.arrow")).expect("output"))
}

fn names(batch: &arrow::array::RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

#[test]
fn select_projects_and_reorders_columns() {
    let out = through(
        plugins::SELECT,
        r#"{ columns = ["c", "a"] }"#,
        "a,b,c\n1,2,3\n4,5,6\n",
    )
    .unwrap();
    assert_eq!(names(&out), ["c", "a"]);
    assert_eq!(out.column(0).as_primitive::<Int64Type>().values(), &[3, 6]);
}

#[test]
fn rename_applies_the_explicit_map_before_the_case_rule() {
    let out = through(
        plugins::RENAME,
        r#"{ case = "snake", map = { "Cust. Name" = "customer" } }"#,
        "Order ID,Cust. Name,  Total (USD) \n1,x,2\n",
    )
    .unwrap();
    assert_eq!(names(&out), ["order_id", "customer", "total_usd"]);
}

#[test]
fn rename_refuses_two_columns_with_one_new_name() {
    let err = through(plugins::RENAME, "{}", "Order ID,order_id\n1,2\n").expect_err("collision");
    assert!(
        err.to_string().contains("both be called \"order_id\""),
        "{err}"
    );
}

#[test]
fn parse_time_tries_each_format_and_nulls_what_none_parses() {
    let out = through(
        plugins::PARSE_TIME,
        r#"{ columns = ["t"], formats = ["%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S%:z"] }"#,
        "t\n05/01/2024 10:30\n2024-01-05T10:30:00+02:00\nsoon\n",
    )
    .unwrap();
    let t = out.column(0);
    assert_eq!(
        t.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    let t = t.as_primitive::<TimestampMicrosecondType>();
    assert_eq!(t.value(0), 1_704_450_600_000_000);
    assert_eq!(
        t.value(1),
        1_704_443_400_000_000,
        "the offset converts to UTC"
    );
    assert!(t.is_null(2));
    assert_eq!(t.len(), 3);
}

#[test]
fn parse_time_reads_naive_values_as_wall_clock_time_in_the_zone_and_stores_utc() {
    let out = through(
        plugins::PARSE_TIME,
        r#"{ columns = ["t"], timezone = "Europe/Paris" }"#,
        // `soon` keeps the column text (else the CSV source would infer
        // timestamps itself).
        "t\n2024-01-15 05:37:46\n2024-07-15 05:37:46\n2024-07-15T05:37:46Z\nsoon\n",
    )
    .unwrap();
    let t = out.column(0);
    assert_eq!(
        t.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/Paris".into()))
    );
    let t = t.as_primitive::<TimestampMicrosecondType>();
    // 05:37:46 in Paris is 04:37:46Z in winter (+01:00), 03:37:46Z in
    // summer (+02:00); a value with its offset keeps its instant.
    assert_eq!(t.value(0), 1_705_293_466_000_000);
    assert_eq!(t.value(1), 1_721_014_666_000_000);
    assert_eq!(t.value(2), 1_721_021_866_000_000);
}

#[test]
fn parse_time_on_error_fail_names_the_bad_value() {
    let err = through(
        plugins::PARSE_TIME,
        r#"{ columns = ["t"], on_error = "fail" }"#,
        "t\n2024-01-05\nsoon\n",
    )
    .expect_err("must fail");
    assert!(err.to_string().contains("can't parse \"soon\""), "{err}");
}

#[test]
fn filter_compares_strings_numbers_and_nulls_with_sql_semantics() {
    let csv = "id,status,amount\n1,paid,10\n2,refunded,20\n3,,30\n4,paid,\n5,it's,5.5\n";
    let ids = |predicate: &str| -> Vec<i64> {
        let out = through(
            plugins::FILTER,
            &format!("{{ predicate = {predicate:?} }}"),
            csv,
        )
        .unwrap();
        out.column(0).as_primitive::<Int64Type>().values().to_vec()
    };
    assert_eq!(
        ids("status != 'refunded'"),
        [1, 4, 5],
        "null status is not != 'refunded'"
    );
    assert_eq!(ids("status is null or amount >= 30"), [3]);
    assert_eq!(ids("amount > 5.25 and amount < 20"), [1, 5]);
    assert_eq!(
        ids("not (amount > 6)"),
        [5],
        "a null amount stays dropped under not"
    );
    assert_eq!(ids("status = 'it''s'"), [5]);
    assert_eq!(ids("10 <= amount"), [1, 2, 3]);
}

#[test]
fn filter_rejects_a_predicate_it_cannot_parse_before_data_moves() {
    let err = through(
        plugins::FILTER,
        r#"{ predicate = "amount >" }"#,
        "amount\n1\n",
    )
    .expect_err("bad");
    assert!(err.to_string().contains("bad predicate"), "{err}");
}

#[test]
fn dedupe_on_a_string_and_int_key_pair_keeps_first_occurrences() {
    let out = through(
        plugins::DEDUPE,
        r#"{ key = ["name", "n"] }"#,
        "name,n,v\na,1,first\na,2,x\na,1,dup\n,1,nullkey\n,1,nulldup\n",
    )
    .unwrap();
    let v = out
        .column(2)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(
        v.iter().flatten().collect::<Vec<_>>(),
        ["first", "x", "nullkey"]
    );
}

/// Orders as a JSON API or Spark writes them: a struct, a list, a decimal
/// and a dictionary column beside the flat ones the plugins read.
fn nested_orders() -> arrow::array::RecordBatch {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Decimal128Array, DictionaryArray, Float64Array, Int64Array, ListArray,
        StructArray,
    };
    use arrow::datatypes::{Field, Int16Type, Int32Type};

    let countries: ArrayRef = Arc::new(StringArray::from(vec![
        Some("DE"),
        None,
        Some("FR"),
        Some("DE"),
        Some("IT"),
    ]));
    let customer = StructArray::from(vec![(
        Arc::new(Field::new("country", DataType::Utf8, true)),
        countries,
    )]);
    let tags = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), None]),
        None,
        Some(vec![]),
        Some(vec![Some(4)]),
        Some(vec![Some(5), Some(6)]),
    ]);
    let price = Decimal128Array::from(vec![Some(1250), Some(-1), None, Some(99_999), Some(5)])
        .with_precision_and_scale(12, 2)
        .unwrap();
    let city: DictionaryArray<Int16Type> = vec![
        Some("Berlin"),
        None,
        Some("Paris"),
        Some("Berlin"),
        Some("Rome"),
    ]
    .into_iter()
    .collect();
    weir_tests::batch(vec![
        (
            "id",
            Arc::new(Int64Array::from(vec![1, 2, 3, 1, 5])) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(Float64Array::from(vec![10.0, -1.0, 3.0, 7.0, 2.0])),
        ),
        (
            "name",
            Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e"])),
        ),
        ("customer", Arc::new(customer)),
        ("tags", Arc::new(tags)),
        ("price", Arc::new(price)),
        ("city", Arc::new(city)),
    ])
}

/// filter → dedupe → rename → select over a batch carrying nested, decimal
/// and dictionary columns none of them reads: `weir check` passes, and the
/// columns come out as the input's rows, bit for bit, types unchanged.
#[test]
fn every_shipped_plugin_carries_nested_decimal_and_dictionary_columns_it_does_not_read() {
    let scratch = Scratch::new();
    let input = nested_orders();
    weir_tests::write_ipc(&scratch.path("orders.arrow"), &input);
    scratch
        .run(&format!(
            r#"
            [sources.orders]
            type = "ipc"
            path = "orders.arrow"

            [transforms.positive]
            plugin = {filter}
            inputs = ["orders"]
            config = {{ predicate = "amount > 0" }}

            [transforms.unique]
            plugin = {dedupe}
            inputs = ["positive"]
            config = {{ key = ["id"] }}

            [transforms.renamed]
            plugin = {rename}
            inputs = ["unique"]
            config = {{ map = {{ name = "customer_name" }} }}

            [transforms.picked]
            plugin = {select}
            inputs = ["renamed"]
            config = {{ columns = ["id", "customer", "tags", "price", "city", "customer_name"] }}

            [sinks.out]
            type = "ipc"
            inputs = ["picked"]
            path = "out.arrow"
            "#,
            filter = toml_path(plugins::FILTER.as_ref()),
            dedupe = toml_path(plugins::DEDUPE.as_ref()),
            rename = toml_path(plugins::RENAME.as_ref()),
            select = toml_path(plugins::SELECT.as_ref()),
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    // Kept: amount > 0 (rows 0, 2, 3, 4), then the first of each id (row 3
    // repeats id 1): rows 0, 2, 4.
    let rows = arrow::array::UInt32Array::from(vec![0, 2, 4]);
    for name in ["customer", "tags", "price", "city"] {
        let want = arrow::compute::take(input.column_by_name(name).unwrap(), &rows, None).unwrap();
        let got = out.column_by_name(name).unwrap();
        assert_eq!(got.data_type(), want.data_type(), "{name}");
        assert_eq!(got.as_ref(), want.as_ref(), "{name}");
    }
    assert_eq!(
        out.column_by_name("customer_name").unwrap().as_ref(),
        &StringArray::from(vec!["a", "c", "e"]) as &dyn Array
    );
}

/// filter on the columns JSON and Spark bring: decimals compared exactly
/// with literals of any scale, struct fields by path, dictionary columns
/// by value, and `in`, `like`, `between` (each with `not`).
#[test]
fn filter_reads_decimals_exactly_struct_paths_and_dictionaries_with_in_like_between() {
    let cases: &[(&str, &[&str])] = &[
        ("price > 0.049", &["a", "d", "e"]),
        ("price = 999.990", &["d"]),
        ("price = 12.505", &[]),
        ("price between -0.01 and 12.5", &["a", "b", "e"]),
        ("price not between 0 and 100", &["b", "d"]),
        ("customer.country = 'DE'", &["a", "d"]),
        ("customer.country in ('FR', 'IT')", &["c", "e"]),
        ("customer.country is null", &["b"]),
        ("city like 'B%'", &["a", "d"]),
        ("city not like 'B%'", &["c", "e"]),
        ("city = 'Rome' or name in ('a')", &["a", "e"]),
        ("name not in ('a', 'b')", &["c", "d", "e"]),
    ];
    let scratch = Scratch::new();
    weir_tests::write_ipc(&scratch.path("orders.arrow"), &nested_orders());
    let mut manifest = "[sources.orders]\ntype = \"ipc\"\npath = \"orders.arrow\"\n\n".to_string();
    for (i, (predicate, _)) in cases.iter().enumerate() {
        manifest.push_str(&format!(
            "[transforms.f{i}]\nplugin = {}\ninputs = [\"orders\"]\nconfig = {{ predicate = {predicate:?} }}\n\n\
             [sinks.o{i}]\ntype = \"ipc\"\ninputs = [\"f{i}\"]\npath = \"out/{i}.arrow\"\n\n",
            toml_path(plugins::FILTER.as_ref())
        ));
    }
    scratch.run(&manifest).unwrap();
    for (i, (predicate, want)) in cases.iter().enumerate() {
        let out = read_ipc(&scratch.path(&format!("out/{i}.arrow"))).unwrap();
        let got: Vec<&str> = out
            .column_by_name("name")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(&got, want, "{predicate}");
    }
}

#[test]
fn filter_refuses_like_on_a_number_and_a_missing_struct_field_before_data_moves() {
    let scratch = Scratch::new();
    weir_tests::write_ipc(&scratch.path("orders.arrow"), &nested_orders());
    for (predicate, says) in [
        ("price like '1%'", "`like` matches text"),
        (
            "customer.city = 'x'",
            "column \"customer.city\", which the input doesn't have",
        ),
    ] {
        let err = scratch
            .check(&format!(
                "[sources.orders]\ntype = \"ipc\"\npath = \"orders.arrow\"\n\n\
                 [transforms.f]\nplugin = {}\ninputs = [\"orders\"]\nconfig = {{ predicate = {predicate:?} }}\n\n\
                 [sinks.o]\ntype = \"ipc\"\ninputs = [\"f\"]\npath = \"out.arrow\"\n",
                toml_path(plugins::FILTER.as_ref())
            ))
            .err()
            .unwrap_or_else(|| panic!("{predicate} must be refused"))
            .to_string();
        assert!(err.contains(says), "{predicate}: {err}");
    }
}

/// `nested_orders` through one plugin with `config`.
fn nested_through(plugin: &str, config: &str) -> arrow::array::RecordBatch {
    let scratch = Scratch::new();
    weir_tests::write_ipc(&scratch.path("orders.arrow"), &nested_orders());
    scratch
        .run(&format!(
            "[sources.orders]\ntype = \"ipc\"\npath = \"orders.arrow\"\n\n\
             [transforms.t]\nplugin = {}\ninputs = [\"orders\"]\nconfig = {config}\n\n\
             [sinks.out]\ntype = \"ipc\"\ninputs = [\"t\"]\npath = \"out.arrow\"\n",
            toml_path(plugin.as_ref())
        ))
        .unwrap_or_else(|e| panic!("{config}: {e}"));
    read_ipc(&scratch.path("out.arrow")).unwrap()
}

fn column_names(batch: &arrow::array::RecordBatch, column: &str) -> Vec<Option<String>> {
    let array =
        arrow::compute::cast(batch.column_by_name(column).unwrap(), &DataType::Utf8).unwrap();
    array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

#[test]
fn dedupe_keys_on_a_struct_field_by_path_and_on_a_dictionary_by_value() {
    for key in ["customer.country", "city"] {
        let out = nested_through(plugins::DEDUPE, &format!("{{ key = [{key:?}] }}"));
        // DE/Berlin repeats at row 3 (d); the one null key is kept once.
        assert_eq!(
            column_names(&out, "name"),
            ["a", "b", "c", "e"].map(|s| Some(s.to_string())),
            "{key}"
        );
    }
}

#[test]
fn select_picks_struct_fields_by_path_named_by_the_field_or_by_as() {
    let out = nested_through(
        plugins::SELECT,
        r#"{ columns = ["name", "customer.country", "price as exact_price"] }"#,
    );
    assert_eq!(names(&out), ["name", "country", "exact_price"]);
    assert_eq!(
        column_names(&out, "country"),
        [Some("DE"), None, Some("FR"), Some("DE"), Some("IT")].map(|v| v.map(str::to_string))
    );
    assert_eq!(
        out.column_by_name("exact_price").unwrap().data_type(),
        &DataType::Decimal128(12, 2)
    );
}

#[test]
fn rename_flatten_brings_struct_fields_up_as_parent_child_columns_in_place() {
    let out = nested_through(plugins::RENAME, "{ flatten = true }");
    assert_eq!(
        names(&out),
        [
            "id",
            "amount",
            "name",
            "customer_country",
            "tags",
            "price",
            "city"
        ]
    );
    assert_eq!(
        column_names(&out, "customer_country"),
        [Some("DE"), None, Some("FR"), Some("DE"), Some("IT")].map(|v| v.map(str::to_string))
    );
    let mapped = nested_through(
        plugins::RENAME,
        r#"{ flatten = true, map = { "customer.country" = "country" } }"#,
    );
    assert!(
        names(&mapped).contains(&"country".to_string()),
        "{:?}",
        names(&mapped)
    );
}

#[test]
fn aggregate_sums_and_averages_decimals_exactly() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Decimal128Array, TimestampMicrosecondArray};
    use arrow::datatypes::Decimal128Type;

    let prices = Decimal128Array::from(vec![
        Some(10),
        Some(20),
        None,
        Some(1),
        Some(12_345_678_901_234_567),
    ])
    .with_precision_and_scale(20, 2)
    .unwrap();
    let ts = TimestampMicrosecondArray::from(vec![0, 1, 2, 3, 4]).with_timezone("UTC");
    let scratch = Scratch::new();
    weir_tests::write_ipc(
        &scratch.path("in.arrow"),
        &weir_tests::batch(vec![
            ("ts", Arc::new(ts) as ArrayRef),
            ("price", Arc::new(prices)),
        ]),
    );
    scratch
        .run(&format!(
            "[sources.in]\ntype = \"ipc\"\npath = \"in.arrow\"\n\n\
             [transforms.t]\nplugin = {}\ninputs = [\"in\"]\n\
             config = {{ time = \"ts\", window_ms = 60000, aggregates = [\
             {{ op = \"sum\", column = \"price\" }}, {{ op = \"avg\", column = \"price\" }}, \
             {{ op = \"min\", column = \"price\" }}, {{ op = \"max\", column = \"price\" }}, \
             {{ op = \"count\", column = \"price\" }}] }}\n\n\
             [sinks.out]\ntype = \"ipc\"\ninputs = [\"t\"]\npath = \"out.arrow\"\n",
            toml_path(plugins::AGGREGATE.as_ref())
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let value = |name: &str| {
        let a = out.column_by_name(name).unwrap();
        (
            a.data_type().clone(),
            a.as_primitive::<Decimal128Type>().value(0),
        )
    };
    // 0.10 + 0.20 + 0.01 + 123456789012345.67, to the cent.
    assert_eq!(
        value("sum_price"),
        (DataType::Decimal128(38, 2), 12_345_678_901_234_598)
    );
    // Over the 4 values, 6 digits (Python's Decimal agrees):
    // 30864197253086.495000.
    assert_eq!(
        value("avg_price"),
        (DataType::Decimal128(24, 6), 30_864_197_253_086_495_000)
    );
    assert_eq!(value("min_price"), (DataType::Decimal128(20, 2), 1));
    assert_eq!(
        value("max_price"),
        (DataType::Decimal128(20, 2), 12_345_678_901_234_567)
    );
    assert_eq!(
        out.column_by_name("count_price")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        4
    );
}

#[test]
fn parse_time_reads_dictionary_large_and_view_strings() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, DictionaryArray, LargeStringArray, StringViewArray};
    use arrow::datatypes::Int32Type;

    let texts = [
        Some("2026-01-02T03:04:05Z"),
        None,
        Some("2026-01-02T03:04:05Z"),
    ];
    let dictionary: DictionaryArray<Int32Type> = texts.into_iter().collect();
    let scratch = Scratch::new();
    weir_tests::write_ipc(
        &scratch.path("in.arrow"),
        &weir_tests::batch(vec![
            ("d", Arc::new(dictionary) as ArrayRef),
            ("l", Arc::new(LargeStringArray::from(texts.to_vec()))),
            ("v", Arc::new(StringViewArray::from(texts.to_vec()))),
        ]),
    );
    scratch
        .run(&format!(
            "[sources.in]\ntype = \"ipc\"\npath = \"in.arrow\"\n\n\
             [transforms.t]\nplugin = {}\ninputs = [\"in\"]\nconfig = {{ columns = [\"d\", \"l\", \"v\"] }}\n\n\
             [sinks.out]\ntype = \"ipc\"\ninputs = [\"t\"]\npath = \"out.arrow\"\n",
            toml_path(plugins::PARSE_TIME.as_ref())
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    for name in ["d", "l", "v"] {
        let ts = out
            .column_by_name(name)
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(
            ts.iter().collect::<Vec<_>>(),
            vec![
                Some(1_767_323_045_000_000),
                None,
                Some(1_767_323_045_000_000)
            ],
            "{name}"
        );
    }
}

#[test]
fn aggregate_groups_by_a_dictionary_string_column_by_value() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, DictionaryArray, Int64Array, TimestampMicrosecondArray};
    use arrow::datatypes::Int8Type;

    let city: DictionaryArray<Int8Type> = vec![Some("Berlin"), Some("Paris"), None, Some("Berlin")]
        .into_iter()
        .collect();
    let scratch = Scratch::new();
    weir_tests::write_ipc(
        &scratch.path("in.arrow"),
        &weir_tests::batch(vec![
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(vec![0, 1, 2, 3]).with_timezone("UTC"))
                    as ArrayRef,
            ),
            ("city", Arc::new(city)),
            ("n", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
        ]),
    );
    scratch
        .run(&format!(
            "[sources.in]\ntype = \"ipc\"\npath = \"in.arrow\"\n\n\
             [transforms.t]\nplugin = {}\ninputs = [\"in\"]\n\
             config = {{ time = \"ts\", window_ms = 60000, group_by = [\"city\"], \
             aggregates = [{{ op = \"sum\", column = \"n\" }}] }}\n\n\
             [sinks.out]\ntype = \"ipc\"\ninputs = [\"t\"]\npath = \"out.arrow\"\n",
            toml_path(plugins::AGGREGATE.as_ref())
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let mut groups: Vec<(Option<String>, i64)> = column_names(&out, "city")
        .into_iter()
        .zip(
            out.column_by_name("sum_n")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        )
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            (None, 3),
            (Some("Berlin".into()), 5),
            (Some("Paris".into()), 2)
        ]
    );
}

#[test]
fn aggregate_groups_by_decimal_and_date_keys_as_pandas_does() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Date32Array, Decimal128Array, TimestampMicrosecondArray};

    let rows = 2_000i64;
    let tier: Decimal128Array = (0..rows)
        .map(|i| (i % 9 != 0).then_some(i128::from(i % 4) * 250 + 99))
        .collect::<Decimal128Array>()
        .with_precision_and_scale(5, 2)
        .unwrap();
    let day: Date32Array = (0..rows)
        .map(|i| (i % 13 != 0).then_some(20_000 + (i % 3) as i32))
        .collect();
    let amount = (0..rows)
        .map(|i| (i % 7 != 0).then_some(i128::from(i) * 1_000_003 - 777_777_777))
        .collect::<Decimal128Array>()
        .with_precision_and_scale(18, 2)
        .unwrap();
    let ts = TimestampMicrosecondArray::from((0..rows).collect::<Vec<_>>()).with_timezone("UTC");
    let scratch = Scratch::new();
    weir_tests::write_ipc(
        &scratch.path("in.arrow"),
        &weir_tests::batch(vec![
            ("ts", Arc::new(ts) as ArrayRef),
            ("tier", Arc::new(tier)),
            ("day", Arc::new(day)),
            ("amount", Arc::new(amount)),
        ]),
    );
    scratch
        .run(&format!(
            "[pipeline]\nbatch_size = 300\n\n[sources.in]\ntype = \"ipc\"\npath = \"in.arrow\"\n\n\
             [transforms.t]\nplugin = {}\ninputs = [\"in\"]\n\
             config = {{ time = \"ts\", window_ms = 60000, group_by = [\"tier\", \"day\"], \
             aggregates = [{{ op = \"sum\", column = \"amount\" }}, {{ op = \"count\", column = \"amount\" }}] }}\n\n\
             [sinks.out]\ntype = \"ipc\"\ninputs = [\"t\"]\npath = \"out.arrow\"\n",
            toml_path(plugins::AGGREGATE.as_ref())
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    assert_eq!(
        out.schema().field_with_name("tier").unwrap().data_type(),
        &DataType::Decimal128(5, 2)
    );
    assert_eq!(
        out.schema().field_with_name("day").unwrap().data_type(),
        &DataType::Date32
    );
    let check = std::process::Command::new(weir_tests::repo().join(".venv/bin/python"))
        .arg(weir_tests::repo().join("tests/reference/aggregate_keys.py"))
        .arg(scratch.path("in.arrow"))
        .arg(scratch.path("out.arrow"))
        .output()
        .expect("running aggregate_keys.py (scripts/setup --test makes .venv)");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && said.contains("groups equal"),
        "weir's groups differ from pandas':\n{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
