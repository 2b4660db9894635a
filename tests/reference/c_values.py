"""Checks what the C helper read (the c-types plugin's ``show`` mode wrote
``v_c``, each value of column ``v`` as JSON: decimals as exact text, maps
as [key, value] pairs, dictionaries decoded) against pyarrow's own reading
of ``v``, ``to_pylist``.

Usage: c_values.py FILE.arrow ...   (prints one line per file)"""

import json
import sys
from decimal import Decimal

import pyarrow as pa


def as_json(v):
    """pyarrow's values in the shapes JSON has."""
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, (list, tuple)):
        return [as_json(x) for x in v]
    if isinstance(v, dict):
        return {k: as_json(x) for k, x in v.items()}
    return v


def main(paths):
    failed = False
    for path in paths:
        with pa.memory_map(path) as source:
            table = pa.ipc.open_file(source).read_all()
        want = [as_json(v) for v in table.column("v").to_pylist()]
        got = [json.loads(v) for v in table.column("v_c").to_pylist()]
        if want != got:
            failed = True
            print(f"{path}: pyarrow {want} helper {got}")
        else:
            print(f"{path}: {len(got)} values equal")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
