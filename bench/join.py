"""The join plugin (a stream enriched with a table) against DuckDB running
the same LEFT JOIN on the same Parquet files, side by side in one run:

- the job end to end (orders Parquet -> join with customers -> Parquet),
  weir on 1 core (taskset) and 2 cores against DuckDB with threads = 1
  and 2;
- the join node's own share: the same weir pipeline without it (orders
  straight to Parquet), subtracted, per batch.

Run through `bench/run` (which builds weir and the plugins); `--smoke`
uses a tiny input so CI proves it still runs.
"""

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from common import report, run, timed, weir_run

QUERY = """SELECT o.*, c.name, c.city, c.tier FROM orders o
LEFT JOIN customers c ON o.customer_id = c.id"""


def generate(folder: Path, orders: int, customers: int, seed: int = 21) -> None:
    rng = random.Random(seed)
    cities = ["Lyon", "Zürich", "Oslo", "Porto", "São Paulo", "Kyoto"]
    ids = range(1, customers + 1)
    pq.write_table(pa.table({
        "id": pa.array(ids, pa.int64()),
        "name": pa.array([f"customer {i}" for i in ids]),
        "city": pa.array([rng.choice(cities) for _ in ids]),
        "tier": pa.array([rng.randrange(1, 4) for _ in ids], pa.int32()),
    }), folder / "customers.parquet")
    chunk = 250_000
    writer = None
    for start in range(0, orders, chunk):
        n = min(chunk, orders - start)
        table = pa.table({
            "order_id": pa.array(range(start, start + n), pa.int64()),
            # 2 % of orders name a customer the table doesn't have.
            "customer_id": pa.array([rng.randrange(1, customers * 102 // 100) for _ in range(n)],
                                    pa.int64()),
            "amount": pa.array([rng.randrange(100, 100_000) / 100 for _ in range(n)]),
            "ts": pa.array([1_774_000_000_000_000 + rng.randrange(0, 86_400_000_000)
                            for _ in range(n)], pa.timestamp("us")),
        })
        if writer is None:
            writer = pq.ParquetWriter(folder / "orders.parquet", table.schema)
        writer.write_table(table, row_group_size=chunk)
    writer.close()


def manifest(folder: Path, out: Path, plugin: Path | None, batch: int) -> str:
    text = f"""[pipeline]
batch_size = {batch}

[sources.orders]
type = "parquet"
path = "{folder / 'orders.parquet'}"
"""
    last = "orders"
    if plugin:
        text += f"""
[sources.customers]
type = "parquet"
path = "{folder / 'customers.parquet'}"

[transforms.enriched]
plugin = "{plugin}"
inputs = {{ stream = "orders", table = "customers" }}
config = {{ on = [{{ stream = "customer_id", table = "id" }}], how = "left" }}
"""
        last = "enriched"
    return text + f"""
[sinks.out]
type = "parquet"
inputs = ["{last}"]
path = "{out}"
"""


def duckdb_job(folder: Path, out: Path, threads: int) -> None:
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    for name in ("orders", "customers"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{folder / name}.parquet')")
    con.execute(f"COPY ({QUERY}) TO '{out}' (FORMAT parquet)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--plugins", required=True, type=Path, help="folder holding join.wasm")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    orders, customers = (20_000, 1_000) if args.smoke else (2_000_000, 100_000)
    batch = 65_536
    runs = 1 if args.smoke else 3
    two_cores = len(os.sched_getaffinity(0)) >= 2
    plugin = (args.plugins / "join.wasm").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        generate(d, orders, customers)
        print(f"\njoin plugin: {orders:,} orders LEFT JOIN {customers:,} customers, "
              f"batches of {batch:,}, best of {runs}\n")
        with_join = d / "join.toml"
        with_join.write_text(manifest(d, d / "weir.parquet", plugin, batch))
        without = d / "plain.toml"
        without.write_text(manifest(d, d / "plain.parquet", None, batch))
        weir_run(args.weir, with_join, None)  # the compiled-component cache, warm
        results = {}
        for cores, label in (("0", "1 core (taskset)"), (None, "2 cores")):
            if cores is None and not two_cores:
                continue
            results[f"weir, {label}"] = min(weir_run(args.weir, with_join, cores)
                                            for _ in range(runs))
            results[f"weir without the join node, {label}"] = min(
                weir_run(args.weir, without, cores) for _ in range(runs))
        for threads in (1, 2):
            out = d / f"duckdb{threads}.parquet"
            results[f"DuckDB, threads = {threads}"] = min(
                timed(duckdb_job, d, out, threads) for _ in range(runs))
        want = pq.read_table(d / "duckdb1.parquet")
        got = pq.read_table(d / "weir.parquet")
        if sorted(want.column_names) != sorted(got.column_names) or want.num_rows != got.num_rows:
            sys.exit(f"weir wrote {got.num_rows} rows {got.column_names}, "
                     f"DuckDB {want.num_rows} {want.column_names}")
        # Rows compared as values (nullability and metadata aside).
        order = [("order_id", "ascending")]
        want_rows = want.sort_by(order).to_pylist()
        got_rows = got.select(want.column_names).sort_by(order).to_pylist()
        if want_rows != got_rows:
            diff = next(i for i, (a, b) in enumerate(zip(want_rows, got_rows)) if a != b)
            sys.exit(f"weir's rows differ from DuckDB's, first at order {diff}: "
                     f"{got_rows[diff]} against {want_rows[diff]}")
        print(f"both wrote the same {got.num_rows:,} rows\n")
        report(results, orders, batch, "join")

if __name__ == "__main__":
    main()
