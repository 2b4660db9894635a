//! Late materialization: a filter's selection leaves the node pending and
//! is applied where the rows are read — by the next plugin to the columns
//! it fetches, composed with the next filter's, by a sink to every column.
//! Whatever path the rows take, they must be exactly the rows each node's
//! predicate keeps, in order.

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use weir_tests::{int64_values, plugins, read_ipc, toml_path, Scratch};

/// `id,amount,name,created_at`: amounts from -5 to 5, every fifth
/// timestamp unparseable.
fn orders() -> String {
    std::iter::once("id,amount,name,created_at\n".to_string())
        .chain((0..1000).map(|i| {
            let created = match i % 5 {
                0 => "not a date".to_string(),
                _ => format!("2026-01-{:02}T10:{:02}:00Z", 1 + i % 28, i % 60),
            };
            format!("{i},{},name {i},{created}\n", amount(i))
        }))
        .collect()
}

fn amount(i: i64) -> i64 {
    i * 37 % 11 - 5
}

#[test]
fn rows_behind_a_filter_are_the_rows_its_predicate_keeps_on_every_path() {
    let scratch = Scratch::new();
    scratch.write("orders.csv", orders());
    let filter = toml_path(plugins::FILTER.as_ref());
    scratch
        .run(&format!(
            r#"
            [pipeline]
            batch_size = 128

            [sources.orders]
            type = "csv"
            path = "orders.csv"

            # Kept rows go four ways: straight to a sink, to a second
            # filter (selections compose), to a plugin that replaces a
            # column (the other columns are filtered then), and the
            # rejected rows to their own sink.
            [transforms.positive]
            plugin = {filter}
            inputs = ["orders"]
            config = {{ predicate = "amount > 0" }}

            [transforms.large]
            plugin = {filter}
            inputs = ["positive"]
            config = {{ predicate = "amount > 3" }}

            [transforms.times]
            plugin = {parse_time}
            inputs = ["positive"]
            config = {{ columns = ["created_at"] }}

            [transforms.late]
            plugin = {filter}
            inputs = ["times"]
            config = {{ predicate = "id > 200" }}

            [transforms.pick]
            plugin = {select}
            inputs = ["late"]
            config = {{ columns = ["created_at", "id"] }}

            [sinks.positive_out]
            type = "ipc"
            inputs = ["positive"]
            path = "positive.arrow"

            [sinks.rejected_out]
            type = "ipc"
            inputs = ["positive.rejected"]
            path = "rejected.arrow"

            [sinks.large_out]
            type = "ipc"
            inputs = ["large"]
            path = "large.arrow"

            [sinks.picked]
            type = "ipc"
            inputs = ["pick"]
            path = "picked.arrow"
            "#,
            parse_time = toml_path(plugins::PARSE_TIME.as_ref()),
            select = toml_path(plugins::SELECT.as_ref()),
        ))
        .unwrap();
    let ids = |keep: &dyn Fn(i64) -> bool| (0..1000).filter(|&i| keep(i)).collect::<Vec<i64>>();

    let positive = read_ipc(&scratch.path("positive.arrow")).unwrap();
    assert_eq!(int64_values(&positive, "id"), ids(&|i| amount(i) > 0));
    assert_eq!(
        int64_values(&positive, "amount"),
        ids(&|i| amount(i) > 0)
            .into_iter()
            .map(amount)
            .collect::<Vec<_>>()
    );
    let names = positive.column_by_name("name").unwrap().as_string::<i32>();
    let expected: Vec<String> = ids(&|i| amount(i) > 0)
        .iter()
        .map(|i| format!("name {i}"))
        .collect();
    assert_eq!(names.iter().flatten().collect::<Vec<_>>(), expected);

    let rejected = read_ipc(&scratch.path("rejected.arrow")).unwrap();
    assert_eq!(int64_values(&rejected, "id"), ids(&|i| amount(i) <= 0));

    let large = read_ipc(&scratch.path("large.arrow")).unwrap();
    assert_eq!(int64_values(&large, "id"), ids(&|i| amount(i) > 3));
    assert_eq!(large.num_columns(), 4);

    let picked = read_ipc(&scratch.path("picked.arrow")).unwrap();
    let kept = ids(&|i| amount(i) > 0 && i > 200);
    assert_eq!(int64_values(&picked, "id"), kept);
    let times = picked
        .column_by_name("created_at")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    let parsed: Vec<bool> = (0..times.len()).map(|r| times.is_valid(r)).collect();
    let expected: Vec<bool> = kept.iter().map(|i| i % 5 != 0).collect();
    assert_eq!(parsed, expected, "each time parsed on its own row");
    let first = kept.iter().position(|i| i % 5 != 0).unwrap();
    let i = kept[first];
    let want = chrono_micros(1 + i % 28, i % 60);
    assert_eq!(times.value(first), want);
}

/// Microseconds since the epoch of 2026-01-DD 10:MM:00 UTC.
fn chrono_micros(day: i64, minute: i64) -> i64 {
    // 2026-01-01T00:00:00Z is 1,767,225,600 s after the epoch.
    let seconds = 1_767_225_600 + (day - 1) * 86_400 + 10 * 3_600 + minute * 60;
    seconds * 1_000_000
}
