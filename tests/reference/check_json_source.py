"""Checks that weir read a JSON-lines file as Python's json module does:
every record of IN.ndjson (parsed with decimal.Decimal for numbers with a
fraction) equals the row weir wrote to OUT.arrow, typed by OUT.arrow's
schema (decimals exact, structs as objects with absent fields null, lists
as arrays). Usage: check_json_source.py IN.ndjson OUT.arrow

Prints one line per mismatch and exits 1 if there is any."""

import decimal
import json
import sys

import pyarrow as pa
import pyarrow.ipc as ipc

from check_sinks import normal

D = decimal.Decimal


def typed(value, t):
    """A JSON value as the Arrow type t holds it."""
    if value is None:
        return None
    if pa.types.is_struct(t):
        return {t.field(i).name: typed(value.get(t.field(i).name), t.field(i).type)
                for i in range(t.num_fields)}
    if pa.types.is_map(t):
        return {k: typed(v, t.item_type) for k, v in value.items()}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [typed(v, t.value_type) for v in value]
    if pa.types.is_floating(t):
        return float(value)
    if pa.types.is_decimal(t):
        return D(str(value))
    return value


def main(source, out):
    table = ipc.open_file(out).read_all()
    with open(source) as f:
        records = [json.loads(line, parse_float=D) for line in f if line.strip()]
    problems = []
    if table.num_rows != len(records):
        problems.append(f"{table.num_rows} rows, json reads {len(records)}")
    for name in table.column_names:
        t = table.schema.field(name).type
        got = [normal(v, t) for v in table.column(name).to_pylist()]
        want = [typed(r.get(name), t) for r in records]
        for row, (g, w) in enumerate(zip(got, want)):
            if g != w:
                problems.append(f"column {name} ({t}) row {row}: {g!r} != json's {w!r}")
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
