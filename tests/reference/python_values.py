"""Checks what the Python helper decoded (the python-types plugin's
``show`` mode wrote ``v_py``, the repr of each value of column ``v``)
against pyarrow's own reading of ``v``: ``to_pylist`` — decimals as
Decimal, maps as (key, value) pairs, dictionaries as values, intervals as
(months, days, nanoseconds). Temporal types, which the helper gives as
integers, are compared as pyarrow's integers.

Usage: python_values.py FILE.arrow ...   (prints one line per file)"""

import sys

import pyarrow as pa
import pyarrow.types as pt


def plain(v):
    """pyarrow's values in the helper's shapes: tuples, not namedtuples."""
    if isinstance(v, tuple):
        return tuple(plain(x) for x in v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def expected(column):
    t = column.type
    if pt.is_temporal(t) and not pt.is_interval(t):
        width = pa.int32() if t.bit_width == 32 else pa.int64()
        return column.cast(width) if not pt.is_date64(t) else column.view(pa.int64())
    return column


def main(paths):
    failed = False
    for path in paths:
        with pa.memory_map(path) as source:
            table = pa.ipc.open_file(source).read_all()
        want = [repr(plain(v)) if v is not None else repr(None)
                for v in expected(table.column("v").combine_chunks()).to_pylist()]
        got = table.column("v_py").to_pylist()
        if want != got:
            failed = True
            print(f"{path}: pyarrow {want} helper {got}")
        else:
            print(f"{path}: {len(got)} values equal")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
