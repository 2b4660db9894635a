"""Checks what weir's CSV, NDJSON, SQLite and PostgreSQL sinks wrote for
nested, decimal and dictionary columns against pyarrow's own reading of the
source file: every value equal, exactly (decimals as decimal.Decimal, never
floats), nulls where pyarrow has them.

Usage: check_sinks.py SOURCE_DIR OUT_DIR POSTGRES_URL TABLE_PREFIX TYPE...

For each TYPE, SOURCE_DIR/TYPE.arrow is the source (one column "v", written
by every_type.py) and OUT_DIR holds TYPE.csv, TYPE.ndjson and TYPE.sqlite
(table "t"); PostgreSQL holds table TABLE_PREFIX_TYPE. Prints one line per
mismatch and exits 1 if there is any."""

import csv
import decimal
import json
import sqlite3
import subprocess
import sys

import pyarrow as pa
import pyarrow.ipc as ipc

D = decimal.Decimal


def normal(value, t):
    """pyarrow's Python value as JSON text would carry it."""
    if value is None:
        return None
    if pa.types.is_dictionary(t):
        return normal(value, t.value_type)
    if pa.types.is_map(t):
        return {k: normal(v, t.item_type) for k, v in value}
    if pa.types.is_struct(t):
        return {t.field(i).name: normal(value[t.field(i).name], t.field(i).type)
                for i in range(t.num_fields)}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [normal(v, t.value_type) for v in value]
    return value


def without_nulls(value):
    """The ndjson sink leaves null fields out of an object (arrow-json's
    default, lossless under the schema): compare objects without them."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def parsed(text, t):
    """A flat cell's text (CSV, SQLite TEXT) as a value of type t."""
    if text is None or text == "":
        return None
    if pa.types.is_decimal(t):
        return D(text)
    if pa.types.is_dictionary(t):
        return text
    return json.loads(text, parse_float=D)


def check(name, what, got, want, problems):
    if len(got) != len(want):
        problems.append(f"{name} {what}: {len(got)} rows, pyarrow reads {len(want)}")
        return
    for row, (g, w) in enumerate(zip(got, want)):
        if g != w:
            problems.append(f"{name} {what} row {row}: {g!r} != pyarrow's {w!r}")


def main(source_dir, out_dir, url, prefix, names):
    problems = []
    for name in names:
        table = ipc.open_file(f"{source_dir}/{name}.arrow").read_all()
        t = table.schema.field("v").type
        want = [normal(v, t) for v in table.column("v").to_pylist()]

        with open(f"{out_dir}/{name}.csv", newline="") as f:
            cells = [row["v"] for row in csv.DictReader(f)]
        check(name, "csv", [parsed(c, t) for c in cells], want, problems)

        with open(f"{out_dir}/{name}.ndjson") as f:
            records = [json.loads(line, parse_float=D) for line in f]
        ndjson = [r.get("v") for r in records]
        if pa.types.is_decimal(t):
            ndjson = [None if v is None else D(str(v)) for v in ndjson]
        check(name, "ndjson", [without_nulls(v) for v in ndjson],
              [without_nulls(v) for v in want], problems)

        with sqlite3.connect(f"{out_dir}/{name}.sqlite") as db:
            rows = [r[0] for r in db.execute("SELECT v FROM t ORDER BY rowid")]
        check(name, "sqlite", [parsed(r, t) for r in rows], want, problems)

        out = subprocess.run(
            ["psql", url, "-At", "-c", f'SELECT to_jsonb(v) FROM "{prefix}_{name}"'],
            check=True, capture_output=True, text=True).stdout
        pg = [None if line == "" else json.loads(line, parse_float=D)
              for line in out.split("\n")[:-1]]
        if pa.types.is_decimal(t):
            pg = [None if v is None else D(str(v)) for v in pg]
        check(name, "postgres", pg, want, problems)
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
