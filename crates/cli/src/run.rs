//! `weir run` and `weir dev`: load, prepare and run a pipeline with what
//! reports on it while it runs (progress lines, metrics, the live view,
//! lineage), and stop it gracefully on Ctrl-C or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use weir::exec::{self, Control};
use weir::graph::Graph;
use weir::manifest::Manifest;
use weir::plugin::{EngineConfig, PluginHost};
use weir::reload::{Controller, Options};
use weir_plugin_build as build;

use crate::{graph, lineage, metrics, progress, ui};

pub(crate) fn load_graph(manifest: &std::path::Path) -> anyhow::Result<Graph> {
    Ok(Graph::new(Manifest::load(manifest)?)?)
}

/// How `weir run` reports while it runs.
#[derive(Default)]
pub(crate) struct Reporting {
    /// Seconds between progress lines (0: none).
    pub(crate) progress: f64,
    /// `--metrics`: where to serve Prometheus metrics.
    pub(crate) metrics: Option<std::net::SocketAddr>,
    /// `--lineage`: where OpenLineage events go.
    pub(crate) lineage: Option<String>,
    /// `--ui`: where to serve the live view.
    pub(crate) ui: Option<std::net::SocketAddr>,
}

/// Runs the pipeline at `manifest` until its sources end or Ctrl-C; with
/// `watch`, under a reload controller.
pub(crate) fn run(
    manifest: &Path,
    watch: Option<Options>,
    reporting: Reporting,
) -> anyhow::Result<exec::RunSummary> {
    let loading = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Listening before the (possibly long) plugin compile: Ctrl-C while
    // loading is a stop like any other, not the default instant death.
    let control = Arc::new(Control::default());
    runtime.spawn(stop_on_signal(control.clone()));
    let graph = load_graph(manifest)?;
    let metrics_addr = reporting.metrics.or(graph.manifest.pipeline.metrics);
    same_address_check(metrics_addr, reporting.ui)?;
    let _metrics = match metrics_addr {
        Some(addr) => {
            let server = metrics::MetricsServer::start(addr, control.clone())?;
            eprintln!("metrics: http://{}/metrics", server.addr);
            Some(server)
        }
        None => None,
    };
    let lineage = lineage::configure(&graph, reporting.lineage.as_deref())
        .map(|c| Arc::new(lineage::Lineage::new(&graph, manifest, &c)));
    let outcome = run_graph(
        &graph,
        watch,
        &reporting,
        (&control, &runtime, loading),
        lineage.as_ref(),
    );
    if let Some(lineage) = &lineage {
        let sent = match &outcome {
            Ok(summary) => lineage.complete(&summary.nodes),
            Err(e) => lineage.fail(&weir::error::report(e.chain())),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "lineage: final event not sent");
        }
    }
    outcome
}

/// Metrics and the live view are two servers: one address for both would
/// fail as "address in use" after the plugins compiled, blaming another
/// process. Port 0 (any free port) is two different ports.
fn same_address_check(
    metrics: Option<std::net::SocketAddr>,
    ui: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    match (metrics, ui) {
        (Some(m), Some(u)) if m == u && m.port() != 0 => anyhow::bail!(
            "--ui and metrics both ask for {m}: the live view and the metrics endpoint \
             each need a port of their own (e.g. --ui {})",
            std::net::SocketAddr::new(m.ip(), m.port().wrapping_add(1))
        ),
        _ => Ok(()),
    }
}

/// Prepares and runs `graph` (the part of [`run`] a lineage run covers).
fn run_graph(
    graph: &Graph,
    watch: Option<Options>,
    reporting: &Reporting,
    (control, runtime, loading): (&Arc<Control>, &tokio::runtime::Runtime, std::time::Instant),
    lineage: Option<&Arc<lineage::Lineage>>,
) -> anyhow::Result<exec::RunSummary> {
    let host = PluginHost::new(&EngineConfig::with_max_stack_kb(
        graph.manifest.pipeline.max_stack_kb,
    ))?;
    let prepared = graph.prepare(&host)?;
    let load = loading.elapsed();
    let _ui = match reporting.ui {
        Some(addr) => {
            let svg = graph::live_svg(graph, &prepared);
            let title = graph.manifest.path.display().to_string();
            let server = ui::UiServer::start(addr, control.clone(), svg, title)?;
            eprintln!("live view: http://{}/", server.addr);
            Some(server)
        }
        None => None,
    };
    let _heartbeat = match lineage {
        Some(lineage) => {
            lineage.start(&prepared)?;
            let every = graph
                .manifest
                .pipeline
                .lineage
                .as_ref()
                .map_or(weir::defaults::LINEAGE_RUNNING_INTERVAL_MS, |l| {
                    l.running_interval_ms
                });
            (every > 0).then(|| {
                lineage::Heartbeat::start(
                    lineage.clone(),
                    control.clone(),
                    std::time::Duration::from_millis(every),
                )
            })
        }
        None => None,
    };
    let _controller = match watch {
        Some(options) => Some(Controller::start(
            graph,
            &prepared,
            host.clone(),
            control.clone(),
            options,
        )?),
        None => None,
    };
    let every = reporting.progress;
    let _progress = (every > 0.0 && every.is_finite()).then(|| {
        progress::Progress::start(control.clone(), std::time::Duration::from_secs_f64(every))
    });
    #[cfg(feature = "kafka")]
    if crate::slots::scaled_source(&graph.manifest).is_some() {
        // Each partition's pipeline is prepared by its slot.
        drop(prepared);
        let mut summary = crate::slots::run(graph, &host, control, runtime)?;
        summary.load = Some(load);
        return Ok(summary);
    }
    let mut summary = runtime.block_on(exec::run(graph, prepared, control.clone()))?;
    summary.load = Some(load);
    Ok(summary)
}

/// Ctrl-C (SIGINT) or SIGTERM: a graceful stop — sources stop where they
/// are, what is in flight drains, sinks commit, and under checkpoints a
/// final checkpoint keeps the state for a restart. A second signal exits
/// at once (130), as a user who pressed Ctrl-C twice means.
async fn stop_on_signal(control: Arc<Control>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let mut signals = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        signals += 1;
        if signals > 1 {
            tracing::error!("second interrupt: exiting now without a final commit");
            std::process::exit(130);
        }
        tracing::warn!(
            "interrupted: stopping sources, draining what is in flight, committing sinks \
             (interrupt again to exit at once)"
        );
        control.request_stop();
    }
}

/// Builds every plugin the manifest marks as a local crate, so `weir dev`
/// starts on the version its sources say.
pub(crate) fn build_local_plugins(
    manifest: &Path,
    target_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let m = Manifest::load(manifest)?;
    for (name, t) in &m.transforms {
        let Some(dir) = &t.build else { continue };
        let dir = m.resolve(dir);
        let out = m.resolve(&t.plugin);
        let out_dir = out.parent().unwrap_or(Path::new("."));
        let built = build::build(&dir, out_dir, target_dir, None)
            .with_context(|| format!("building plugin {name} from {}", dir.display()))?;
        if !built.iter().any(|b| b.path == out) {
            anyhow::bail!(
                "transform {name}: building {} gives {}, not the `plugin` file {}",
                dir.display(),
                built
                    .iter()
                    .map(|b| b.path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                out.display()
            );
        }
    }
    Ok(())
}
