//! Engine benchmark: what the sandbox costs, measured side by side with the
//! same work done natively in the host, in one run. Not a test.
//!
//! ```sh
//! cargo bench -p weir-tests --bench engine              # full sizes
//! cargo bench -p weir-tests --bench engine -- --smoke   # tiny, for CI
//! cargo bench -p weir-tests --bench engine -- --case filter   # one case
//! ```
//!
//! Cases: the plugin-call boundary (per-call overhead; pass-through round
//! trip vs `memcpy`), column-proportional cost (a filter reading 1 of 32
//! columns vs arrow-rs kernels; 32 vs 2 columns), start-up (first batch
//! with a warm cache; cold compile of each shipped plugin), and cores
//! (`parallelism = 2` vs 1), and languages (the same transform in Rust, C,
//! JavaScript and Python, relative to Rust). The seed job against DuckDB, Polars and
//! pandas, and peak memory, are in `bench/peers.py` (`bench/run`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::cmp::gt;
use arrow::datatypes::{DataType, Field, Schema};
use weir::exec::{self, Control};
use weir::graph::Graph;
use weir::manifest::{Manifest, TransformConfig};
use weir::plugin::{EngineConfig, PluginHost, PluginInstance, Rows};
use weir::sink::Sink;
use weir_tests::{plugins, toml_path, Scratch};

/// Sizes: full, or tiny under `--smoke`.
struct Sizes {
    calls: usize,
    round_trip_rows: usize,
    wide_rows: usize,
    repeats: usize,
    parallel_rows: usize,
    language_rows: usize,
}

fn sizes(smoke: bool) -> Sizes {
    if smoke {
        Sizes {
            calls: 200,
            round_trip_rows: 16_384,
            wide_rows: 16_384,
            repeats: 2,
            parallel_rows: 50_000,
            language_rows: 20_000,
        }
    } else {
        Sizes {
            calls: 20_000,
            round_trip_rows: 1 << 20, // 8 MiB of int64
            wide_rows: 1_000_000,
            repeats: 7,
            parallel_rows: 2_000_000,
            language_rows: 1_000_000,
        }
    }
}

/// Best of `repeats` runs of `f` (after one warm-up).
fn best(repeats: usize, mut f: impl FnMut()) -> Duration {
    f();
    (0..repeats)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn instance(host: &PluginHost, plugin: &str, config: &str) -> PluginInstance {
    let loaded = host.load(Path::new(plugin)).expect("load");
    let node: TransformConfig =
        toml::from_str("plugin = \"bench.wasm\"\ninputs = [\"bench\"]").expect("config");
    let mut instance = host
        .instantiate(&loaded, "bench", &node, Path::new("."))
        .expect("instantiate");
    instance.init(config).expect("init");
    instance
}

fn row(label: &str, value: String, note: String) {
    println!("| {label} | {value} | {note} |");
}

fn boundary(host: &PluginHost, s: &Sizes) {
    let mut pass = instance(host, plugins::PASSTHROUGH, "{}");
    let one =
        RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1i64])) as ArrayRef)])
            .expect("batch");
    let took = best(s.repeats.min(3), || {
        for i in 0..s.calls {
            pass.process(&one, i as u64).expect("process");
        }
    });
    let per_call = took.as_secs_f64() * 1e6 / s.calls as f64;
    row(
        "boundary: `process` on a 1-row batch",
        format!("{per_call:.2} µs/call"),
        "target < 5 µs".into(),
    );

    let mut copy = instance(host, plugins::PASSTHROUGH, r#"{"copy":true}"#);
    for (kind, column) in round_trip_columns(s.round_trip_rows) {
        round_trip(&mut copy, s, kind, column);
    }
    // The 8 MiB columns' three regions (host in, guest, host out) crowd
    // a 32 MiB L3 that `memcpy`'s two share comfortably; 64 MiB columns
    // put both in main memory. Shown beside, the target stays on 8 MiB.
    if s.round_trip_rows >= 1 << 20 {
        let past_cache = (s.round_trip_rows * 8) as i64;
        let big = Int64Array::from((0..past_cache).collect::<Vec<_>>());
        round_trip(&mut copy, s, "int64 (past L3)", Arc::new(big));
    }
    ipc_or_columns(host, s);
}

/// The two ways a plugin with an Arrow of its own (the `sql` plugin's
/// DataFusion is on arrow 59) can take a batch in and give one back: the
/// WIT column tables (`column`, a new `batch`), or one Arrow IPC stream
/// each way (`to-ipc`, `ipc`). A batch shaped like `bench/sql.py`'s web
/// log, every column decoded into arrow-rs in the guest and encoded back.
fn ipc_or_columns(host: &PluginHost, s: &Sizes) {
    let rows = s.round_trip_rows.min(65_536);
    let text = |choices: &[&str]| {
        StringArray::from_iter_values((0..rows).map(|i| choices[i * 7 % choices.len()]))
    };
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from_iter_values(0..rows as i64)) as ArrayRef,
        ),
        (
            "agent",
            Arc::new(text(&["  Firefox ", "CHROME", "safari", "curl/8.5"])),
        ),
        (
            "status",
            Arc::new(arrow::array::Int32Array::from_iter_values(
                (0..rows as i32).map(|i| 200 + i % 4 * 100),
            )) as ArrayRef,
        ),
        (
            "path",
            Arc::new(text(&["/api/v1/orders", "/static/app.js", "/health"])),
        ),
        (
            "bytes",
            Arc::new(Int64Array::from_iter_values(
                (0..rows as i64).map(|i| i * 37 % 500_000),
            )),
        ),
        (
            "ts",
            Arc::new(arrow::array::TimestampMicrosecondArray::from_iter_values(
                (0..rows as i64).map(|i| 1_774_000_000_000_000 + i),
            )),
        ),
    ])
    .expect("batch");
    let time = |mode: &str| {
        let mut plugin = instance(
            host,
            plugins::CONTRACT_V2,
            &format!(r#"{{"mode":"{mode}"}}"#),
        );
        best(s.repeats, || {
            let out = plugin.process(&batch, 0).expect("process");
            assert_eq!(out[0].batch.num_rows(), rows);
        })
    };
    let (columns, ipc) = (time("copy"), time("ipc-copy"));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    row(
        &format!("boundary: a {rows}-row web-log batch into arrow-rs in the guest and back, WIT columns vs Arrow IPC"),
        format!("columns {:.2} ms, IPC {:.2} ms = {:.2}×", ms(columns), ms(ipc), ms(ipc) / ms(columns)),
        "the faster path for a plugin with its own Arrow".into(),
    );
}

/// One column of each shape the boundary carries differently: fixed-width
/// values; offsets + bytes; a list's offsets over a child array; a
/// struct's children. About 8 MiB of buffers each at full size.
fn round_trip_columns(rows: usize) -> Vec<(&'static str, ArrayRef)> {
    let ints = || Int64Array::from((0..rows as i64).collect::<Vec<_>>());
    let names =
        || StringArray::from_iter_values((0..rows).map(|i| format!("n{:06}", i % 1_000_000)));
    let per_list = 4;
    let list = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Int64, true)),
        OffsetBuffer::from_lengths(std::iter::repeat_n(per_list, rows / per_list)),
        Arc::new(Int64Array::from(
            (0..(rows / per_list * per_list) as i64).collect::<Vec<_>>(),
        )),
        None,
    );
    let half = rows / 2;
    let strukt = StructArray::from(vec![
        (
            Arc::new(Field::new("id", DataType::Int64, false)),
            Arc::new(Int64Array::from((0..half as i64).collect::<Vec<_>>())) as ArrayRef,
        ),
        (
            Arc::new(Field::new("name", DataType::Utf8, false)),
            Arc::new(StringArray::from_iter_values(
                (0..half).map(|i| format!("n{:06}", i % 1_000_000)),
            )) as ArrayRef,
        ),
    ]);
    vec![
        ("int64", Arc::new(ints()) as ArrayRef),
        ("utf8", Arc::new(names())),
        ("list<int64>", Arc::new(list)),
        ("struct<int64, utf8>", Arc::new(strukt)),
    ]
}

/// `column` into the plugin and back as a new batch, against `memcpy` of
/// the same number of buffer bytes.
fn round_trip(copy: &mut PluginInstance, s: &Sizes, kind: &str, column: ArrayRef) {
    let bytes = column.to_data().get_slice_memory_size().expect("sizes");
    let big = RecordBatch::try_from_iter([("x", column)]).expect("batch");
    let trip = best(s.repeats * 4, || {
        let out = copy.process(&big, 0).expect("process");
        assert_eq!(out[0].batch.num_rows(), big.num_rows());
    });
    let src = vec![7u8; bytes];
    let mut dst = vec![0u8; bytes];
    let memcpy = best(s.repeats * 4, || {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    });
    let gbs = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e9;
    row(
        &format!(
            "boundary: pass-through round trip, {kind} column, {:.1} MiB",
            bytes as f64 / (1 << 20) as f64
        ),
        format!(
            "{:.2} GB/s vs memcpy {:.2} GB/s = {:.0} %",
            gbs(trip),
            gbs(memcpy),
            gbs(trip) / gbs(memcpy) * 100.0
        ),
        match kind {
            "int64" => "target ≥ 40 % of memcpy",
            "int64 (past L3)" => "beside the int64 target (measured at 8 MiB)",
            "utf8" => "target ≥ 30 % of memcpy",
            _ => "no target of its own (int64 ≥ 40 %, utf8 ≥ 30 %)",
        }
        .into(),
    );
}

fn wide_batch(rows: usize, columns: usize) -> RecordBatch {
    let fields: Vec<Field> = (0..columns)
        .map(|c| Field::new(format!("c{c}"), DataType::Float64, false))
        .collect();
    let arrays: Vec<ArrayRef> = (0..columns)
        .map(|c| {
            // Deterministic values in [-1, 1): about half are > 0.
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ c as u64;
            let values: Vec<f64> = (0..rows)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
                })
                .collect();
            Arc::new(Float64Array::from(values)) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("batch")
}

fn column_proportional(host: &PluginHost, s: &Sizes) {
    let mut filter = instance(host, plugins::FILTER, r#"{"predicate":"c0 > 0"}"#);
    // As in a pipeline where no one reads the filter's `rejected` port.
    filter.set_wired(vec![true, false]);
    // Each run starts with cold caches, as a batch fresh from upstream
    // would: otherwise the narrow batch stays cached between runs and the
    // wide one does not, and the comparison measures the cache.
    let mut flush = vec![0u8; 64 << 20];
    let mut cold = |f: &mut dyn FnMut()| -> Duration {
        (0..=s.repeats)
            .map(|i| {
                flush.iter_mut().for_each(|b| *b = b.wrapping_add(i as u8));
                std::hint::black_box(&flush);
                let started = Instant::now();
                f();
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    // Node time: the filter's output leaves with its selection pending
    // (late materialization). Delivered: the same, plus applying the
    // selection to every column, as a sink downstream does — what the node
    // itself paid before.
    let mut time = |batch: &RecordBatch| {
        let mut in_plugin = Duration::MAX;
        let rows = Rows::from(batch.clone());
        let node = cold(&mut || {
            std::hint::black_box(filter.process_port(0, &rows, 0).expect("process"));
            in_plugin = in_plugin.min(filter.last_call());
        });
        let delivered = cold(&mut || {
            let out = filter.process_port(0, &rows, 0).expect("process");
            std::hint::black_box(out[0].batch.to_batch().expect("materialize"));
        });
        let native = cold(&mut || {
            let mask = gt(batch.column(0), &Float64Array::new_scalar(0.0)).expect("gt");
            filter_record_batch(batch, &mask).expect("filter");
        });
        let kept = filter.process(batch, 0).expect("process")[0]
            .batch
            .to_batch()
            .expect("materialize");
        let mask = gt(batch.column(0), &Float64Array::new_scalar(0.0)).expect("gt");
        assert_eq!(kept, filter_record_batch(batch, &mask).expect("filter"));
        (node, delivered, native, in_plugin)
    };
    let wide = wide_batch(s.wide_rows, 32);
    let narrow = wide.project(&[0, 1]).expect("project");
    let (node32, delivered32, native32, call32) = time(&wide);
    let (node2, delivered2, native2, call2) = time(&narrow);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    row(
        &format!("filter `c0 > 0`, {} rows × 32 columns", s.wide_rows),
        format!(
            "plugin with its selection applied (as for a sink) {:.1} ms, native arrow-rs {:.1} ms: plugin at {:.2}× native speed",
            ms(delivered32),
            ms(native32),
            native32.as_secs_f64() / delivered32.as_secs_f64()
        ),
        "target ≥ 0.8×".into(),
    );
    row(
        &format!("filter `c0 > 0`, {} rows × 2 columns", s.wide_rows),
        format!(
            "node time, selection pending (as for a plugin next) {:.2} ms (32 columns {:.2} ms = {:.2}×); applied {:.1} ms (native {:.1} ms)",
            ms(node2),
            ms(node32),
            node32.as_secs_f64() / node2.as_secs_f64(),
            ms(delivered2),
            ms(native2),
        ),
        "target ≤ 1.5×".into(),
    );
    row(
        "… of which inside the plugin (its work + the 1 column it reads)",
        format!(
            "32 columns {:.2} ms, 2 columns {:.2} ms = {:.2}×",
            ms(call32),
            ms(call2),
            call32.as_secs_f64() / call2.as_secs_f64()
        ),
        "grows with the columns read".into(),
    );
    chained_filters(host, s, &wide, &mut filter, &mut cold);
}

/// Two filters in a row on the wide batch, then a sink: the second reads
/// the first's output through its pending selection (one column filtered),
/// and the sink applies both selections at once — against materializing
/// after each node, as every node did before.
fn chained_filters(
    host: &PluginHost,
    s: &Sizes,
    wide: &RecordBatch,
    first: &mut PluginInstance,
    cold: &mut dyn FnMut(&mut dyn FnMut()) -> Duration,
) {
    let mut second = instance(host, plugins::FILTER, r#"{"predicate":"c1 > 0"}"#);
    second.set_wired(vec![true, false]);
    let rows = Rows::from(wide.clone());
    let mut run = |eager: bool| {
        let mut out = first.process_port(0, &rows, 0).expect("first")[0]
            .batch
            .clone();
        if eager {
            out = Rows::from(out.to_batch().expect("materialize"));
        }
        let out = second.process_port(0, &out, 0).expect("second")[0]
            .batch
            .clone();
        out.to_batch().expect("materialize")
    };
    assert_eq!(run(true), run(false));
    let eager = cold(&mut || {
        std::hint::black_box(run(true));
    });
    let late = cold(&mut || {
        std::hint::black_box(run(false));
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    row(
        &format!(
            "filter `c0 > 0` → filter `c1 > 0` → sink, {} rows × 32 columns",
            s.wide_rows
        ),
        format!(
            "selections kept pending {:.1} ms vs applied at each node {:.1} ms: {:.2}×",
            ms(late),
            ms(eager),
            eager.as_secs_f64() / late.as_secs_f64()
        ),
        "the sink no slower".into(),
    );
}

/// A sink that records when its first batch arrived.
struct FirstBatch(Arc<Mutex<Option<Instant>>>);

impl Sink for FirstBatch {
    fn write(&mut self, _: &RecordBatch) -> weir::Result<()> {
        if let Ok(mut first) = self.0.lock() {
            first.get_or_insert_with(Instant::now);
        }
        Ok(())
    }
    fn commit(self: Box<Self>) -> weir::Result<()> {
        Ok(())
    }
    fn abort(self: Box<Self>) {}
}

/// The quickstart job over `csv`, its sink replaced by `sink` when given.
fn seed_manifest(csv: &Path, plugin_dir: &Path) -> String {
    let plugin = |name: &str| toml_path(&plugin_dir.join(name));
    format!(
        r#"
        [sources.orders]
        type = "csv"
        path = {csv}

        [transforms.unique]
        plugin = {dedupe}
        inputs = ["orders"]
        config = {{ key = ["Order ID"] }}

        [transforms.names]
        plugin = {rename}
        inputs = ["unique"]

        [transforms.times]
        plugin = {times}
        inputs = ["names"]
        config = {{ columns = ["created_at"] }}

        [transforms.valid]
        plugin = {filter}
        inputs = ["times"]
        config = {{ predicate = "amount > 0" }}

        [sinks.out]
        type = "parquet"
        inputs = ["valid"]
        path = "out.parquet"
        "#,
        csv = toml_path(csv),
        dedupe = plugin("dedupe.wasm"),
        rename = plugin("rename.wasm"),
        times = plugin("parse_time.wasm"),
        filter = plugin("filter.wasm"),
    )
}

fn startup(scratch: &Scratch) {
    let cache = scratch.path("cache");
    let manifest = scratch.write(
        "startup.toml",
        seed_manifest(
            &weir_tests::repo().join("examples/quickstart/orders.csv"),
            Path::new(plugins::DEDUPE).parent().expect("dir"),
        ),
    );
    let host_with = |cache: Option<PathBuf>| {
        PluginHost::new(&EngineConfig {
            cache_dir: cache,
            ..EngineConfig::default()
        })
        .expect("host")
    };
    // Warm the cache, then time a fresh start (new engine, as a new process).
    Graph::new(Manifest::load(&manifest).expect("manifest"))
        .expect("graph")
        .prepare(&host_with(Some(cache.clone())))
        .expect("prepare");
    let first = Arc::new(Mutex::new(None));
    let started = Instant::now();
    let host = host_with(Some(cache));
    let graph = Graph::new(Manifest::load(&manifest).expect("manifest")).expect("graph");
    let mut prepared = graph.prepare(&host).expect("prepare");
    prepared
        .sinks
        .insert("out".into(), Box::new(FirstBatch(first.clone())));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(exec::run(&graph, prepared, Arc::new(Control::default())))
        .expect("run");
    let at = first.lock().expect("first").expect("a batch arrived");
    row(
        "start-up: engine + 4 plugins from the warm cache → first output batch",
        format!("{:.1} ms", (at - started).as_secs_f64() * 1e3),
        "target < 100 ms".into(),
    );

    let cold = host_with(None);
    let mut compiles = Vec::new();
    for plugin in [
        plugins::DEDUPE,
        plugins::RENAME,
        plugins::PARSE_TIME,
        plugins::FILTER,
        plugins::SELECT,
    ] {
        let path = Path::new(plugin);
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let started = Instant::now();
        cold.load(path).expect("load");
        compiles.push(format!(
            "{} ({} KiB) {:.0} ms",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("?"),
            size / 1024,
            started.elapsed().as_secs_f64() * 1e3
        ));
    }
    row(
        "start-up: cold compile per shipped plugin",
        compiles.join(", "),
        "once per version: cached on disk after".into(),
    );
}

fn cores(scratch: &Scratch, s: &Sizes) {
    // Day-first timestamps as strings, parsed with a custom pattern (chrono,
    // not the ISO fast path): CPU-heavy, stateless work.
    let input = scratch.path("times.arrow");
    let file = std::fs::File::create(&input).expect("create");
    let schema = Arc::new(Schema::new(vec![Field::new("at", DataType::Utf8, true)]));
    let mut writer = arrow::ipc::writer::FileWriter::try_new(file, &schema).expect("ipc writer");
    let chunk = 8192;
    for start in (0..s.parallel_rows).step_by(chunk) {
        let values: Vec<String> = (start..(start + chunk).min(s.parallel_rows))
            .map(|i| {
                format!(
                    "{:02}/{:02}/2024 {:02}:{:02}:{:02}",
                    1 + i % 28,
                    1 + i % 12,
                    i % 24,
                    i % 60,
                    (i / 60) % 60
                )
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(values))])
            .expect("batch");
        writer.write(&batch).expect("write");
    }
    writer.finish().expect("finish");
    let run = |parallelism: usize| {
        let manifest = scratch.write(
            "cores.toml",
            format!(
                r#"
                [sources.in]
                type = "ipc"
                path = {input}

                [transforms.times]
                plugin = {plugin}
                inputs = ["in"]
                config = {{ columns = ["at"], formats = ["%d/%m/%Y %H:%M:%S"] }}
                parallelism = {parallelism}

                [sinks.out]
                type = "ipc"
                inputs = ["times"]
                path = "cores-out.arrow"
                "#,
                input = toml_path(&input),
                plugin = toml_path(Path::new(plugins::PARSE_TIME)),
            ),
        );
        // As a user runs it: the `weir` binary, one process per run.
        best(s.repeats.min(3), || {
            let status = std::process::Command::new(env!("CARGO_BIN_EXE_weir-under-test"))
                .args(["run", "--quiet"])
                .arg(&manifest)
                .env("RUST_LOG", "warn")
                .status()
                .expect("weir");
            assert!(status.success());
        })
    };
    let one = run(1);
    let two = run(2);
    let rate = |d: Duration| s.parallel_rows as f64 / d.as_secs_f64() / 1e6;
    row(
        &format!(
            "cores: parse-time (`%d/%m/%Y %H:%M:%S`) on {} values, parallelism 2 vs 1",
            s.parallel_rows
        ),
        format!(
            "{:.2} vs {:.2} M rows/s = {:.2}×",
            rate(two),
            rate(one),
            one.as_secs_f64() / two.as_secs_f64()
        ),
        "target ≥ 1.7× (whole pipeline on 2 cores)".into(),
    );
}

/// The same transform (`examples/positive-amounts`) in each language,
/// built from source, on the same batches: plugin throughput relative to
/// the Rust version.
fn languages(host: &PluginHost, scratch: &Scratch, s: &Sizes) {
    let batch_rows = 8192;
    let mut x: u64 = 7;
    let batches: Vec<RecordBatch> = (0..s.language_rows)
        .step_by(batch_rows)
        .map(|start| {
            let amounts: Float64Array = (start..(start + batch_rows).min(s.language_rows))
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (!(x >> 33).is_multiple_of(50))
                        .then(|| ((x >> 11) % 500_000) as f64 / 1000.0 - 50.0)
                })
                .collect();
            RecordBatch::try_from_iter([("amount", Arc::new(amounts) as ArrayRef)]).expect("batch")
        })
        .collect();
    let mut rust_rate = None;
    for lang in ["rust", "c", "js", "python"] {
        let dir = weir_tests::repo()
            .join("examples/positive-amounts")
            .join(lang);
        let guest = weir_tests::repo().join("target/guest");
        let built =
            weir_plugin_build::build_quietly(&dir, &scratch.path("languages"), Some(&guest))
                .unwrap_or_else(|e| panic!("building {lang}: {e}"));
        let path = built[0].path.to_string_lossy().into_owned();
        let mut plugin = instance(host, &path, "{}");
        let took = best(s.repeats.min(3), || {
            for (i, batch) in batches.iter().enumerate() {
                plugin.process(batch, i as u64).expect("process");
            }
        });
        let rate = s.language_rows as f64 / took.as_secs_f64();
        let relative = rate / *rust_rate.get_or_insert(rate);
        row(
            &format!(
                "language: positive-amounts in {lang} on {} rows ({} KiB component)",
                s.language_rows,
                built[0].bytes / 1024
            ),
            format!("{:.2} M rows/s = {relative:.2}× Rust", rate / 1e6),
            "relative to the Rust plugin".into(),
        );
    }
}

fn main() {
    // The `weir` binary's allocator setting: measure what it runs.
    weir_cli::map_large_allocations();
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs this without `--bench`: building it
    // is the test; measuring is for `cargo bench`.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let s = sizes(smoke);
    let scratch = Scratch::new();
    let host = PluginHost::new(&EngineConfig::default()).expect("host");
    // `--case NAME` runs one case (for profiling it alone).
    let only = args
        .iter()
        .position(|a| a == "--case")
        .and_then(|i| args.get(i + 1));
    let run = |name: &str| only.is_none_or(|o| o == name);
    println!("| case | measured | target |");
    println!("|---|---|---|");
    if run("boundary") {
        boundary(&host, &s);
    }
    if run("filter") {
        column_proportional(&host, &s);
    }
    if run("startup") {
        startup(&scratch);
    }
    if run("cores") {
        cores(&scratch, &s);
    }
    if run("languages") {
        languages(&host, &scratch, &s);
    }
}
