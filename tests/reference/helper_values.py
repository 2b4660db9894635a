"""Checks what a helper decoded against pyarrow's own reading of the same
column, ``to_pylist``. The test plugins' ``show`` mode wrote, for column
``v``:

- ``python``: ``v_py``, the ``repr`` of each value the Python helper
  decoded — decimals as Decimal, maps as (key, value) pairs, dictionaries
  as values, intervals as (months, days, nanoseconds); temporal types,
  which the helper gives as integers, are compared as pyarrow's integers;
- ``c``: ``v_c``, each value the C helper read as JSON — decimals as exact
  text, maps as [key, value] pairs, dictionaries decoded.

Usage: helper_values.py python|c FILE.arrow ...   (a line per file)"""

import json
import sys
from decimal import Decimal

import pyarrow as pa
import pyarrow.types as pt


def plain(v):
    """pyarrow's values in the Python helper's shapes: tuples, not
    namedtuples."""
    if isinstance(v, tuple):
        return tuple(plain(x) for x in v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def as_json(v):
    """pyarrow's values in the shapes JSON has."""
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, (list, tuple)):
        return [as_json(x) for x in v]
    if isinstance(v, dict):
        return {k: as_json(x) for k, x in v.items()}
    return v


def temporal_as_integers(column):
    t = column.type
    if pt.is_temporal(t) and not pt.is_interval(t):
        width = pa.int32() if t.bit_width == 32 else pa.int64()
        return column.cast(width) if not pt.is_date64(t) else column.view(pa.int64())
    return column


def python(table):
    column = temporal_as_integers(table.column("v").combine_chunks())
    want = [repr(plain(v)) for v in column.to_pylist()]
    return want, table.column("v_py").to_pylist()


def c(table):
    want = [as_json(v) for v in table.column("v").to_pylist()]
    return want, [json.loads(v) for v in table.column("v_c").to_pylist()]


def main(lang, paths):
    failed = False
    for path in paths:
        with pa.memory_map(path) as source:
            table = pa.ipc.open_file(source).read_all()
        want, got = {"python": python, "c": c}[lang](table)
        if want != got:
            failed = True
            print(f"{path}: pyarrow {want} helper {got}")
        else:
            print(f"{path}: {len(got)} values equal")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
