"""The sql plugin (DataFusion inside the sandbox) against DuckDB running the
same query on the same Parquet file, side by side in one run:

- the job end to end (Parquet -> query -> Parquet), weir on 1 core
  (taskset) and 2 cores against DuckDB with threads = 1 and 2;
- the plugin's own share: the same weir pipeline without the sql node,
  subtracted, per batch;
- cold start: `weir check` with an empty compiled-component cache, then
  from the cache.

Run through `bench/run` (which builds weir and the plugins); `--smoke`
uses a tiny input so CI proves it still runs.
"""

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from common import report, run, timed, weir_run

QUERY = """SELECT id, lower(trim(agent)) AS agent, bytes / 1024.0 AS kb,
  CASE WHEN status >= 500 THEN 'error' WHEN status >= 400 THEN 'client' ELSE 'ok' END AS outcome,
  date_trunc('hour', ts) AS hour
FROM input WHERE status IN (200, 304, 404, 500) AND path LIKE '/api/%'"""


def generate(path: Path, rows: int, seed: int = 20) -> None:
    rng = random.Random(seed)
    agents = ["  Firefox ", "CHROME", "safari", "curl/8.5", "Edge  "]
    paths = ["/api/v1/orders", "/api/v2/users/7", "/static/app.js", "/health", "/api/v1/cart"]
    chunk = 250_000
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        table = pa.table({
            "id": pa.array(range(start, start + n), pa.int64()),
            "agent": pa.array([rng.choice(agents) for _ in range(n)]),
            "status": pa.array([rng.choice([200, 200, 200, 304, 404, 500, 503]) for _ in range(n)],
                               pa.int32()),
            "path": pa.array([rng.choice(paths) for _ in range(n)]),
            "bytes": pa.array([rng.randrange(0, 500_000) for _ in range(n)], pa.int64()),
            "ts": pa.array([1_774_000_000_000_000 + rng.randrange(0, 86_400_000_000)
                            for _ in range(n)], pa.timestamp("us")),
        })
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=chunk)
    writer.close()


def manifest(data: Path, out: Path, plugin: Path | None, batch: int) -> str:
    text = f"""[pipeline]
batch_size = {batch}

[sources.log]
type = "parquet"
path = "{data}"
"""
    last = "log"
    if plugin:
        text += f"""
[transforms.q]
plugin = "{plugin}"
inputs = ["log"]
config = {{ query = {json.dumps(QUERY)} }}
"""
        last = "q"
    return text + f"""
[sinks.out]
type = "parquet"
inputs = ["{last}"]
path = "{out}"
"""


def duckdb_job(data: Path, out: Path, threads: int) -> None:
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(f"CREATE VIEW input AS SELECT * FROM read_parquet('{data}')")
    con.execute(f"COPY ({QUERY}) TO '{out}' (FORMAT parquet)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--plugin", required=True, type=Path, help="sql.wasm")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    rows = 20_000 if args.smoke else 2_000_000
    batch = 65_536
    runs = 1 if args.smoke else 3
    two_cores = len(os.sched_getaffinity(0)) >= 2
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        data = d / "log.parquet"
        generate(data, rows)
        print(f"\nsql plugin: {rows:,} rows, batches of {batch:,}, best of {runs}\n")
        print("query:", " ".join(QUERY.split()))
        with_sql = d / "sql.toml"
        with_sql.write_text(manifest(data, d / "weir.parquet", args.plugin.resolve(), batch))
        without = d / "plain.toml"
        without.write_text(manifest(data, d / "plain.parquet", None, batch))

        # Cold start: an empty cache compiles the 50 MB component; the
        # second check loads it from the cache.
        cache = d / "cache"
        env = dict(os.environ, WEIR_CACHE_DIR=str(cache))
        cold = run([args.weir, "check", str(with_sql)], env)
        warm = min(run([args.weir, "check", str(with_sql)], env) for _ in range(runs))
        print(f"\ncold start (weir check): {cold:.2f} s compiling, {warm:.2f} s from the cache\n")

        weir_run(args.weir, with_sql, None)  # the default cache, warm
        results = {}
        for cores, label in (("0", "1 core (taskset)"), (None, "2 cores")):
            if cores is None and not two_cores:
                continue
            results[f"weir, {label}"] = min(weir_run(args.weir, with_sql, cores) for _ in range(runs))
            results[f"weir without the sql node, {label}"] = min(
                weir_run(args.weir, without, cores) for _ in range(runs))
        for threads in (1, 2):
            out = d / f"duckdb{threads}.parquet"
            results[f"DuckDB, threads = {threads}"] = min(
                timed(duckdb_job, data, out, threads) for _ in range(runs))
        want = pq.read_table(d / "duckdb1.parquet")
        got = pq.read_table(d / "weir.parquet")
        if want.num_rows != got.num_rows or want.column_names != got.column_names:
            sys.exit(f"weir wrote {got.num_rows} rows {got.column_names}, "
                     f"DuckDB {want.num_rows} {want.column_names}")
        print(f"both wrote {got.num_rows:,} rows\n")
        report(results, rows, batch, "sql")

if __name__ == "__main__":
    main()
