//! The shipped `sql` plugin: DataFusion inside the sandbox, checked
//! against DuckDB running the same SQL on the same file.

use weir_tests::{plugins, reference, toml_path, Scratch};

/// One query per function family: (name, weir's query, DuckDB's query when
/// the dialects spell it differently).
const CASES: &[(&str, &str, Option<&str>)] = &[
    (
        "projection_case_in_like_between",
        "SELECT id, bytes / 1024.0 AS kb, \
         CASE WHEN status >= 500 THEN 'error' WHEN status >= 400 THEN 'client' ELSE 'ok' END AS outcome \
         FROM input WHERE status IN (200, 304, 500) AND path LIKE '/api/%' AND bytes BETWEEN 100 AND 150000",
        None,
    ),
    (
        "strings",
        "SELECT id, lower(trim(name)) AS name, upper(name) AS shout, length(name) AS len, \
         concat(name, '#', CAST(id AS VARCHAR)) AS tag, substr(path, 2, 3) AS head, \
         replace(path, '/', '_') AS flat, split_part(path, '/', 3) AS part, \
         starts_with(path, '/api') AS api, lpad(CAST(status AS VARCHAR), 5, '0') AS padded, \
         name IS NULL AS missing FROM input",
        None,
    ),
    (
        "regex",
        "SELECT id, regexp_replace(path, '[0-9]+', 'N', 'g') AS shape, \
         regexp_like(path, '^/api/v[0-9]') AS versioned FROM input WHERE path NOT LIKE '/static%'",
        Some(
            "SELECT id, regexp_replace(path, '[0-9]+', 'N', 'g') AS shape, \
             regexp_matches(path, '^/api/v[0-9]') AS versioned FROM input WHERE path NOT LIKE '/static%'",
        ),
    ),
    (
        "dates",
        "SELECT id, date_trunc('hour', ts) AS hour, extract(year FROM ts) AS y, \
         extract(dow FROM ts) AS dow, CAST(ts AS DATE) AS day, ts + INTERVAL '1 day' AS next_day \
         FROM input WHERE ts >= TIMESTAMP '2026-03-29 00:00:00'",
        None,
    ),
    (
        "math",
        "SELECT id, abs(amount) AS a, round(amount) AS r, round(amount, 1) AS r1, floor(amount) AS f, \
         ceil(amount) AS c, sqrt(abs(amount)) AS sq, power(amount, 2) AS p, ln(abs(amount) + 1) AS l, \
         amount * 1.1 + 3 AS lin, bytes % 7 AS m FROM input",
        // round(x, n) on a double: DataFusion scales by 10^n and rounds
        // half away from zero (1008.15 -> 1008.2, as PostgreSQL's numeric
        // reads it); DuckDB rounds the exact binary value (1008.1). DuckDB
        // spells the first way out.
        Some(
            "SELECT id, abs(amount) AS a, round(amount) AS r, round(amount * 10) / 10 AS r1, floor(amount) AS f, \
             ceil(amount) AS c, sqrt(abs(amount)) AS sq, power(amount, 2) AS p, ln(abs(amount) + 1) AS l, \
             amount * 1.1 + 3 AS lin, bytes % 7 AS m FROM input",
        ),
    ),
    (
        "casts_and_decimals",
        "SELECT id, CAST(status AS VARCHAR) AS s, CAST(price AS DOUBLE) AS pd, \
         price * 2 AS twice, CAST(amount AS BIGINT) AS whole, coalesce(name, '?') AS n, \
         nullif(status, 200) AS odd FROM input",
        // DuckDB rounds a double cast to an integer; DataFusion (as Arrow,
        // Spark and Polars) truncates toward zero.
        Some(
            "SELECT id, CAST(status AS VARCHAR) AS s, CAST(price AS DOUBLE) AS pd, \
             price * 2 AS twice, CAST(trunc(amount) AS BIGINT) AS whole, coalesce(name, '?') AS n, \
             nullif(status, 200) AS odd FROM input",
        ),
    ),
    (
        "struct_fields",
        "SELECT id, s['a'] AS a, s['b'] AS b FROM input WHERE s['a'] > 0",
        None,
    ),
    (
        "unnest",
        "SELECT id, unnest(tags) AS tag FROM input",
        None,
    ),
    (
        "json",
        "SELECT id, json_get_str(payload, 'user') AS user, json_get_int(payload, 'n') AS n, \
         json_get_bool(payload, 'ok') AS ok FROM input WHERE json_get_int(payload, 'n') > 500",
        Some(
            "SELECT id, json_extract_string(payload, '$.user') AS user, \
             CAST(json_extract(payload, '$.n') AS BIGINT) AS n, \
             CAST(json_extract(payload, '$.ok') AS BOOLEAN) AS ok FROM input \
             WHERE CAST(json_extract(payload, '$.n') AS BIGINT) > 500",
        ),
    ),
];

/// The sql plugin's path in a manifest (built at opt-level 0 for the
/// tests, see tests/build.rs).
fn sql_plugin() -> String {
    toml_path(plugins::SQL.as_ref())
}

fn make_log(scratch: &Scratch, rows: usize) -> String {
    let data = scratch.path("log.parquet").display().to_string();
    let made = reference("sql_duckdb.py", &["make", &data, &rows.to_string()]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    data
}

/// A TOML basic string holding `text`.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

#[test]
fn sql_queries_of_every_function_family_equal_duckdbs() {
    let scratch = Scratch::new();
    let data = make_log(&scratch, 5_000);
    let plugin = sql_plugin();
    // Batches of 700 rows: every query runs per batch, many times.
    let mut manifest = String::from(
        "[pipeline]\nbatch_size = 700\n\n[sources.log]\ntype = \"parquet\"\npath = \"log.parquet\"\n\n",
    );
    let mut cases = Vec::new();
    for (name, query, duckdb) in CASES {
        manifest.push_str(&format!(
            "[transforms.{name}]\nplugin = {plugin}\ninputs = [\"log\"]\nconfig = {{ query = {} }}\n\n\
             [sinks.{name}_out]\ntype = \"ipc\"\ninputs = [\"{name}\"]\npath = \"{name}.arrow\"\n\n",
            quoted(query)
        ));
        cases.push(serde_json::json!({
            "name": name,
            "duckdb": duckdb.unwrap_or(query),
            "output": scratch.path(&format!("{name}.arrow")),
        }));
    }
    scratch.run(&manifest).unwrap();
    let cases_path = scratch.write("cases.json", serde_json::to_vec(&cases).unwrap());
    let check = reference(
        "sql_duckdb.py",
        &["compare", &data, &cases_path.display().to_string()],
    );
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && said.contains(&format!("{} cases equal", CASES.len())),
        "weir's sql differs from DuckDB's:\n{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// `weir check` on one sql node reading the log; the error's text.
fn check_error(query: &str) -> String {
    let scratch = Scratch::new();
    make_log(&scratch, 10);
    let manifest = format!(
        "[sources.log]\ntype = \"parquet\"\npath = \"log.parquet\"\n\n\
         [transforms.q]\nplugin = {}\ninputs = [\"log\"]\nconfig = {{ query = {} }}\n\n\
         [sinks.out]\ntype = \"ipc\"\ninputs = [\"q\"]\npath = \"out.arrow\"\n",
        sql_plugin(),
        quoted(query)
    );
    match scratch.check(&manifest) {
        Ok(_) => panic!("weir check accepted {query:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn check_names_a_misspelt_column_with_the_manifest_line() {
    let e = check_error("SELECT id, nmae FROM input");
    assert!(e.contains("nmae"), "{e}");
    assert!(e.contains("pipeline.toml:8"), "{e}");
}

#[test]
fn check_names_an_unknown_function_with_the_manifest_line() {
    let e = check_error("SELECT id, lowercase(name) AS n FROM input");
    assert!(e.contains("lowercase"), "{e}");
    assert!(e.contains("pipeline.toml:8"), "{e}");
}

#[test]
fn check_refuses_an_aggregating_query_and_points_to_aggregate() {
    for query in [
        "SELECT status, count(*) AS n FROM input GROUP BY status",
        "SELECT sum(bytes) AS total FROM input",
    ] {
        let e = check_error(query);
        assert!(e.contains("`aggregate` plugin"), "{query}: {e}");
        assert!(e.contains("pipeline.toml:8"), "{query}: {e}");
    }
}

#[test]
fn check_refuses_order_by_limit_distinct_and_windows_that_would_apply_per_batch() {
    for (query, says) in [
        ("SELECT id FROM input ORDER BY id", "ORDER BY"),
        ("SELECT id FROM input LIMIT 5", "LIMIT"),
        ("SELECT DISTINCT name FROM input", "dedupe"),
        (
            "SELECT id, row_number() OVER (ORDER BY id) AS r FROM input",
            "window",
        ),
        (
            "SELECT id FROM input WHERE id IN (SELECT id FROM input WHERE status = 500)",
            "subquery over `input`",
        ),
    ] {
        let e = check_error(query);
        assert!(e.contains(says), "{query}: {e}");
    }
}

#[test]
fn check_refuses_statements_that_are_not_queries() {
    let e = check_error("CREATE TABLE t AS SELECT * FROM input");
    assert!(e.contains("pipeline.toml:8"), "{e}");
}
