"""pandas' read_csv, the reference weir's CSV source is checked against.

    read_csv.py FILE '{"sep": ";", "decimal": ","}'

Prints the columns as `name:kind` (i integer, f float, s text, b bool) on
the first line, then one line per row, cells joined by `|`: NULL for a
missing value, floats to 6 decimals.
"""
import json
import sys

import pandas as pd

df = pd.read_csv(sys.argv[1], **json.loads(sys.argv[2]))


def kind(dtype):
    return {"i": "i", "u": "i", "f": "f", "b": "b"}.get(dtype.kind, "s")


def cell(v, k):
    if pd.isna(v):
        return "NULL"
    if k == "f":
        return f"{float(v):.6f}"
    if k == "i":
        return str(int(v))
    return str(v)


kinds = [kind(t) for t in df.dtypes]
print("|".join(f"{c}:{k}" for c, k in zip(df.columns, kinds)))
for row in df.itertuples(index=False):
    print("|".join(cell(v, k) for v, k in zip(row, kinds)))
