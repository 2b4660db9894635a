//! Hot-reload benchmark: how fast a new plugin version takes over, and
//! what a swap costs the data path. Not a test: it prints figures measured
//! side by side in one run.
//!
//! ```sh
//! cargo bench -p weir-tests --bench reload
//! ```
//!
//! An unbounded `generate` source (unpaced: as fast as the pipeline takes
//! rows) feeds the `stamp` plugin, which writes its version into every row;
//! a probe sink timestamps each batch. After a steady phase, the plugin
//! file is replaced 20 times by a fresh build (new content each time, so
//! each swap compiles), then 20 times by a version seen before (served by
//! the compiled-component cache), swaps 150 ms apart after each takes
//! over; then 6 more fresh builds 2 s apart, a developer's pace (a
//! `cargo build` of a plugin alone takes longer). A 2 s steady window
//! precedes and follows each series; a series' throughput is compared
//! with the mean of the two around it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use weir::exec::{self, Control};
use weir::graph::Graph;
use weir::manifest::Manifest;
use weir::plugin::{EngineConfig, PluginHost};
use weir::reload::{Controller, Options};
use weir::sink::Sink;
use weir_tests::{new_version, plugins, replace, Scratch};

const SWAPS: usize = 20;
/// Fresh builds at a developer's pace.
const PACED_SWAPS: usize = 6;
const BATCH: usize = 1024;
/// Each steady window, between the series.
const STEADY: Duration = Duration::from_secs(2);

/// When each batch reached the sink, its rows, and the version stamped in.
type Arrivals = Arc<Mutex<Vec<(Instant, usize, String)>>>;

struct Probe(Arrivals);

impl Sink for Probe {
    fn write(&mut self, batch: &RecordBatch) -> weir::Result<()> {
        let version = batch
            .column_by_name("version")
            .map(|c| c.as_string::<i32>().value(0).to_string())
            .unwrap_or_default();
        if let Ok(mut seen) = self.0.lock() {
            seen.push((Instant::now(), batch.num_rows(), version));
        }
        Ok(())
    }
    fn commit(self: Box<Self>) -> weir::Result<()> {
        Ok(())
    }
    fn abort(self: Box<Self>) {}
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Rows per second and the longest gap between batches in `[from, to)`.
fn window(arrivals: &[(Instant, usize, String)], from: Instant, to: Instant) -> (f64, Duration) {
    let inside: Vec<_> = arrivals
        .iter()
        .filter(|(t, _, _)| *t >= from && *t < to)
        .collect();
    let rows: usize = inside.iter().map(|(_, n, _)| n).sum();
    let gap = inside
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    (rows as f64 / (to - from).as_secs_f64(), gap)
}

struct Series {
    latencies_ms: Vec<f64>,
    gaps: Vec<Duration>,
}

/// Swaps `count` times, each to `next(i)`, waiting for its first batch,
/// then `pause`.
fn swap_series(
    plugin: &Path,
    arrivals: &Arrivals,
    (count, pause): (usize, Duration),
    next: impl Fn(usize) -> (Vec<u8>, &'static str),
) -> Series {
    let mut latencies_ms = Vec::new();
    let mut gaps = Vec::new();
    for i in 0..count {
        let (bytes, version) = next(i);
        let seen_before = arrivals.lock().expect("probe").len();
        let written = Instant::now();
        replace(plugin, &bytes);
        let first = loop {
            let seen = arrivals.lock().expect("probe");
            if let Some(at) = seen[seen_before..]
                .iter()
                .position(|(t, _, v)| *t >= written && v == version)
            {
                break seen_before + at;
            }
            drop(seen);
            assert!(
                written.elapsed() < Duration::from_secs(30),
                "swap {i} never happened"
            );
            std::thread::sleep(Duration::from_micros(200));
        };
        let seen = arrivals.lock().expect("probe");
        latencies_ms.push((seen[first].0 - written).as_secs_f64() * 1e3);
        if first > 0 {
            gaps.push(seen[first].0 - seen[first - 1].0);
        }
        drop(seen);
        std::thread::sleep(pause);
    }
    Series { latencies_ms, gaps }
}

fn report(label: &str, series: &Series, steady_gap: Duration) {
    let mut sorted = series.latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let worst_gap = series.gaps.iter().max().copied().unwrap_or_default();
    println!(
        "{label}: write -> first batch on the new version: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms; \
         gap at the switch: longest {:.2} ms ({:.1}x the steady longest gap)",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.95),
        sorted.last().copied().unwrap_or_default(),
        worst_gap.as_secs_f64() * 1e3,
        worst_gap.as_secs_f64() / steady_gap.as_secs_f64().max(1e-9),
    );
}

fn main() {
    // The `weir` binary's allocator setting: measure what it runs.
    weir_cli::map_large_allocations();
    // `cargo test --all-targets` builds and runs benches too (without
    // `--bench`): compiling it is the test; measuring is `cargo bench`'s.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("== unpaced source: the pipeline saturates both cores ==");
    scenario(None);
    println!();
    println!("== source paced at 1,000,000 rows/s ==");
    scenario(Some(1_000_000.0));
}

/// One pipeline, its source paced at `rate` rows/s (`None`: unpaced).
fn scenario(rate: Option<f64>) {
    let scratch = Scratch::new();
    let a = std::fs::read(plugins::STAMP_A).expect("stamp-a");
    let b = std::fs::read(plugins::STAMP_B).expect("stamp-b");
    let plugin = scratch.write("plugin.wasm", &a);
    let manifest = scratch.write(
        "pipeline.toml",
        format!(
            "[pipeline]\nbatch_size = {BATCH}\n\n[sources.gen]\ntype = \"generate\"\n{}\n\
             [transforms.stamp]\nplugin = {:?}\ninputs = [\"gen\"]\n\n\
             [sinks.out]\ntype = \"ipc\"\ninputs = [\"stamp\"]\npath = \"unused.arrow\"\n",
            rate.map(|r| format!("rate = {r:.1}")).unwrap_or_default(),
            plugin.display().to_string()
        ),
    );
    // A cache directory of its own: "fresh build" swaps really compile.
    let cache = scratch.path("cache");
    let host = PluginHost::new(&EngineConfig {
        cache_dir: Some(cache),
        ..EngineConfig::default()
    })
    .expect("host");
    let graph = Graph::new(Manifest::load(&manifest).expect("manifest")).expect("graph");
    let mut prepared = graph.prepare(&host).expect("prepare");
    let arrivals: Arrivals = Arc::default();
    prepared
        .sinks
        .insert("out".into(), Box::new(Probe(arrivals.clone())));
    let control = Arc::new(Control::default());
    let controller = Controller::start(
        &graph,
        &prepared,
        host.clone(),
        control.clone(),
        Options::default(),
    )
    .expect("controller");
    let runner = {
        let control = control.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(exec::run(&graph, prepared, control))
        })
    };
    println!(
        "plugin: stamp ({} KiB), {BATCH} rows per batch",
        a.len() / 1024
    );

    std::thread::sleep(Duration::from_millis(500)); // warm up
                                                    // A steady window before and after each series: a series is compared
                                                    // with the mean of the two around it, so drift in the machine's speed
                                                    // over the run (another tenant, the clock) doesn't pass for a cost.
    let steady = || {
        let from = Instant::now();
        std::thread::sleep(STEADY);
        (from, Instant::now())
    };
    let mut steadies = vec![steady()];

    let fresh_build = |tag: &'static str| {
        let (a, b) = (&a, &b);
        move |i: usize| {
            let (base, version) = if i.is_multiple_of(2) {
                (b, "stamp-b")
            } else {
                (a, "stamp-a")
            };
            (new_version(base, &format!("{tag}-{i}")), version)
        }
    };
    let rapid = (SWAPS, Duration::from_millis(150));
    let mut spans = Vec::new();
    let timed = |spans: &mut Vec<(Instant, Instant)>, series: &dyn Fn() -> Series| {
        let from = Instant::now();
        let s = series();
        spans.push((from, Instant::now()));
        s
    };
    let fresh = timed(&mut spans, &|| {
        swap_series(&plugin, &arrivals, rapid, fresh_build("build"))
    });
    steadies.push(steady());
    host.load(Path::new(plugins::STAMP_B)).expect("stamp-b");
    let cached = timed(&mut spans, &|| {
        swap_series(&plugin, &arrivals, rapid, |i| {
            if i.is_multiple_of(2) {
                (b.clone(), "stamp-b")
            } else {
                (a.clone(), "stamp-a")
            }
        })
    });
    steadies.push(steady());
    let paced = (PACED_SWAPS, Duration::from_secs(2));
    let developer = timed(&mut spans, &|| {
        swap_series(&plugin, &arrivals, paced, fresh_build("edit"))
    });
    steadies.push(steady());
    control.request_stop();
    let summary = runner.join().expect("runner").expect("run");
    drop(controller);

    let seen = arrivals.lock().expect("probe").clone();
    let rates: Vec<(f64, Duration)> = steadies
        .iter()
        .map(|(from, to)| window(&seen, *from, *to))
        .collect();
    let steady_rate = rates.iter().map(|r| r.0).sum::<f64>() / rates.len() as f64;
    let steady_gap = rates.iter().map(|r| r.1).max().unwrap_or_default();
    // Each series against the steady windows on either side of it.
    let ratio = |i: usize| {
        let (from, to) = spans[i];
        window(&seen, from, to).0 / ((rates[i].0 + rates[i + 1].0) / 2.0) * 100.0
    };
    println!(
        "steady state: {:.0} rows/s (windows {}), longest gap between batches {:.2} ms",
        steady_rate,
        rates
            .iter()
            .map(|r| format!("{:.1} M", r.0 / 1e6))
            .collect::<Vec<_>>()
            .join(", "),
        steady_gap.as_secs_f64() * 1e3
    );
    report("fresh build each swap (compiles)", &fresh, steady_gap);
    report("swap to a cached version", &cached, steady_gap);
    report("fresh build every 2 s", &developer, steady_gap);
    let stamp = summary.node("stamp").expect("stamp");
    println!(
        "switch at the batch boundary (snapshot + restore + swap): longest {:.3} ms over {} swaps",
        stamp.longest_switch.as_secs_f64() * 1e3,
        stamp.swaps
    );
    // A fresh build swaps in twice when it starts on the baseline and its
    // optimized build lands before the next version; once when it lands
    // later, or when the edit's code was compiled before and it starts
    // optimized.
    println!(
        "fresh builds that swapped from their baseline build to their optimized one: {} of {} \
         (the others started optimized, or were superseded first)",
        stamp
            .swaps
            .saturating_sub(2 * SWAPS as u64 + PACED_SWAPS as u64),
        SWAPS + PACED_SWAPS
    );
    println!(
        "throughput during swaps vs steady: fresh builds {:.0}% , cached versions {:.0}%, \
         fresh builds every 2 s {:.0}% (target >= 90%; write -> first batch: p95 < 300 ms)",
        ratio(0),
        ratio(1),
        ratio(2)
    );
}
