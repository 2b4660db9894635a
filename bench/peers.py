"""The seed job — orders CSV -> drop duplicate ids -> normalize column names
-> parse timestamps -> drop non-positive amounts -> Parquet — done by weir
and by DuckDB (1 and 2 threads), Polars and pandas on the same file, side by
side in one run; then weir's peak memory on a 1x and a 10x input.

Run through `bench/run` (which builds weir and the plugins and installs the
peers into .venv-bench); `--smoke` uses tiny inputs so CI can run it.
"""

import argparse
import os
import random
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

NAMES = ["Ada Lovelace", "Grace Hopper", "Dennis Ritchie", '"Doe, John"',
         '"Roe, Pat"', "Barbara Liskov", "Ken Thompson", "Edsger Dijkstra"]
STATUSES = ["paid", "paid", "paid", "pending", "refunded"]


def generate_orders(path: Path, rows: int, seed: int = 7) -> None:
    """Deterministic messy orders: ~10% re-delivered (duplicate) records,
    padded/mixed-case headers, four timestamp shapes plus junk and blanks,
    and negative, zero and missing amounts."""
    rng = random.Random(seed)
    out = ["Order ID,Customer Name, Amount ,Status,Created At\n"]
    recent: list[str] = []
    next_id = 1000
    for _ in range(rows):
        if recent and rng.random() < 0.1:
            out.append(rng.choice(recent))
            continue
        r = rng.random()
        if r < 0.04:
            amount = ""
        elif r < 0.08:
            amount = "0"
        elif r < 0.14:
            amount = f"-{rng.uniform(1, 500):.2f}"
        else:
            amount = f"{rng.uniform(1, 2000):.2f}"
        secs = rng.randrange(0, 365 * 86400)
        t = time.gmtime(1704067200 + secs)
        shape = rng.random()
        if shape < 0.70:
            created = time.strftime("%Y-%m-%d %H:%M:%S", t)
        elif shape < 0.85:
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
        elif shape < 0.92:
            created = time.strftime("%Y-%m-%d", t)
        elif shape < 0.96:
            created = "not a date"
        else:
            created = ""
        line = f"{next_id},{rng.choice(NAMES)},{amount},{rng.choice(STATUSES)},{created}\n"
        next_id += 1
        out.append(line)
        recent.append(line)
        if len(recent) > 1000:
            recent.pop(0)
    path.write_text("".join(out))


def normalize(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def weir_manifest(csv: Path, out: Path, plugins: Path, dedupe: bool, row_group: int) -> str:
    unique = f"""
[transforms.unique]
plugin = "{plugins / 'dedupe.wasm'}"
inputs = ["orders"]
config = {{ key = ["Order ID"] }}
""" if dedupe else ""
    return f"""
[sources.orders]
type = "csv"
path = "{csv}"
{unique}
[transforms.names]
plugin = "{plugins / 'rename.wasm'}"
inputs = ["{'unique' if dedupe else 'orders'}"]

[transforms.times]
plugin = "{plugins / 'parse-time.wasm'}"
inputs = ["names"]
config = {{ columns = ["created_at"] }}

[transforms.valid]
plugin = "{plugins / 'filter.wasm'}"
inputs = ["times"]
config = {{ predicate = "amount > 0" }}

[sinks.out]
type = "parquet"
inputs = ["valid"]
path = "{out}"
row_group_rows = {row_group}
"""


def run_weir(weir: str, manifest: Path, cores: str | None, extra=()) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB, as weir's summary reports it: VmHWM —
    getrusage would count this Python's image, forked before exec) of
    `weir run`, optionally pinned to `cores`."""
    cmd = [weir, "run", *extra, str(manifest)]
    if cores:
        cmd = ["taskset", "-c", cores] + cmd
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"weir failed: {proc.stderr}")
    peak = re.search(r"peak memory (\d+) MiB", proc.stdout)
    return took, int(peak.group(1)) if peak else -1


def run_duckdb(csv: Path, out: Path, threads: int) -> None:
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(f"""
        COPY (
            SELECT * REPLACE (
                COALESCE(try_strptime(created_at, '%Y-%m-%d %H:%M:%S'),
                         try_strptime(created_at, '%Y-%m-%dT%H:%M:%SZ'),
                         try_strptime(created_at, '%Y-%m-%d')) AS created_at)
            FROM (SELECT DISTINCT ON (order_id) *
                  FROM read_csv('{csv}', header = true, normalize_names = true,
                                types = {{'created_at': 'VARCHAR', 'amount': 'DOUBLE'}}))
            WHERE amount > 0
        ) TO '{out}' (FORMAT parquet)
    """)


def run_polars(csv: Path, out: Path) -> None:
    df = pl.scan_csv(csv, schema_overrides={"Created At": pl.Utf8, " Amount ": pl.Float64})
    df = df.rename({c: normalize(c) for c in df.collect_schema().names()})
    df = df.unique(subset=["order_id"], keep="first", maintain_order=True)
    col = pl.col("created_at").str
    ts = pl.coalesce(
        col.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False),
        col.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%SZ", strict=False),
        col.strptime(pl.Datetime("us"), "%Y-%m-%d", strict=False),
    )
    df.with_columns(created_at=ts).filter(pl.col("amount") > 0).sink_parquet(out)


def run_pandas(csv: Path, out: Path) -> None:
    df = pd.read_csv(csv)
    df.columns = [normalize(c) for c in df.columns]
    df = df.drop_duplicates(subset=["order_id"])
    df["created_at"] = pd.to_datetime(df["created_at"], errors="coerce", utc=True, format="mixed")
    df = df[df["amount"] > 0]
    df.to_parquet(out)


def free_ports(n: int) -> list[int]:
    """n distinct free ports on loopback. The sockets are held until all n
    are bound: a port released at once can be handed out again by the very
    next bind, and CI once got the same port for `--metrics` and `--ui`."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_weir_watched(weir: str, manifest: Path, watched: bool,
                     cores: str | None = None) -> tuple[float, float]:
    """`weir run`, and with `watched` also `--metrics` scraped every 100 ms
    (Prometheus scrapes every 5–60 s) and `--ui` with its event stream read
    throughout, as an open browser tab does: wall seconds and weir's CPU
    seconds (user + system)."""
    extra, threads, done = [], [], threading.Event()
    if watched:
        metrics, ui = free_ports(2)
        extra = ["--metrics", f"127.0.0.1:{metrics}", "--ui", f"127.0.0.1:{ui}"]

        def scrape() -> None:
            while not done.is_set():
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=1).read()
                except OSError:
                    pass
                time.sleep(0.1)

        def watch() -> None:
            while not done.is_set():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{ui}/events", timeout=2) as events:
                        while not done.is_set() and events.readline():
                            pass
                except OSError:
                    time.sleep(0.02)

        threads = [threading.Thread(target=scrape), threading.Thread(target=watch)]
    for t in threads:
        t.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        took = run_weir(weir, manifest, cores, extra)[0]
    finally:
        done.set()
        for t in threads:
            t.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def metrics_cost(weir: str, manifest: Path, rows: int, runs: int, pinned: bool = False) -> None:
    """The seed job watched (metrics scraped, the live view open) vs not,
    alternating so that both see the same machine. Medians as well as
    bests: on a shared 2-core machine one run to the next varies by
    ±15 %, more than what is measured here. `pinned`: weir on core 0, this
    process (the scraper and the event reader) on core 1, so that what is
    measured is weir's own cost of serving them, not the client's CPU."""
    runs_of = {False: [], True: []}
    affinity = os.sched_getaffinity(0)
    if pinned:
        os.sched_setaffinity(0, {1})
    try:
        for _ in range(runs):
            for watched in (False, True):
                runs_of[watched].append(
                    run_weir_watched(weir, manifest, watched, "0" if pinned else None))
    finally:
        os.sched_setaffinity(0, affinity)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    wall = {w: [r[0] for r in v] for w, v in runs_of.items()}
    cpu = {w: [r[1] for r in v] for w, v in runs_of.items()}
    where = "weir on core 0, the clients on core 1" if pinned else "both cores shared"
    print(f"\ncost of watching, seed job ({rows:,} rows), {runs} runs each, alternating, {where}:")
    print("| weir run | wall s, best (median) | CPU s, best (median) |")
    print("|---|---|---|")
    for w, label in ((False, "plain"),
                     (True, "--metrics scraped every 100 ms, --ui with its event stream open")):
        print(f"| {label} | {min(wall[w]):.3f} ({med(wall[w]):.3f}) | {min(cpu[w]):.3f} ({med(cpu[w]):.3f}) |")
    print(f"throughput watched: {med(wall[False]) / med(wall[True]) * 100:.1f}% of plain by median wall time, "
          f"{min(wall[False]) / min(wall[True]) * 100:.1f}% by best; CPU "
          f"{med(cpu[True]) / med(cpu[False]) * 100 - 100:+.1f}% by median (target ≥ 97%)")


def timed(f, *args) -> float:
    started = time.perf_counter()
    f(*args)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--plugins", required=True, type=Path)
    ap.add_argument("--smoke", action="store_true")
    # Held out: the plugins and sinks were tuned on seeds 7 and 11; the
    # figures are measured on data none of that work saw.
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    rows = 20_000 if args.smoke else 2_000_000
    plugins = args.plugins.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        csv = d / "orders.csv"
        generate_orders(csv, rows, args.seed)
        size_mb = csv.stat().st_size / 1e6
        print(f"\nseed job: {rows:,} orders ({size_mb:.0f} MB CSV, generator seed {args.seed})\n")

        manifest = d / "seed.toml"
        manifest.write_text(weir_manifest(csv, d / "weir.parquet", plugins, True, 1_048_576))
        run_weir(args.weir, manifest, None)  # warm the compiled-plugin cache
        jobs = [
            ("weir, 2 cores", lambda o: run_weir(args.weir, manifest, None)),
            ("weir, 1 core (taskset)", lambda o: run_weir(args.weir, manifest, "0")),
            ("DuckDB, threads = 1", lambda o: run_duckdb(csv, o, 1)),
            ("DuckDB, threads = 2", lambda o: run_duckdb(csv, o, 2)),
            ("Polars", lambda o: run_polars(csv, o)),
            ("pandas", lambda o: run_pandas(csv, o)),
        ]
        # Rounds, each tool once per round: this VM's speed drifts by
        # ±15 % over minutes, and a drift then hits every tool alike.
        times: dict[str, list[float]] = {label: [] for label, _ in jobs}
        counts = {}
        for _ in range(5):
            for label, job in jobs:
                out = d / "weir.parquet" if label.startswith("weir") else d / (normalize(label) + ".parquet")
                times[label].append(timed(job, out))
                counts[label] = pq.read_metadata(out).num_rows
        if len(set(counts.values())) != 1:
            sys.exit(f"row counts differ: {counts}")
        print(f"every tool wrote {counts['weir, 2 cores']:,} rows; 5 rounds\n")
        print("| tool | seconds, best (median) | rows/s by median | weir (same cores) is faster by, best (median) |")
        print("|---|---|---|---|")
        for label, secs in times.items():
            mine = times["weir, 1 core (taskset)"] if ("threads = 1" in label or "1 core" in label) \
                else times["weir, 2 cores"]
            best, median = min(secs), statistics.median(secs)
            print(f"| {label} | {best:.3f} ({median:.3f}) | {rows / median:,.0f} | "
                  f"{best / min(mine):.2f}× ({median / statistics.median(mine):.2f}×) |")

        metrics_cost(args.weir, manifest, rows, 3 if args.smoke else 15)
        if len(os.sched_getaffinity(0)) >= 2:
            metrics_cost(args.weir, manifest, rows, 3 if args.smoke else 15, pinned=True)

        small_rows = rows // 10
        small = d / "small.csv"
        with open(csv) as f, open(small, "w") as g:
            for i, line in enumerate(f):
                if i > small_rows:
                    break
                g.write(line)
        mem = {}
        for label, path in (("1x", small), ("10x", csv)):
            m = d / f"mem-{label}.toml"
            m.write_text(weir_manifest(path, d / f"mem-{label}.parquet", plugins, False, 100_000))
            mem[label] = run_weir(args.weir, m, None)[1]
        print(f"\npeak RSS, csv -> rename -> parse-time -> filter -> parquet (row groups of 100,000):")
        print(f"{small_rows:,} rows: {mem['1x']} MiB; {rows:,} rows: {mem['10x']} MiB"
              f" = {mem['10x'] / mem['1x']:.2f}× (target < 2×)")


if __name__ == "__main__":
    main()
