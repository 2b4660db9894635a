//! The `http_poll` source against a local HTTP server: every pagination
//! style, retries on 500 and 429, auth from the environment, and an
//! API → PostgreSQL load.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use weir_tests::api::{serve, Response};
use weir_tests::{postgres, postgres_url, read_ipc, unique_table, Scratch};

/// Orders `from..to` as JSON objects.
fn orders(from: u64, to: u64) -> Vec<String> {
    (from..to)
        .map(|i| format!(r#"{{"id":{i},"amount":{}.25,"status":"paid"}}"#, i * 3))
        .collect()
}

fn page_param(request: &weir_tests::api::Request, name: &str, default: u64) -> u64 {
    request
        .query
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `source` (a `[sources.orders]` body) into an IPC file; returns the
/// ids in output order.
fn ids(source: &str) -> Vec<i64> {
    let scratch = Scratch::new();
    scratch
        .run(&format!(
            "[sources.orders]\ntype = \"http_poll\"\n{source}\n\n[sinks.out]\ntype = \"ipc\"\ninputs = [\"orders\"]\npath = \"out.arrow\"\n"
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    out.column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

#[test]
fn http_poll_follows_next_links_in_the_body_to_the_last_page() {
    let api = serve(|r| {
        let page = page_param(r, "p", 0);
        let next = if page < 3 {
            format!(r#""/v1/orders?p={}""#, page + 1)
        } else {
            "null".into()
        };
        Response::json(format!(
            r#"{{"data":{{"items":[{}]}},"links":{{"next":{next}}}}}"#,
            orders(page * 10, page * 10 + 10).join(",")
        ))
    });
    let got = ids(&format!(
        "url = \"{}/v1/orders\"\nrecords = \"data.items\"\npagination = {{ style = \"next_link\", path = \"links.next\" }}",
        api.base
    ));
    assert_eq!(got, (0..40).collect::<Vec<_>>());
    assert_eq!(api.requests.lock().unwrap().len(), 4);
}

#[test]
fn http_poll_follows_link_headers() {
    let api = serve(|r| {
        let page = page_param(r, "page", 1);
        let mut response =
            Response::json(format!("[{}]", orders(page * 5, page * 5 + 5).join(",")));
        if page < 2 {
            response = response.header(
                "Link",
                &format!("</orders?page={}>; rel=\"next\"", page + 1),
            );
        }
        response
    });
    let got = ids(&format!(
        "url = \"{}/orders\"\npagination = {{ style = \"next_link\" }}",
        api.base
    ));
    assert_eq!(got, (0..10).map(|i| i + 5).collect::<Vec<_>>());
}

#[test]
fn http_poll_page_and_offset_styles_stop_at_the_short_page() {
    let api = serve(|r| {
        let (from, to) = if r.path == "/paged" {
            let page = page_param(r, "page", 1);
            let size = page_param(r, "per_page", 10);
            ((page - 1) * size, (page * size).min(23))
        } else {
            let offset = page_param(r, "offset", 0);
            (offset, (offset + page_param(r, "limit", 10)).min(23))
        };
        Response::json(format!("[{}]", orders(from, to.max(from)).join(",")))
    });
    let paged = ids(&format!(
        "url = \"{}/paged\"\npagination = {{ style = \"page\", size_param = \"per_page\", size = 10 }}",
        api.base
    ));
    let offset = ids(&format!(
        "url = \"{}/offset\"\npagination = {{ style = \"offset\", limit = 7 }}",
        api.base
    ));
    assert_eq!(paged, (0..23).collect::<Vec<_>>());
    assert_eq!(offset, (0..23).collect::<Vec<_>>());
    // 3 pages of 10 (the third short); 4 pages of 7 (the fourth short).
    let requests = api.requests.lock().unwrap();
    assert_eq!(requests.iter().filter(|r| r.path == "/paged").count(), 3);
    assert_eq!(requests.iter().filter(|r| r.path == "/offset").count(), 4);
}

#[test]
fn http_poll_cursor_style_passes_each_cursor_back() {
    let api = serve(|r| {
        let at = r
            .query
            .get("after")
            .map(|c| c.trim_start_matches('c').parse().unwrap())
            .unwrap_or(0u64);
        let cursor = if at < 20 {
            format!(r#""c{}""#, at + 10)
        } else {
            "null".into()
        };
        Response::json(format!(
            r#"{{"orders":[{}],"next_cursor":{cursor}}}"#,
            orders(at, at + 10).join(",")
        ))
    });
    let got = ids(&format!(
        "url = \"{}/orders\"\nrecords = \"orders\"\npagination = {{ style = \"cursor\", param = \"after\", path = \"next_cursor\" }}",
        api.base
    ));
    assert_eq!(got, (0..30).collect::<Vec<_>>());
}

#[test]
fn http_poll_retries_500_and_429_honouring_retry_after() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let api = serve(move |_| match seen.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => Response::status(500),
        2 => Response::status(429).header("Retry-After", "1"),
        _ => Response::json(format!("[{}]", orders(0, 3).join(","))),
    });
    let started = Instant::now();
    let got = ids(&format!(
        "url = \"{}/orders\"\nbackoff_ms = 20\nretries = 3",
        api.base
    ));
    assert_eq!(got, vec![0, 1, 2]);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured ({:?})",
        started.elapsed()
    );
}

#[test]
fn http_poll_gives_up_after_its_retries_naming_the_status() {
    let api = serve(|_| Response::status(503));
    let scratch = Scratch::new();
    let err = scratch
        .check(&format!(
            "[sources.orders]\ntype = \"http_poll\"\nurl = \"{}/orders?api_key=hush\"\nretries = 2\nbackoff_ms = 10\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"orders\"]\n",
            api.base
        ))
        .err()
        .expect("503 forever")
        .to_string();
    assert!(err.contains("HTTP 503 after 2 retries"), "{err}");
    assert!(
        !err.contains("hush"),
        "the query (which may hold keys) is not shown: {err}"
    );
    assert_eq!(api.requests.lock().unwrap().len(), 3);
}

#[test]
fn http_poll_sends_the_bearer_token_from_the_environment_and_never_shows_it() {
    std::env::set_var("WEIR_TEST_API_TOKEN", "s3cret");
    let api = serve(
        |r| match r.headers.get("authorization").map(String::as_str) {
            Some("Bearer s3cret") => Response::json(format!("[{}]", orders(0, 2).join(","))),
            _ => Response::status(401),
        },
    );
    let got = ids(&format!(
        "url = \"{}/orders\"\nbearer_env = \"WEIR_TEST_API_TOKEN\"",
        api.base
    ));
    assert_eq!(got, vec![0, 1]);
    // A 401 is not retried, and the token appears nowhere in the error.
    std::env::set_var("WEIR_TEST_WRONG_TOKEN", "n0pe");
    let scratch = Scratch::new();
    let err = scratch
        .check(&format!(
            "[sources.orders]\ntype = \"http_poll\"\nurl = \"{}/denied\"\nbearer_env = \"WEIR_TEST_WRONG_TOKEN\"\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"orders\"]\n",
            api.base
        ))
        .err()
        .expect("401")
        .to_string();
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(!err.contains("n0pe"), "{err}");
    let denied = api
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/denied")
        .count();
    assert_eq!(denied, 1, "a 401 is final");
    // A variable that isn't set is an error naming it, before any request.
    let err = scratch
        .check(&format!(
            "[sources.orders]\ntype = \"http_poll\"\nurl = \"{}/orders\"\nheaders_from_env = {{ X-Api-Key = \"WEIR_TEST_UNSET\" }}\n\n[sinks.out]\ntype = \"stdout\"\ninputs = [\"orders\"]\n",
            api.base
        ))
        .err()
        .expect("the variable is unset")
        .to_string();
    assert!(err.contains("WEIR_TEST_UNSET is not set"), "{err}");
}

#[test]
fn http_poll_into_postgres_upsert_loaded_twice_is_the_same_table() {
    let api = serve(|r| {
        let page = page_param(r, "page", 1);
        // Page 2 re-delivers two orders of page 1 with new amounts.
        let body = match page {
            1 => orders(0, 10).join(","),
            2 => [
                orders(10, 15),
                vec![r#"{"id":3,"amount":1.5,"status":"refunded"}"#.to_string()],
            ]
            .concat()
            .join(","),
            _ => String::new(),
        };
        Response::json(format!("[{body}]"))
    });
    let table = unique_table("api");
    let manifest = format!(
        "[sources.orders]\ntype = \"http_poll\"\nurl = \"{}/orders\"\npagination = {{ style = \"page\" }}\n\n\
         [sinks.db]\ntype = \"postgres\"\ninputs = [\"orders\"]\nurl = \"{}\"\ntable = \"{table}\"\nmode = \"upsert\"\nkey = [\"id\"]\n",
        api.base,
        postgres_url()
    );
    let scratch = Scratch::new();
    scratch.run(&manifest).unwrap();
    scratch.run(&manifest).unwrap();
    let rows: Vec<(i64, f64, String)> = postgres()
        .query(
            &format!("SELECT id, amount, status FROM \"{table}\" ORDER BY id"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows.len(), 15);
    assert_eq!(
        rows[3],
        (3, 1.5, "refunded".to_string()),
        "the later delivery wins"
    );
}

#[test]
fn http_poll_polls_again_asking_only_for_records_after_the_last_seen() {
    use std::sync::Mutex;
    // The API's records; more arrive while weir polls.
    let records: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(
        (1..=5)
            .map(|i| (i, format!("2026-11-25T10:00:0{i}Z")))
            .collect(),
    ));
    let served = records.clone();
    let api = serve(move |r| {
        let since = r.query.get("updated_since").cloned().unwrap_or_default();
        let body: Vec<String> = served
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, at)| *at > since)
            .map(|(id, at)| format!(r#"{{"id":{id},"updated_at":"{at}"}}"#))
            .collect();
        Response::json(format!("[{}]", body.join(",")))
    });
    let scratch = Scratch::new();
    let path = scratch.write(
        "pipeline.toml",
        format!(
            "[sources.orders]\ntype = \"http_poll\"\nurl = \"{}/orders\"\npoll_interval_ms = 50\nincremental = {{ param = \"updated_since\", field = \"updated_at\" }}\n\n[sinks.out]\ntype = \"ipc\"\ninputs = [\"orders\"]\npath = \"out.arrow\"\n",
            api.base
        ),
    );
    let graph = weir::graph::Graph::new(weir::manifest::Manifest::load(&path).unwrap()).unwrap();
    let prepared = graph.prepare(weir_tests::host()).unwrap();
    let control = Arc::new(weir::exec::Control::default());
    let stopper = control.clone();
    let runner = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(weir::exec::run(&graph, prepared, stopper))
    });
    std::thread::sleep(Duration::from_millis(400));
    records
        .lock()
        .unwrap()
        .extend((6..=8).map(|i| (i, format!("2026-11-25T10:00:0{i}Z"))));
    std::thread::sleep(Duration::from_millis(400));
    control.request_stop();
    runner.join().unwrap().unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let ids = out
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(
        ids.values().to_vec(),
        (1..=8).collect::<Vec<i64>>(),
        "each record once"
    );
    let requests = api.requests.lock().unwrap();
    assert!(
        requests.len() > 5,
        "it kept polling ({} requests)",
        requests.len()
    );
    assert_eq!(
        requests
            .last()
            .unwrap()
            .query
            .get("updated_since")
            .map(String::as_str),
        Some("2026-11-25T10:00:08Z")
    );
}

#[test]
fn http_poll_reads_nested_objects_into_structs_and_lists_with_exact_amounts() {
    let api = serve(|_| {
        Response::json(
            r#"[{"id": 1, "amount": 12.30, "customer": {"name": "Ana", "country": "DE"}, "items": [{"sku": "a", "qty": 2}]},
                {"id": 2, "amount": 0.05, "customer": {"name": "Bo"}, "items": []}]"#
                .to_string(),
        )
    });
    let scratch = Scratch::new();
    scratch
        .run(&format!(
            "[sources.orders]\ntype = \"http_poll\"\nurl = \"{}/orders\"\nschema = [\n\
             {{ name = \"id\", type = \"int64\" }},\n\
             {{ name = \"amount\", type = \"decimal(12, 2)\" }},\n\
             {{ name = \"customer\", type = \"struct<name: utf8, country: utf8>\" }},\n\
             {{ name = \"items\", type = \"list<struct<sku: utf8, qty: int32>>\" }},\n]\n\n\
             [sinks.out]\ntype = \"ipc\"\ninputs = [\"orders\"]\npath = \"out.arrow\"\n",
            api.base
        ))
        .unwrap();
    let out = read_ipc(&scratch.path("out.arrow")).unwrap();
    let amounts = out
        .column_by_name("amount")
        .unwrap()
        .as_primitive::<arrow::datatypes::Decimal128Type>();
    assert_eq!(amounts.values().to_vec(), vec![1230, 5]);
    let customer = out.column_by_name("customer").unwrap().as_struct();
    let country = customer
        .column_by_name("country")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(
        (country.value(0), country.is_null(1)),
        ("DE", true),
        "a missing field is null"
    );
    let items = out.column_by_name("items").unwrap().as_list::<i32>();
    assert_eq!((items.value_length(0), items.value_length(1)), (1, 0));
}
