"""The sql plugin against DuckDB: the same query over the same file.

  sql_duckdb.py make DATA.parquet ROWS
      writes web-log-like rows (nulls, mixed-case text, nested columns,
      JSON text, decimals, timestamps) with pyarrow.

  sql_duckdb.py compare DATA.parquet CASES.json
      CASES.json is a list of {"name", "duckdb", "output"}: DuckDB runs
      "duckdb" with `input` as a view of DATA.parquet (one thread, input
      order kept); weir's result is the Arrow IPC file "output". Rows must
      be equal in order, column names equal, floats to 1e-9 relative.
      Prints "N cases equal", or every difference.
"""

import json
import math
import random
import sys
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq


def make(path, rows):
    rng = random.Random(18)
    names = ["  Alice ", "BOB", "carol", "Dave  ", "élodie", "", None]
    paths = ["/api/v1/orders/17", "/api/v2/users", "/static/app.js", "/api/v1/orders/9031",
             "/health", None, "/API/v1/x"]
    start = datetime(2026, 3, 28, 22, 30)
    cols = {
        "id": [i for i in range(rows)],
        "name": [rng.choice(names) for _ in range(rows)],
        "status": [rng.choice([200, 200, 200, 304, 404, 500, 503, None]) for _ in range(rows)],
        "path": [rng.choice(paths) for _ in range(rows)],
        "bytes": [rng.choice([None, rng.randrange(0, 200_000)]) for _ in range(rows)],
        "amount": [None if rng.random() < 0.1 else round(rng.uniform(-500, 5000), 3)
                   for _ in range(rows)],
        "price": [None if rng.random() < 0.1 else Decimal(rng.randrange(-99999, 999999)) / 100
                  for _ in range(rows)],
        "ts": [None if rng.random() < 0.05 else start + timedelta(seconds=rng.randrange(0, 400_000))
               for _ in range(rows)],
        "tags": [None if rng.random() < 0.1 else
                 [rng.choice(["new", "vip", "eu", "us", None]) for _ in range(rng.randrange(0, 4))]
                 for _ in range(rows)],
        "s": [None if rng.random() < 0.1 else
              {"a": rng.choice([None, rng.randrange(-50, 50)]), "b": rng.choice(["x", "y", None])}
              for _ in range(rows)],
        "payload": [None if rng.random() < 0.1 else json.dumps(
            {"user": rng.choice(["ann", "bo", "cy"]), "n": rng.randrange(0, 1000),
             "ok": rng.random() < 0.5, "score": rng.uniform(0, 1)})
            for _ in range(rows)],
    }
    schema = pa.schema([
        ("id", pa.int64()), ("name", pa.string()), ("status", pa.int32()), ("path", pa.string()),
        ("bytes", pa.int64()), ("amount", pa.float64()), ("price", pa.decimal128(10, 2)),
        ("ts", pa.timestamp("us")), ("tags", pa.list_(pa.string())),
        ("s", pa.struct([("a", pa.int64()), ("b", pa.string())])), ("payload", pa.string()),
    ])
    pq.write_table(pa.table(cols, schema=schema), path, row_group_size=max(1, rows // 7))


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def compare(data, cases_path):
    with open(cases_path) as f:
        cases = json.load(f)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = true")
    con.execute(f"CREATE VIEW input AS SELECT * FROM read_parquet('{data}')")
    failed = 0
    for case in cases:
        result = con.execute(case["duckdb"])
        names = [d[0] for d in result.description]
        w = [dict(zip(names, row)) for row in result.fetchall()]
        with pa.memory_map(case["output"]) as source:
            got = pa.ipc.open_file(source).read_all()
        problems = []
        if names != got.column_names:
            problems.append(f"columns: duckdb {names} weir {got.column_names}")
        g = got.to_pylist()
        if len(w) != len(g):
            problems.append(f"rows: duckdb {len(w)} weir {len(g)}")
        for i, (rw, rg) in enumerate(zip(w, g)):
            if not all(same(x, y) for x, y in zip(rw.values(), rg.values())):
                problems.append(f"row {i}: duckdb {rw} weir {rg}")
                if len(problems) > 5:
                    break
        if problems:
            failed += 1
            print(f"{case['name']}: differs from DuckDB")
            for p in problems:
                print(f"  {p}")
        elif not w:
            failed += 1
            print(f"{case['name']}: no rows (a test that can't fail)")
    if failed:
        sys.exit(1)
    print(f"{len(cases)} cases equal")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        compare(sys.argv[2], sys.argv[3])
