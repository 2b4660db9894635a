"""What the benchmark scripts share: timing a command or a call, running
weir pinned to a core or not, and printing results side by side with a
node's own share."""

import subprocess
import sys
import time
from pathlib import Path


def run(cmd, env=None) -> float:
    """Seconds `cmd` took; exits with its stderr when it fails."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed: {proc.stderr}")
    return took


def weir_run(weir: str, manifest: Path, cores: str | None) -> float:
    """`weir run MANIFEST`, on `cores` (taskset) when given."""
    cmd = [weir, "run", str(manifest)]
    return run(["taskset", "-c", cores] + cmd if cores else cmd)


def timed(f, *args) -> float:
    """Seconds `f(*args)` took."""
    started = time.perf_counter()
    f(*args)
    return time.perf_counter() - started


def report(results: dict[str, float], rows: int, batch: int, node: str) -> None:
    """The results as a table, then per core count what the `node` adds
    (the run "weir without the NODE node" subtracted) and the job against
    DuckDB's at equal threads."""
    print("| run | seconds | rows/s |")
    print("|---|---|---|")
    for label, secs in results.items():
        print(f"| {label} | {secs:.3f} | {rows / secs:,.0f} |")
    batches = -(-rows // batch)
    print()
    for label, threads in (("1 core (taskset)", 1), ("2 cores", 2)):
        key = f"weir, {label}"
        if key not in results:
            continue
        share = results[key] - results[f"weir without the {node} node, {label}"]
        duck = results[f"DuckDB, threads = {threads}"]
        print(f"{label}: the {node} node adds {share:.3f} s ({share / batches * 1e3:.2f} ms per "
              f"batch); the whole job is {results[key] / duck:.2f}× DuckDB's "
              f"(threads = {threads}; target ≤ 1.5×)")
