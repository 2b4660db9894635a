//! A plugin that misbehaves as its config says, on every batch (or, for
//! `trap-rows`, on batches holding one of the listed `seq` values):
//!
//! `loop`, `grow` (memory until refused), `recurse`, `alloc-4g`, `panic`,
//! `open-file`, `env`, `slow` (`ms` of busy work), `trap-rows`
//! (`seqs = [..]`), `pass`; `stateful` passes rows and keeps a count it
//! snapshots and restores; `bad-restore` is `stateful` whose `restore`
//! panics (a broken version resuming a checkpoint); `error` returns an
//! error; `log-flood` logs a million 1 KiB lines; `huge-error` returns a
//! 64 MiB error string.
//!
//! `phase` (default `process`) picks where the generic modes (`loop`,
//! `grow`, `recurse`, `alloc-4g`, `panic`, `slow`, `print`, `error`,
//! `log-flood`, `huge-error`)
//! strike: `init`, `describe`, `process`, `finish`, `snapshot` or
//! `restore`; every other phase passes rows through and keeps a count it
//! snapshots.

use std::collections::HashSet;
use std::hint::black_box;

use weir_plugin_sdk::arrow_array::cast::AsArray;
use weir_plugin_sdk::arrow_array::types::Int64Type;
use weir_plugin_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Defaults to `panic`: with an empty config the plugin traps on its
    /// first batch (a broken new version in hot-reload tests).
    #[serde(default = "panic_mode")]
    mode: String,
    #[serde(default)]
    seqs: Vec<i64>,
    #[serde(default)]
    ms: u64,
    #[serde(default)]
    var: String,
    #[serde(default)]
    depth: u64,
    /// `stateful`: this many snapshots fail (return an error) first.
    #[serde(default)]
    fail_snapshots: u64,
    /// `stateful`: a snapshot this many MiB long (zeros after the count).
    #[serde(default)]
    snapshot_mib: usize,
    /// Where the mode strikes.
    #[serde(default = "process_phase")]
    phase: String,
}

fn process_phase() -> String {
    "process".into()
}

fn panic_mode() -> String {
    "panic".into()
}

struct Hostile {
    config: Config,
    seqs: HashSet<i64>,
    /// Rows seen, for `stateful` and `bad-restore`.
    rows: u64,
    /// Snapshots asked for so far (`snapshot` takes `&self`).
    snapshots: std::cell::Cell<u64>,
}

fn deep(n: u64) -> u64 {
    let frame = black_box([n; 16]);
    if n == 0 {
        0
    } else {
        black_box(deep(n - 1) + frame[3])
    }
}

fn recurse(n: u64) -> u64 {
    // black_box keeps the optimiser from turning this into a loop.
    black_box(recurse(black_box(n + 1)) + 1)
}

/// The generic modes, wherever `phase` puts them.
fn misbehave(config: &Config, rows: usize) -> Result<()> {
    match config.mode.as_str() {
        "pass" => {}
        "print" => {
            println!("hello on stdout, {} rows", rows);
            eprintln!("hello on stderr");
        }
        "loop" => loop {
            black_box(());
        },
        "grow" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                black_box(&hoard);
            }
        }
        "deep" => {
            black_box(deep(black_box(config.depth)));
        }
        "recurse" => {
            black_box(recurse(0));
        }
        "alloc-4g" => {
            let v: Vec<u8> = Vec::with_capacity(black_box(4usize << 30).wrapping_sub(1));
            black_box(v);
        }
        "panic" => panic!("hostile plugin panicked on purpose"),
        "open-file" => {
            let text = std::fs::read_to_string("/etc/passwd")
                .map_err(|e| Error::msg(format!("open /etc/passwd: {e}")))?;
            return Err(Error::msg(format!("read a host file! {}", text.len())));
        }
        "env" => {
            let name = if config.var.is_empty() {
                "HOME"
            } else {
                &config.var
            };
            let value = std::env::var(name).map_err(|e| Error::msg(format!("env {name}: {e}")))?;
            return Err(Error::msg(format!("read the host env! {value}")));
        }
        "slow" => {
            let until = std::time::Instant::now() + std::time::Duration::from_millis(config.ms);
            while std::time::Instant::now() < until {
                black_box(());
            }
        }
        "error" => {
            return Err(Error::msg(format!(
                "hostile plugin failed on purpose in {}",
                config.phase
            )))
        }
        "log-flood" => {
            let line = "x".repeat(1024);
            for i in 0..1_000_000 {
                info!("flood {i} {line}");
            }
        }
        "huge-error" => {
            return Err(Error::msg(format!(
                "hostile plugin's huge error: {}",
                "y".repeat(64 << 20)
            )))
        }
        other => return Err(Error::msg(format!("unknown mode {other:?}"))),
    }
    Ok(())
}

impl Transform for Hostile {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        if config.phase == "init" {
            misbehave(&config, 0)?;
        }
        let seqs = config.seqs.iter().copied().collect();
        Ok(Hostile {
            config,
            seqs,
            rows: 0,
            snapshots: std::cell::Cell::new(0),
        })
    }

    fn describe(_input: &Schema, config: &Config) -> Result<Option<Schema>> {
        if config.phase == "describe" {
            misbehave(config, 0)?;
        }
        Ok(None)
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        if self.config.phase != "process" {
            self.rows += input.num_rows() as u64;
            return Ok(vec![Output::pass()]);
        }
        match self.config.mode.as_str() {
            "trap-rows" => {
                let seq = input.array("seq")?;
                if seq
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .any(|s| self.seqs.contains(s))
                {
                    panic!("poison row in batch");
                }
            }
            "stateful" | "bad-restore" => self.rows += input.num_rows() as u64,
            _ => misbehave(&self.config, input.num_rows())?,
        }
        Ok(vec![Output::pass()])
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        if self.config.phase == "finish" {
            misbehave(&self.config, 0)?;
        }
        Ok(Vec::new())
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        if self.config.phase == "snapshot" {
            misbehave(&self.config, 0)?;
        }
        self.snapshots.set(self.snapshots.get() + 1);
        if self.snapshots.get() <= self.config.fail_snapshots {
            return Err(Error::msg("state store busy; try the next checkpoint"));
        }
        let keeps_state = matches!(self.config.mode.as_str(), "stateful" | "bad-restore")
            || self.config.phase != "process";
        Ok(keeps_state.then(|| {
            let mut state = self.rows.to_le_bytes().to_vec();
            state.resize(state.len().max(self.config.snapshot_mib << 20), 0);
            state
        }))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        if self.config.phase == "restore" {
            misbehave(&self.config, 0)?;
        }
        if self.config.mode == "bad-restore" {
            // Through WASI first, as a Python traceback or a C plugin's
            // perror would go.
            eprintln!("restoring {} bytes of state", state.len());
            panic!("hostile plugin panicked in restore on purpose");
        }
        let bytes: [u8; 8] = state
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::msg("bad state"))?;
        self.rows = u64::from_le_bytes(bytes);
        Ok(())
    }
}

weir_plugin_sdk::export!(Hostile);
