//! The fuzz targets (`fuzz/`, `docs/fuzzing.md`) on every test run, without
//! libFuzzer: each target's committed seeds, then random mutations of them
//! (flipped bits, truncations, lying lengths, spliced chunks) for a bounded
//! time. No input may panic; a panicking input is saved for `cargo fuzz run`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use weir_tests::repo;

/// Seconds of mutations per target (`WEIR_FUZZ_SECS`, default 4).
fn budget() -> Duration {
    let secs = std::env::var("WEIR_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(secs)
}

/// xorshift64*: deterministic, so a failure reproduces from the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four of the damages real files suffer and fuzzers make.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len());
        match rng.below(6) {
            0 if !data.is_empty() => data[at] ^= 1 << rng.below(8),
            1 if !data.is_empty() => data[at] = [0, 0xff, 0x7f, 0x80][rng.below(4)],
            2 => data.truncate(at),
            3 if data.len() >= at + 4 => {
                // A lying length or offset.
                let lie = [0u32, 1, 0x7fff_ffff, 0xffff_ffff, 4096][rng.below(5)];
                data[at..at + 4].copy_from_slice(&lie.to_le_bytes());
            }
            4 => {
                let len = rng.below(16);
                let from = rng.below(data.len());
                let chunk: Vec<u8> = data.iter().skip(from).take(len).copied().collect();
                data.splice(at..at, chunk);
            }
            _ => {
                let random: Vec<u8> = (0..rng.below(8)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, random);
            }
        }
    }
    data
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = repo().join("fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Runs `target` on `input`; a panic saves the input and fails the test.
fn survives(name: &str, target: fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        let dir = repo().join("target/fuzz-findings");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{name}-{}", short_hash(input)));
        std::fs::write(&file, input).unwrap();
        panic!(
            "fuzz target {name} panicked; input saved as {} \
             (reproduce: scripts/fuzz {name} --repro {})",
            file.display(),
            file.display()
        );
    }
}

fn short_hash(data: &[u8]) -> String {
    // A short, stable name: FNV-1a is plenty for file names.
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn fuzz(name: &str) {
    let target = weir::fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap();
    let seeds = seeds(name);
    assert!(!seeds.is_empty(), "no seeds for {name}");
    for seed in &seeds {
        survives(name, target, seed);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let deadline = Instant::now() + budget();
    let mut runs = 0;
    while Instant::now() < deadline {
        let seed = &seeds[rng.below(seeds.len())];
        survives(name, target, &mutate(seed, &mut rng));
        runs += 1;
    }
    eprintln!("{name}: {} seeds, {runs} mutations", seeds.len());
}

macro_rules! targets {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            fuzz(stringify!($name));
        }
    )*};
}

mod seeds_and_mutations_never_panic {
    use super::fuzz;

    targets!(
        manifest,
        csv,
        ndjson,
        parquet,
        ipc,
        plugin_output,
        compute,
        checkpoint,
        wit_arrow
    );
}

#[test]
fn every_fuzz_target_has_a_test_and_seeds() {
    let tested = [
        "manifest",
        "csv",
        "ndjson",
        "parquet",
        "ipc",
        "plugin_output",
        "compute",
        "checkpoint",
        "wit_arrow",
    ];
    let targets: Vec<_> = weir::fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(targets, tested);
    for name in targets {
        assert!(
            repo()
                .join("fuzz/fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
    }
}
