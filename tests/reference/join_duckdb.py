"""The join plugin against DuckDB: the same join over the same files.

  join_duckdb.py make DIR ORDERS CUSTOMERS
      writes DIR/orders.parquet (ORDERS rows: customer_id with nulls and
      ids no customer has), DIR/customers.parquet (CUSTOMERS rows, unique
      ids) and DIR/customers_dup.parquet (some ids twice), with pyarrow.

  join_duckdb.py compare DIR OUTPUT.arrow SQL
      DuckDB runs SQL with a view of every DIR/NAME.parquet, called NAME;
      weir's result is the Arrow IPC file OUTPUT. Column
      names must be equal and the rows equal as multisets (a join's row
      order is the engine's). Prints "equal: N rows", or the difference.
"""

import random
import sys
from pathlib import Path
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def make(folder, orders, customers):
    rng = random.Random(18)
    cities = ["Lyon", "Zürich", "Oslo", None, "São Paulo"]
    ids = list(range(1, customers + 1))
    table = pa.table({
        "id": pa.array(ids, pa.int64()),
        "name": [f"customer {i}" if i % 17 else None for i in ids],
        "city": [rng.choice(cities) for _ in ids],
        "tier": pa.array([rng.choice([1, 2, 3]) for _ in ids], pa.int32()),
    })
    pq.write_table(table, f"{folder}/customers.parquet")
    dup = pa.concat_tables([table, table.slice(0, customers // 10)])
    pq.write_table(dup, f"{folder}/customers_dup.parquet")
    start = datetime(2026, 12, 1, 8, 0)
    pq.write_table(pa.table({
        "order_id": pa.array(range(orders), pa.int64()),
        # 5 % null, 10 % unknown customers.
        "customer_id": pa.array([
            None if rng.random() < 0.05 else
            rng.randrange(customers + 1, customers * 2) if rng.random() < 0.1 else
            rng.randrange(1, customers + 1)
            for _ in range(orders)], pa.int64()),
        "amount": pa.array([Decimal(rng.randrange(-500, 90000)) / 100 for _ in range(orders)],
                           pa.decimal128(10, 2)),
        "ts": [start + timedelta(seconds=i * 7) for i in range(orders)],
    }), f"{folder}/orders.parquet", row_group_size=5000)


def rows(table):
    return Counter(tuple(r.values()) for r in table.to_pylist())


def compare(folder, output, sql):
    con = duckdb.connect()
    for path in sorted(Path(folder).glob("*.parquet")):
        con.execute(f"CREATE VIEW {path.stem} AS SELECT * FROM '{path}'")
    result = con.execute(sql)
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    expected = fetch()
    with open(output, "rb") as f:
        got = ipc.open_file(f).read_all()
    if got.column_names != expected.column_names:
        print(f"columns differ: weir {got.column_names}, DuckDB {expected.column_names}")
        sys.exit(1)
    a, b = rows(got), rows(expected)
    if a != b:
        only_weir = list((a - b).elements())[:5]
        only_duckdb = list((b - a).elements())[:5]
        print(f"rows differ: weir {got.num_rows}, DuckDB {expected.num_rows}\n"
              f"only in weir: {only_weir}\nonly in DuckDB: {only_duckdb}")
        sys.exit(1)
    print(f"equal: {got.num_rows} rows")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
