//! Records in and out in every format: JSON and Confluent-framed Avro
//! written by librdkafka's Python client and fastavro read by weir, and
//! what weir writes read back by them.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit};
use weir_tests::kafka::{self, brokers, registry, topic};
use weir_tests::Scratch;

use super::{parquet_rows, run};

const ORDER_SCHEMA: &str = r#"[{ name = "id", type = "int64" }, { name = "name", type = "utf8" },
    { name = "amount", type = "float64" }, { name = "ts", type = "timestamp" }]"#;

#[test]
fn json_records_read_from_a_topic_keep_their_values_keys_headers_and_places() {
    let topic = topic("json_in", 3);
    kafka::client("produce-json", &[&topic, "500"]);
    let scratch = Scratch::new();
    run(
        &scratch,
        &format!(
            r#"
            [sources.orders]
            type = "kafka"
            brokers = "{}"
            topics = ["{topic}"]
            group = "{topic}-weir"
            until = "end"
            format = "json"
            schema = {ORDER_SCHEMA}
            metadata = ["key", "partition", "offset", "headers"]

            [sinks.out]
            type = "parquet"
            inputs = ["orders"]
            path = "out/orders.parquet"
            "#,
            brokers()
        ),
    );
    let rows = parquet_rows(&scratch.path("out"));
    let id = rows
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    let mut ids: Vec<i64> = id.values().to_vec();
    ids.sort_unstable();
    assert_eq!(ids, (0..500).collect::<Vec<_>>(), "every record once");
    let name = rows.column_by_name("name").unwrap().as_string::<i32>();
    let amount = rows
        .column_by_name("amount")
        .unwrap()
        .as_primitive::<Float64Type>();
    let key = rows.column_by_name("kafka_key").unwrap().as_string::<i32>();
    let partition = rows
        .column_by_name("kafka_partition")
        .unwrap()
        .as_primitive::<Int32Type>();
    let offset = rows
        .column_by_name("kafka_offset")
        .unwrap()
        .as_primitive::<Int64Type>();
    let mut places = std::collections::HashSet::new();
    for row in 0..rows.num_rows() {
        let i = id.value(row);
        assert_eq!(name.value(row), format!("name {i}"));
        assert_eq!(amount.value(row), i as f64 * 1.5);
        assert_eq!(key.value(row), format!("k{}", i % 7));
        assert!((0..3).contains(&partition.value(row)));
        assert!(
            places.insert((partition.value(row), offset.value(row))),
            "a place twice"
        );
    }
    let headers = rows.column_by_name("kafka_headers").unwrap().as_map();
    let first = headers.value(0);
    assert_eq!(first.column(0).as_string::<i32>().value(0), "source");
    assert_eq!(first.column(1).as_binary::<i32>().value(0), b"python");
}

#[test]
fn rows_the_kafka_sink_writes_are_read_by_confluent_kafka_with_their_keys_and_headers() {
    let topic = topic("json_out", 3);
    let scratch = Scratch::new();
    run(
        &scratch,
        &format!(
            r#"
            [sources.gen]
            type = "generate"
            rows = 300

            [sinks.out]
            type = "kafka"
            inputs = ["gen"]
            brokers = "{}"
            topic = "{topic}"
            key = ["key"]
            headers = ["seq"]
            "#,
            brokers()
        ),
    );
    let read = kafka::read(&topic);
    assert_eq!(read["count"], 300);
    assert_eq!(read["duplicated"], 0);
    let mut seqs = Vec::new();
    for r in read["records"].as_array().unwrap() {
        let value: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(r["key"], value["key"], "the key is the row's key column");
        assert_eq!(r["headers"]["seq"], value["seq"].to_string());
        seqs.push(value["seq"].as_i64().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..300).collect::<Vec<_>>());
}

#[test]
fn a_bad_json_record_goes_to_the_dead_letter_output_naming_its_partition_and_offset() {
    let topic = topic("json_bad", 2);
    kafka::client("produce-json", &[&topic, "100", "10"]);
    let scratch = Scratch::new();
    run(
        &scratch,
        &format!(
            r#"
            [sources.orders]
            type = "kafka"
            brokers = "{}"
            topics = ["{topic}"]
            group = "{topic}-weir"
            until = "end"
            format = "json"
            schema = {ORDER_SCHEMA}
            on_bad_record = "dead_letter"

            [sinks.good]
            type = "parquet"
            inputs = ["orders"]
            path = "out/good.parquet"

            [sinks.bad]
            type = "csv"
            inputs = ["orders.dead_letter"]
            path = "bad.csv"
            "#,
            brokers()
        ),
    );
    assert_eq!(parquet_rows(&scratch.path("out")).num_rows(), 90);
    let bad = std::fs::read_to_string(scratch.path("bad.csv")).unwrap();
    let lines: Vec<&str> = bad.lines().skip(1).collect();
    assert_eq!(lines.len(), 10, "{bad}");
    for line in lines {
        assert!(line.contains(&topic) && line.contains("offset"), "{line}");
    }
}

#[test]
fn a_json_topic_without_a_declared_schema_is_refused_with_an_example() {
    let scratch = Scratch::new();
    let err = scratch
        .check(&format!(
            r#"
            [sources.orders]
            type = "kafka"
            brokers = "{}"
            topics = ["anything"]
            group = "g"
            format = "json"

            [sinks.out]
            type = "stdout"
            inputs = ["orders"]
            "#,
            brokers()
        ))
        .err()
        .expect("accepted a json source without a schema");
    let text = weir::error::report(weir::error::chain(&err));
    assert!(text.contains("schema = [{ name = "), "{text}");
}

#[test]
fn avro_records_of_every_type_read_as_the_arrow_types_they_map_to() {
    let registry = registry();
    let topic = topic("avro_in", 2);
    kafka::client("produce-avro", &[&topic, &registry.url, "60", "1"]);
    let scratch = Scratch::new();
    avro_to_parquet(&scratch, &topic, &registry.url, r#"[]"#);
    let rows = parquet_rows(&scratch.path("out"));
    assert_eq!(rows.num_rows(), 60);
    let schema = rows.schema();
    let t = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(t("id"), DataType::Int64);
    assert_eq!(t("small"), DataType::Int32);
    assert_eq!(t("ok"), DataType::Boolean);
    assert_eq!(t("ratio"), DataType::Float32);
    assert_eq!(t("price"), DataType::Decimal128(12, 2));
    assert_eq!(t("day"), DataType::Date32);
    assert!(
        matches!(t("at"), DataType::Timestamp(TimeUnit::Microsecond, Some(_))),
        "{}",
        t("at")
    );
    assert!(
        matches!(
            t("at_ms"),
            DataType::Timestamp(TimeUnit::Millisecond, Some(_))
        ),
        "{}",
        t("at_ms")
    );
    assert!(matches!(t("tags"), DataType::List(_)), "{}", t("tags"));
    assert!(matches!(t("attrs"), DataType::Map(..)), "{}", t("attrs"));
    assert!(
        matches!(t("customer"), DataType::Struct(_)),
        "{}",
        t("customer")
    );
    assert!(
        matches!(t("status"), DataType::Dictionary(..)),
        "{}",
        t("status")
    );

    let id = rows
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    let price = rows
        .column_by_name("price")
        .unwrap()
        .as_primitive::<arrow::datatypes::Decimal128Type>();
    let note = rows.column_by_name("note").unwrap();
    let tags = rows.column_by_name("tags").unwrap().as_list::<i32>();
    let customer = rows.column_by_name("customer").unwrap().as_struct();
    let country = customer.column_by_name("country").unwrap();
    let name = rows.column_by_name("name").unwrap().as_string::<i32>();
    for row in 0..rows.num_rows() {
        let i = id.value(row);
        assert_eq!(
            price.value(row),
            (i * 100 + i % 100) as i128,
            "price of {i}"
        );
        assert_eq!(note.is_null(row), i % 3 == 0, "note of {i}");
        assert_eq!(tags.value(row).len() as i64, i % 3, "tags of {i}");
        assert_eq!(country.is_null(row), i % 4 == 0, "country of {i}");
        assert_eq!(name.value(row), format!("ünïcode {i}"));
    }
}

#[test]
fn old_avro_records_read_with_the_evolved_schema_get_its_new_field_s_default() {
    let registry = registry();
    let topic = topic("avro_evolve", 1);
    kafka::client("produce-avro", &[&topic, &registry.url, "20", "1"]);
    kafka::client("produce-avro", &[&topic, &registry.url, "20", "2"]);
    let scratch = Scratch::new();
    avro_to_parquet(&scratch, &topic, &registry.url, r#"["offset"]"#);
    let rows = parquet_rows(&scratch.path("out"));
    let offset = rows
        .column_by_name("kafka_offset")
        .unwrap()
        .as_primitive::<Int64Type>();
    let channel = rows.column_by_name("channel").unwrap().as_string::<i32>();
    assert_eq!(rows.num_rows(), 40);
    for row in 0..rows.num_rows() {
        let expected = if offset.value(row) < 20 { "web" } else { "app" };
        assert_eq!(channel.value(row), expected, "offset {}", offset.value(row));
    }
}

#[test]
fn rows_weir_writes_as_avro_are_registered_and_read_back_by_fastavro() {
    let registry = registry();
    let topic = topic("avro_out", 2);
    let scratch = Scratch::new();
    run(
        &scratch,
        &format!(
            r#"
            [sources.gen]
            type = "generate"
            rows = 100

            [sinks.out]
            type = "kafka"
            inputs = ["gen"]
            brokers = "{}"
            topic = "{topic}"
            format = "avro"
            key = ["key"]
            registry = {{ url = "{}" }}
            "#,
            brokers(),
            registry.url
        ),
    );
    let out = kafka::client("read-avro", &[&topic, &registry.url]);
    let records: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(records.len(), 100);
    let mut seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..100).collect::<Vec<_>>());
    assert!(records
        .iter()
        .all(|r| r["key"].as_str().unwrap().starts_with('k')));
    let posted = registry.requests.lock().unwrap();
    assert!(
        posted
            .iter()
            .any(|r| r.method == "POST" && r.path == format!("/subjects/{topic}-value/versions")),
        "the schema was not registered under the topic's subject"
    );
}

#[test]
fn every_compression_codec_round_trips_through_a_topic() {
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = topic(&format!("codec_{codec}"), 1);
        let scratch = Scratch::new();
        run(
            &scratch,
            &format!(
                r#"
                [sources.gen]
                type = "generate"
                rows = 500

                [sinks.out]
                type = "kafka"
                inputs = ["gen"]
                brokers = "{}"
                topic = "{topic}"
                compression = "{codec}"
                "#,
                brokers()
            ),
        );
        let read = kafka::read(&topic);
        assert_eq!(read["count"], 500, "{codec}");
        let first: serde_json::Value =
            serde_json::from_str(read["records"][0]["value"].as_str().unwrap()).unwrap();
        assert!(first["seq"].is_i64(), "{codec}: {first}");
    }
}

#[test]
fn a_topic_column_routes_each_row_and_a_string_value_is_the_column_s_text() {
    let even = topic("route_even", 1);
    let odd = topic("route_odd", 1);
    let scratch = Scratch::new();
    scratch.write(
        "rows.csv",
        format!("dest,text\n{even},zero\n{odd},one\n{even},two\n"),
    );
    run(
        &scratch,
        &format!(
            r#"
            [sources.rows]
            type = "csv"
            path = "rows.csv"

            [sinks.out]
            type = "kafka"
            inputs = ["rows"]
            brokers = "{}"
            topic_column = "dest"
            format = "string"
            "#,
            brokers()
        ),
    );
    let values = |t: &str| -> Vec<String> {
        kafka::read(t)["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(values(&even), ["zero", "two"]);
    assert_eq!(values(&odd), ["one"]);
}

/// Reads every Avro record of `topic` (schemas from the registry at
/// `url`) into `out/orders.parquet`, with the `metadata` columns given.
fn avro_to_parquet(scratch: &Scratch, topic: &str, url: &str, metadata: &str) {
    run(
        scratch,
        &format!(
            r#"
            [sources.orders]
            type = "kafka"
            brokers = "{}"
            topics = ["{topic}"]
            group = "{topic}-weir"
            until = "end"
            format = "avro"
            registry = {{ url = "{url}" }}
            metadata = {metadata}

            [sinks.out]
            type = "parquet"
            inputs = ["orders"]
            path = "out/orders.parquet"
            "#,
            brokers()
        ),
    );
}

#[test]
fn text_and_bytes_values_read_as_one_column_with_the_record_s_timestamp() {
    let topic = topic("text_in", 1);
    kafka::client("produce-json", &[&topic, "50"]);
    let scratch = Scratch::new();
    // (`start = "latest"` is librdkafka's end offset; tansu answers a
    // topic's end with a batch count, so it is not tested here.)
    let manifest = |format: &str, start: &str| {
        format!(
            r#"
            [sources.lines]
            type = "kafka"
            brokers = "{}"
            topics = ["{topic}"]
            group = "{topic}-{format}-{start}"
            until = "end"
            start = "{start}"
            format = "{format}"
            metadata = ["timestamp"]

            [sinks.out]
            type = "parquet"
            inputs = ["lines"]
            path = "out-{format}-{start}/lines.parquet"
            "#,
            brokers()
        )
    };
    run(&scratch, &manifest("string", "earliest"));
    let text = parquet_rows(&scratch.path("out-string-earliest"));
    assert_eq!(text.num_rows(), 50);
    assert_eq!(text.schema().field(0).data_type(), &DataType::Utf8);
    let first: serde_json::Value =
        serde_json::from_str(text.column(0).as_string::<i32>().value(0)).unwrap();
    assert!(first["id"].is_i64(), "{first}");
    assert!(
        matches!(
            text.schema().field(1).data_type(),
            DataType::Timestamp(TimeUnit::Millisecond, Some(_))
        ),
        "kafka_timestamp is {}",
        text.schema().field(1).data_type()
    );
    assert_eq!(text.column(1).null_count(), 0, "records without their time");

    run(&scratch, &manifest("bytes", "earliest"));
    let bytes = parquet_rows(&scratch.path("out-bytes-earliest"));
    assert_eq!(bytes.schema().field(0).data_type(), &DataType::Binary);
    assert_eq!(bytes.num_rows(), 50);
}
