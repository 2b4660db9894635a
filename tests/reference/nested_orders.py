"""The nested-orders example's job done by pandas — json_normalize, the
same filter, drop_duplicates — checked against the PostgreSQL table weir
loaded: the same rows in the same order, amounts equal as decimals, the
customer flattened the same way, the line items equal as JSON, and the
column types numeric and jsonb.

Usage: nested_orders.py ORDERS_JSON POSTGRES_URL TABLE"""

import json
import subprocess
import sys
from decimal import Decimal as D

import pandas as pd


def psql(url, sql):
    out = subprocess.run(["psql", url, "-At", "-F", "\t", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def main(path, url, table):
    with open(path) as f:
        orders = json.load(f, parse_float=D)["orders"]
    df = pd.json_normalize(orders, sep="_")
    paid = df["amount"].map(lambda a: a > 0)
    shipped = df["customer_country"].isin(["DE", "FR", "NL"])
    df = df[paid & shipped].drop_duplicates("id", keep="first")
    want = [(int(r.id), r.placed_at, r.amount, r.customer_name, r.customer_country, r.items)
            for r in df.itertuples()]

    rows = psql(url, f'SELECT id, placed_at, amount, customer_name, customer_country, items '
                     f'FROM "{table}" ORDER BY id')
    got = [(int(i), placed, D(amount), name, country, json.loads(items, parse_float=D))
           for i, placed, amount, name, country, items in rows]
    types = dict(psql(url, f"SELECT column_name, data_type FROM information_schema.columns "
                           f"WHERE table_name = '{table}'"))
    problems = []
    want = sorted(want, key=lambda r: r[0])
    if got != want:
        problems.append(f"rows differ:\n  weir:   {got}\n  pandas: {want}")
    for column, kind in [("amount", "numeric"), ("items", "jsonb"), ("customer_country", "text")]:
        if types.get(column) != kind:
            problems.append(f"column {column} is {types.get(column)}, not {kind}")
    for p in problems:
        print(p)
    if not problems:
        print(f"{len(got)} rows, as pandas' json_normalize makes them")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main(*sys.argv[1:4])
