//! The `weir` command line.

mod alloc;
mod check;
mod graph;
mod lineage;
mod metrics;
mod progress;
mod run;
#[cfg(feature = "kafka")]
mod slots;
mod summary;
mod ui;

pub use alloc::map_large_allocations;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use weir::plugin::{inspect, EngineConfig, PluginHost};
use weir::reload::Options;
use weir_plugin_build::{self as build, Language};

use run::{build_local_plugins, load_graph, run, Reporting};

/// `weir --version`: the plugin contract this host serves (`wit/plugin.wit`'s
/// package), and the engine and Arrow versions it is built with — what a
/// bug report needs. A test keeps it equal to the WIT file and Cargo.lock.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nplugin worlds served: weir:plugin@0.2.0, weir:plugin@0.1.0",
    "\nwasmtime 48.0.8, arrow 60.1.0"
);

/// weir: run sandboxed WebAssembly transforms over Arrow batches.
#[derive(Parser)]
#[command(name = "weir", version, long_version = LONG_VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour in the log: `auto` (only when stderr is a terminal and
    /// NO_COLOR is unset), `always` or `never`.
    #[arg(long, global = true, value_enum, default_value_t = Colour::Auto)]
    color: Colour,
    /// Log lines as `text` (for people) or `json` (one object a line, for
    /// log shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Colour {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a pipeline to completion and prints a summary.
    Run {
        /// The pipeline manifest.
        manifest: PathBuf,
        /// Don't print the summary.
        #[arg(long, short)]
        quiet: bool,
        /// Hot reload: watch the manifest and every plugin file; swap a
        /// changed plugin in at the next batch boundary (a broken version
        /// is rejected) and apply manifest edits live.
        #[arg(long, short)]
        watch: bool,
        /// With --watch: run each new plugin version in shadow on this many
        /// batches, report the difference, and promote it only if it never
        /// failed.
        #[arg(long, value_name = "N", requires = "watch")]
        canary: Option<u32>,
        /// Seconds between live progress lines on stderr (rows/s per node,
        /// event-time lag, last checkpoint); 0: none. A run shorter than
        /// this prints only the summary.
        #[arg(long, value_name = "SECS", default_value_t = 5.0)]
        progress: f64,
        /// Serve Prometheus metrics at http://ADDR/metrics while the
        /// pipeline runs (overrides `[pipeline] metrics`).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
        /// Serve a live view of the running pipeline at http://ADDR/: the
        /// graph with each node's rows/s, queue, lag and failures, the
        /// last checkpoint, plugin versions and hot swaps.
        #[arg(long, value_name = "ADDR")]
        ui: Option<std::net::SocketAddr>,
        /// Write the run summary as JSON to FILE (also when the run fails:
        /// then with the error).
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
        /// OpenLineage run events (START, RUNNING, COMPLETE, FAIL): a file
        /// to append them to as NDJSON, or an http(s) URL to POST them to
        /// (overrides where `[pipeline] lineage` sends them).
        #[arg(long, value_name = "FILE|URL")]
        lineage: Option<String>,
    },
    /// The development loop: `run --watch`, plus rebuilding the plugins the
    /// manifest marks as local crates (`build = "path/to/crate"`) whenever
    /// their sources change, and replaying the last input batches through
    /// each rebuilt version to show what the edit changed.
    Dev {
        /// The pipeline manifest.
        manifest: PathBuf,
        /// Run each new version in shadow on this many batches first.
        #[arg(long, value_name = "N")]
        canary: Option<u32>,
        /// Cargo target directory for plugin rebuilds (default: each
        /// crate's own `target/`).
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
    /// Validates a manifest and every plugin, propagating schemas through
    /// the whole graph, without moving data.
    Check {
        /// The pipeline manifest.
        manifest: PathBuf,
        /// Print the graph as JSON: nodes with their schema per output
        /// port, and edges.
        #[arg(long)]
        json: bool,
    },
    /// Draws the pipeline: nodes with their kind, plugin and output
    /// schema, and the edges between them (dead letters dashed).
    Graph {
        /// The pipeline manifest.
        manifest: PathBuf,
        /// `mermaid`, `dot` (Graphviz) or `svg` (laid out by weir itself).
        #[arg(long, value_enum, default_value_t = graph::Format::Mermaid)]
        format: graph::Format,
        /// Write to FILE instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Plugin authoring: scaffold, build, inspect.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Scaffolds a plugin that builds as is: a Rust crate, or a C,
    /// JavaScript or Python plugin.
    New {
        /// Plugin name (also the directory created).
        name: String,
        /// Language: rust, c, js or python.
        #[arg(long, default_value = "rust", value_parser = parse_language)]
        lang: Language,
        /// Parent directory (default: current).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Path to weir's plugin-sdk (default: the one this weir was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Builds a plugin into a component: a Rust crate (or a workspace of
    /// them), or a C, JavaScript or Python plugin (detected from the files).
    Build {
        /// The plugin's directory.
        dir: PathBuf,
        /// Where to write `<name>.wasm` (default: `<dir>/target/weir`).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Cargo target directory for the guest build (default: `<dir>/target`).
        #[arg(long)]
        target_dir: Option<PathBuf>,
        /// Guest target: `wasm32-wasip2` (default, already a component), or
        /// `wasm32-wasip1` / `wasm32-unknown-unknown` (core modules, which
        /// weir componentizes in-process).
        #[arg(long)]
        target: Option<String>,
    },
    /// Shows what a component imports and exports, and whether weir runs it.
    Inspect {
        /// The `.wasm` file.
        file: PathBuf,
    },
}

fn parse_language(name: &str) -> Result<Language, String> {
    Language::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Language::ALL.iter().map(|l| l.name()).collect();
        format!("unknown language {name:?}; one of {}", names.join(", "))
    })
}

fn init_tracing(colour: Colour, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,cranelift=warn,wasmtime=warn")
    });
    // Colour only for a person at a terminal: a log file or a pipe gets
    // plain text, and NO_COLOR (https://no-color.org) turns it off anyway.
    let colour = match colour {
        Colour::Always => true,
        Colour::Never => false,
        Colour::Auto => {
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(colour).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The exit status of a failed command: 2 when the pipeline as written
/// can't run (the manifest, a schema that doesn't line up, a plugin file
/// that isn't one — fix the files, running again won't help; clap's usage
/// errors are 2 too), 1 when a run failed (a plugin, source or sink error,
/// a checkpoint, I/O). A stream stopped by Ctrl-C or SIGTERM exits 0 once
/// it has committed; a second interrupt exits 130 without committing.
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<weir::Error>() {
        Some(
            weir::Error::Manifest(_) | weir::Error::Schema { .. } | weir::Error::PluginLoad { .. },
        ) => 2,
        _ => 1,
    }
}

/// Entry point of the `weir` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.color, cli.log_format);
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each cause once: weir's errors fold their cause into their
            // own text and keep it as `source()` too.
            eprintln!("error: {}", weir::error::report(e.chain()));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Writes `json` to `path` (pretty, with a final newline).
fn write_json(path: &Path, json: &serde_json::Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(json)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            manifest,
            quiet,
            watch,
            canary,
            progress,
            metrics,
            ui,
            summary_json,
            lineage,
        } => {
            let options = watch.then(|| Options {
                canary: canary.unwrap_or(0),
                ..Options::default()
            });
            let reporting = Reporting {
                progress,
                metrics,
                lineage,
                ui,
            };
            let result = run(&manifest, options, reporting);
            if let Some(path) = &summary_json {
                let json = match &result {
                    Ok(summary) => summary::to_json(summary),
                    Err(e) => summary::failed_json(&weir::error::report(e.chain())),
                };
                write_json(path, &json)?;
            }
            let summary = result?;
            if !quiet {
                println!("{}", summary::render(&summary));
            }
        }
        Command::Dev {
            manifest,
            canary,
            target_dir,
        } => {
            build_local_plugins(&manifest, target_dir.as_deref())?;
            let summary = run(
                &manifest,
                Some(Options {
                    canary: canary.unwrap_or(0),
                    dev: true,
                    target_dir,
                    report: Arc::new(|text: &str| eprintln!("{text}")),
                }),
                Reporting {
                    progress: 5.0,
                    ..Reporting::default()
                },
            )?;
            println!("{}", summary::render(&summary));
        }
        Command::Check { manifest, json } => {
            let graph = load_graph(&manifest)?;
            let host = PluginHost::new(&EngineConfig::with_max_stack_kb(
                graph.manifest.pipeline.max_stack_kb,
            ))?;
            let prepared = graph.prepare(&host)?;
            if json {
                println!("{}", check::to_json(&graph, &prepared));
            } else {
                print!("{}", check::render(&manifest, &graph, &prepared));
            }
        }
        Command::Graph {
            manifest,
            format,
            out,
        } => {
            let graph = load_graph(&manifest)?;
            let host = PluginHost::new(&EngineConfig::with_max_stack_kb(
                graph.manifest.pipeline.max_stack_kb,
            ))?;
            let prepared = graph.prepare(&host)?;
            let text = graph::render(&graph, &prepared, format);
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
        }
        Command::Plugin(PluginCommand::New {
            name,
            lang,
            dir,
            sdk,
        }) => {
            let path = build::scaffold::new_plugin(&name, &dir, sdk.as_deref(), lang)?;
            println!(
                "created {}; build it with `weir plugin build {}`",
                path.display(),
                path.display()
            );
        }
        Command::Plugin(PluginCommand::Build {
            dir,
            out,
            target_dir,
            target,
        }) => {
            let out = out.unwrap_or_else(|| dir.join("target").join("weir"));
            for built in build::build(&dir, &out, target_dir.as_deref(), target.as_deref())? {
                println!("{} ({} KiB)", built.path.display(), built.bytes / 1024);
            }
        }
        Command::Plugin(PluginCommand::Inspect { file }) => {
            let host = PluginHost::new(&EngineConfig::default())?;
            print!("{}", inspect::inspect(&host, &file)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIT_WORLD: &str = "weir:plugin@0.1.0";
    const WIT_WORLD_0_2: &str = "weir:plugin@0.2.0";
    const WASMTIME: &str = "48.0.8";
    const ARROW: &str = "60.1.0";

    #[test]
    fn the_long_version_names_the_wit_world_and_the_engine_and_arrow_versions_built_in() {
        let wit = include_str!("../../../wit/plugin.wit");
        assert!(
            wit.contains(&format!("package {WIT_WORLD};")),
            "{WIT_WORLD}"
        );
        let wit_0_2 = include_str!("../../../wit/0.2/plugin.wit");
        assert!(
            wit_0_2.contains(&format!("package {WIT_WORLD_0_2};")),
            "{WIT_WORLD_0_2}"
        );
        let lock = include_str!("../../../Cargo.lock");
        for (name, version) in [("wasmtime", WASMTIME), ("arrow", ARROW)] {
            assert!(
                lock.contains(&format!("name = \"{name}\"\nversion = \"{version}\"")),
                "{name} {version} is not what Cargo.lock has"
            );
        }
        for part in [WIT_WORLD, WIT_WORLD_0_2, WASMTIME, ARROW] {
            assert!(LONG_VERSION.contains(part), "{LONG_VERSION}");
        }
    }
}
