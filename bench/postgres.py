"""Loading into PostgreSQL: weir's `postgres` sink (binary COPY) against
pandas `DataFrame.to_sql` (SQLAlchemy + psycopg2, the seed's loader) on the
same orders, into the same server, side by side in one run.

weir is timed end to end (process start, CSV parse, load, commit); pandas
only for `to_sql` (the CSV is read before the clock starts), so the ratio
is conservative for weir. Both tables are checked to hold every row.

Run through `bench/run` (which starts the test server with
scripts/postgres and installs the peers into .venv-bench); `--smoke` uses
a tiny input so CI can run it.
"""

import argparse
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import psycopg2
from sqlalchemy import create_engine

STATUSES = ["paid", "pending", "refunded", "shipped"]


def generate(path: Path, rows: int) -> None:
    rng = random.Random(11)
    with path.open("w") as f:
        f.write("order_id,customer,amount,status,quantity\n")
        for i in range(rows):
            f.write(f"{i},customer {rng.randrange(50_000)},{rng.uniform(1, 900):.2f},"
                    f"{rng.choice(STATUSES)},{rng.randrange(1, 20)}\n")


def count(url: str, table: str) -> int:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{table}"')
        return cur.fetchone()[0]


def drop(url: str, table: str) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weir", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    rows = 2_000 if args.smoke else 500_000
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = tmp / "orders.csv"
        generate(csv, rows)

        drop(args.url, "bench_weir")
        manifest = tmp / "load.toml"
        manifest.write_text(f"""
[sources.orders]
type = "csv"
path = "{csv}"

[sinks.db]
type = "postgres"
inputs = ["orders"]
url = "{args.url}"
table = "bench_weir"
""")
        started = time.perf_counter()
        subprocess.run([args.weir, "run", "--quiet", str(manifest)], check=True,
                       env={**os.environ, "RUST_LOG": "warn"})
        weir_s = time.perf_counter() - started
        assert count(args.url, "bench_weir") == rows

        drop(args.url, "bench_pandas")
        frame = pd.read_csv(csv)
        engine = create_engine(args.url.replace("postgresql://", "postgresql+psycopg2://"))
        started = time.perf_counter()
        frame.to_sql("bench_pandas", engine, index=False, if_exists="replace")
        pandas_s = time.perf_counter() - started
        assert count(args.url, "bench_pandas") == rows

    print(f"| load {rows:,} orders into PostgreSQL: weir `postgres` sink (binary COPY, whole run) "
          f"vs pandas `to_sql` (load only) | {rows / weir_s:,.0f} vs {rows / pandas_s:,.0f} rows/s "
          f"({weir_s:.2f} vs {pandas_s:.2f} s): {pandas_s / weir_s:.1f}× | ≥ 10× |")


if __name__ == "__main__":
    main()
