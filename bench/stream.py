"""Streaming: what checkpoints cost, and how long a row takes through the
`http` ingest source.

1. Throughput with checkpoints every 1 s versus none, side by side in one
   run (alternating, median of each), on two pipelines:
   - `generate → aggregate → parquet` (small state: open windows);
   - `csv → dedupe → aggregate → parquet`, the crash test's shape (state
     grows with every distinct id: the dedupe set is snapshotted whole at
     every checkpoint).
   And the host state store: `generate → dedupe → blackhole` on
   scattered string keys (each row a new key), the seen keys in the
   plugin's memory (`store = "memory"`, snapshotted whole) or in the host
   store (`store = "host"`, checkpoints write only new keys); and peak
   memory with 100 M keys in the host store under a 256 MiB budget.
2. End-to-end latency of the `http` source at a moderate rate: a client
   POSTs rows stamped with their send time; weir passes them through a
   filter plugin to an NDJSON stdout sink; a reader stamps their arrival.
   p50 / p99 for two `max_delay_ms` settings.

Run through `bench/run` (or directly: --weir BIN --plugins DIR); --smoke
uses tiny inputs so CI can run it.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path


def run(weir: str, manifest: Path, source: str) -> tuple[float, list[float]]:
    """Runs a bounded pipeline: its wall time (process start to exit,
    the final checkpoint included) and the source's rows/s on each
    0.5 s progress line but the first and last (the steady state)."""
    started = time.perf_counter()
    done = subprocess.run([weir, "run", "--quiet", "--progress", "0.5", str(manifest)],
                          check=True, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "RUST_LOG": "error"})
    wall = time.perf_counter() - started
    rates = []
    for line in done.stderr.splitlines():
        if line.startswith("progress: "):
            first = line[len("progress: "):].split(" | ")[0].split()
            if first[0] == source:
                rates.append(float(first[1]))
    return wall, rates[1:-1]


def throughput(weir: str, plugins: Path, work: Path, name: str, body: str, rows: int,
               repeat: int, source: str) -> None:
    times = {"none": [], "1 s": []}
    steady = {"none": [], "1 s": []}
    for i in range(repeat):
        for label in times:
            case = work / f"{name}-{label.replace(' ', '')}-{i}"
            case.mkdir()
            checkpoint = ('checkpoint = { dir = "ckpt", interval_ms = 1000 }'
                          if label == "1 s" else "")
            manifest = case / "pipeline.toml"
            manifest.write_text(f"[pipeline]\n{checkpoint}\n" + body)
            wall, rates = run(weir, manifest, source)
            times[label].append(wall)
            steady[label].extend(rates)
    base = statistics.median(times["none"])
    ckpt = statistics.median(times["1 s"])
    print(f"  {name}: {rows:,} rows, median of {repeat}; whole run: no checkpoints "
          f"{rows / base / 1e6:.2f} M rows/s ({base:.2f} s), checkpoint every 1 s "
          f"{rows / ckpt / 1e6:.2f} M rows/s ({ckpt:.2f} s) -> {base / ckpt * 100:.1f}%")
    if steady["none"] and steady["1 s"]:
        a, b = statistics.median(steady["none"]), statistics.median(steady["1 s"])
        print(f"    steady state (source rows/s, 0.5 s samples, first and last dropped): "
              f"{a / 1e6:.2f} vs {b / 1e6:.2f} M rows/s -> {b / a * 100:.1f}% "
              f"({len(steady['none'])} and {len(steady['1 s'])} samples)")


def latency(weir: str, plugins: Path, work: Path, max_delay_ms: int, rate: int,
            seconds: float) -> None:
    case = work / f"latency-{max_delay_ms}"
    case.mkdir()
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manifest = case / "pipeline.toml"
    manifest.write_text(f"""
[sources.ingest]
type = "http"
address = "127.0.0.1:{port}"
schema = [{{ name = "id", type = "int64" }}, {{ name = "sent_us", type = "int64" }}]
max_delay_ms = {max_delay_ms}

[transforms.keep]
plugin = "{plugins}/filter.wasm"
inputs = ["ingest"]
config = {{ predicate = "id >= 0" }}

[sinks.out]
type = "stdout"
inputs = ["keep"]
format = "ndjson"
""")
    proc = subprocess.Popen([weir, "run", "--quiet", "--progress", "0", str(manifest)],
                            stdout=subprocess.PIPE, env={**os.environ, "RUST_LOG": "error"})
    latencies = []

    def read():
        for line in proc.stdout:
            now = time.time_ns() // 1000
            latencies.append(now - json.loads(line)["sent_us"])

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.time() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.connect()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    # `rate` rows/s as 10-row requests, paced to the clock.
    per_request = 10
    interval = per_request / rate
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        now_us = time.time_ns() // 1000
        body = "".join(json.dumps({"id": sent + i, "sent_us": now_us}) + "\n"
                       for i in range(per_request))
        conn.request("POST", "/", body, {"Content-Type": "application/x-ndjson"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        sent += per_request
        due = started + (sent // per_request) * interval
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    time.sleep(max_delay_ms / 1000 + 0.5)
    proc.send_signal(2)
    proc.wait(timeout=60)
    reader.join()
    assert len(latencies) == sent, (len(latencies), sent)
    ms = sorted(v / 1000 for v in latencies)
    p50 = ms[len(ms) // 2]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"  http latency, {rate} rows/s for {seconds:.0f} s, max_delay_ms = {max_delay_ms}: "
          f"{len(ms):,} rows, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")


def timed(weir: str, manifest: Path) -> tuple[float, float, str]:
    """Runs a bounded pipeline: wall s, peak RSS MiB (this child's own,
    from wait4), and its error ("" when it succeeded)."""
    started = time.perf_counter()
    proc = subprocess.Popen([weir, "run", "--quiet", "--progress", "0", str(manifest)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "RUST_LOG": "error"})
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    failed = "" if proc.returncode == 0 else (err.strip().splitlines() or ["failed"])[-1]
    return wall, usage.ru_maxrss / 1024, failed


def state_store(weir: str, plugins: Path, work: Path, rows: int, big: int, repeat: int) -> None:
    """Dedupe on scattered keys, its seen set in the plugin's memory or the
    host store, with checkpoints every 1 s or none; then 100 M keys."""
    def manifest(name: str, store: str, checkpoint: bool, n: int, memory_mb: int) -> Path:
        case = work / name
        case.mkdir()
        path = case / "pipeline.toml"
        ckpt = 'checkpoint = { dir = "ckpt", interval_ms = 1000 }' if checkpoint else ""
        path.write_text(f"""[pipeline]
{ckpt}
[sources.gen]
type = "generate"
rows = {n}
keys = 1000000000000000

[transforms.unique]
plugin = "{plugins}/dedupe.wasm"
inputs = ["gen"]
config = {{ key = ["key"], store = "{store}" }}
limits = {{ memory_mb = {memory_mb} }}

[sinks.out]
type = "blackhole"
inputs = ["unique"]
""")
        return path

    results = {}
    for i in range(repeat):
        for store in ("memory", "host"):
            for checkpoint in (False, True):
                wall, rss, failed = timed(weir, manifest(f"state-{store}-{checkpoint}-{i}", store,
                                                         checkpoint, rows, 2048))
                results.setdefault((store, checkpoint), []).append((wall, rss, failed))
    print(f"  dedupe on {rows:,} scattered string keys (generate -> dedupe -> blackhole, "
          f"memory_mb = 2048), median of {repeat}:")
    for store in ("memory", "host"):
        line = []
        for checkpoint in (False, True):
            runs = results[(store, checkpoint)]
            failed = [f for _, _, f in runs if f]
            label = "checkpoint every 1 s" if checkpoint else "no checkpoints"
            if failed:
                line.append(f"{label}: FAILED ({failed[0][:160]})")
                continue
            wall = statistics.median(w for w, _, _ in runs)
            rss = max(r for _, r, _ in runs)
            line.append(f"{label} {rows / wall / 1e6:.2f} M rows/s ({wall:.2f} s, peak RSS {rss:.0f} MiB)")
        ratio = ""
        if all(not f for runs in (results[(store, False)], results[(store, True)]) for _, _, f in runs):
            a = statistics.median(w for w, _, _ in results[(store, False)])
            b = statistics.median(w for w, _, _ in results[(store, True)])
            ratio = f" -> {a / b * 100:.1f}% (target >= 90%)"
        print(f"    store = \"{store}\": " + "; ".join(line) + ratio)
    wall, rss, failed = timed(weir, manifest("state-big", "host", True, big, 256))
    outcome = f"FAILED ({failed[:160]})" if failed else (
        f"{big / wall / 1e6:.2f} M rows/s ({wall:.1f} s), peak RSS {rss:.0f} MiB")
    print(f"  {big:,} distinct keys in the host store, memory_mb = 256, checkpoint every 1 s: "
          f"{outcome} (target: memory bounded by the budget)")


def aggregate_store(weir: str, plugins: Path, work: Path, rows: int) -> None:
    """aggregate with ~1 M groups open (1 h windows over 1 M keys, a row a
    ms), its windows in the plugin's memory or the host store, with
    checkpoints every 1 s or none."""
    line = []
    for store in ("memory", "host"):
        walls = []
        for checkpoint in (False, True):
            case = work / f"aggregate-{store}-{checkpoint}"
            case.mkdir()
            ckpt = 'checkpoint = { dir = "ckpt", interval_ms = 1000 }' if checkpoint else ""
            path = case / "pipeline.toml"
            path.write_text(f"""[pipeline]
{ckpt}
[sources.gen]
type = "generate"
rows = {rows}
keys = 1000000
watermark = {{ column = "ts", delay_ms = 1000 }}

[transforms.agg]
plugin = "{plugins}/aggregate.wasm"
inputs = ["gen"]
config = {{ time = "ts", window_ms = 3600000, group_by = ["key"], store = "{store}",
            aggregates = [{{ op = "count" }}, {{ op = "sum", column = "value" }}] }}
limits = {{ memory_mb = 1024, timeout_ms = 60000 }}

[sinks.out]
type = "blackhole"
inputs = ["agg"]
""")
            wall, rss, failed = timed(weir, path)
            label = "checkpoint every 1 s" if checkpoint else "no checkpoints"
            walls.append(None if failed else wall)
            line.append(f"    store = \"{store}\", {label}: " + (
                f"FAILED ({failed[:160]})" if failed else
                f"{rows / wall / 1e6:.2f} M rows/s ({wall:.2f} s, peak RSS {rss:.0f} MiB)"))
        if all(walls):
            line[-1] += f" -> {walls[0] / walls[1] * 100:.1f}% of no checkpoints"
    print(f"  aggregate, {rows:,} rows, 1 h windows over 1 M keys (generate -> aggregate -> blackhole):")
    print("\n".join(line))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def backpressure(weir: str, plugins: Path, work: Path, seconds: float) -> None:
    """A source able to make 1 M rows/s into a sink throttled to 10 % of
    that: resident memory sampled every second must stay flat."""
    case = work / "backpressure"
    case.mkdir()
    manifest = case / "pipeline.toml"
    manifest.write_text(f"""
[sources.gen]
type = "generate"
rate = 1000000

[transforms.keep]
plugin = "{plugins}/filter.wasm"
inputs = ["gen"]
config = {{ predicate = "value > -1000" }}

[sinks.slow]
type = "blackhole"
inputs = ["keep"]
rate = 100000
""")
    proc = subprocess.Popen([weir, "run", "--progress", "0", str(manifest)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "error"})
    samples = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        time.sleep(1.0)
        samples.append((time.perf_counter() - started, rss_mib(proc.pid)))
    proc.send_signal(2)
    out, _ = proc.communicate(timeout=60)
    elapsed = time.perf_counter() - started
    produced = next(int(l.split()[3]) for l in out.splitlines() if l.startswith("gen "))
    warm = [m for t, m in samples if t >= min(5.0, seconds / 2)]
    marks = ", ".join(f"{t:.0f} s {m:.1f}" for t, m in samples
                      if round(t) in (1, 5, 10, 30, 60) or t == samples[-1][0])
    print(f"  backpressure, source 1 M rows/s max into a sink at 100 k rows/s for {seconds:.0f} s: "
          f"source made {produced / elapsed / 1e3:.0f} k rows/s; RSS MiB at {marks}; "
          f"after warm-up min {min(warm):.1f}, max {max(warm):.1f} (spread {max(warm) - min(warm):.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weir", required=True)
    parser.add_argument("--plugins", required=True, type=Path)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    plugins = args.plugins.resolve()
    smoke = args.smoke
    gen_rows = 200_000 if smoke else 30_000_000
    # 11.2 M rows, every tenth a re-delivery: 10.08 M distinct dedupe keys.
    files, per_file = (4, 5_000) if smoke else (56, 200_000)
    repeat = 1 if smoke else 3
    print("streaming (bench/stream.py):")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        throughput(args.weir, plugins, work, "generate -> aggregate -> parquet", f"""
[sources.gen]
type = "generate"
rows = {gen_rows}
watermark = {{ column = "ts", delay_ms = 0 }}

[transforms.windows]
plugin = "{plugins}/aggregate.wasm"
inputs = ["gen"]
config = {{ time = "ts", window_ms = 1000, group_by = ["key"],
             aggregates = [{{ op = "count" }}, {{ op = "sum", column = "value" }}] }}

[sinks.out]
type = "parquet"
inputs = ["windows"]
path = "out/windows.parquet"
""", gen_rows, repeat, "gen")

        data = work / "orders"
        data.mkdir()
        row = 0
        for f in range(files):
            with (data / f"orders-{f:04}.csv").open("w") as out:
                out.write("id,customer,amount,ts\n")
                for _ in range(per_file):
                    key = row - 3 if row % 10 == 9 else row
                    ts = 1_704_067_200 + row // 1000
                    out.write(f"{key},c{row * 31 % 13},{row * 37 % 1000 / 10 - 5},"
                              f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ts))}\n")
                    row += 1
        throughput(args.weir, plugins, work, "csv -> dedupe -> aggregate -> parquet", f"""
[sources.orders]
type = "csv"
path = "{work}/orders/*.csv"
schema = [{{ name = "id", type = "int64" }}, {{ name = "customer", type = "utf8" }},
          {{ name = "amount", type = "float64" }}, {{ name = "ts", type = "timestamp" }}]
watermark = {{ column = "ts", delay_ms = 1000 }}

[transforms.unique]
plugin = "{plugins}/dedupe.wasm"
inputs = ["orders"]
config = {{ key = ["id"] }}
# Millions of distinct ids: the seen set outgrows the default 512 MiB.
limits = {{ memory_mb = 2048 }}

[transforms.per_second]
plugin = "{plugins}/aggregate.wasm"
inputs = ["unique"]
config = {{ time = "ts", window_ms = 1000, group_by = ["customer"],
             aggregates = [{{ op = "count" }}, {{ op = "sum", column = "amount" }}] }}

[sinks.out]
type = "parquet"
inputs = ["per_second"]
path = "out/agg.parquet"
""", files * per_file, repeat, "orders")

        state_store(args.weir, plugins, work, 200_000 if smoke else 10_000_000,
                    1_000_000 if smoke else 100_000_000, repeat)
        aggregate_store(args.weir, plugins, work, 200_000 if smoke else 5_000_000)

        seconds = 1.0 if smoke else 10.0
        for delay in (10, 100):
            latency(args.weir, plugins, work, delay, 1000, seconds)
        backpressure(args.weir, plugins, work, 3.0 if smoke else 60.0)


if __name__ == "__main__":
    main()
