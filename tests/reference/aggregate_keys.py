"""aggregate's groups by a decimal and a date key, recomputed by pandas
from the same input file, compared with weir's output: the same groups,
the same exact decimal sums and the same counts.

Usage: aggregate_keys.py INPUT_ARROW OUTPUT_ARROW"""

import sys

import pandas as pd
import pyarrow as pa


def read(path):
    with pa.memory_map(path) as source:
        return pa.ipc.open_file(source).read_all()


def exact_sum(values):
    values = [v for v in values if v is not None and not pd.isna(v)]
    return sum(values[1:], values[0]) if values else None


def main(input_path, output_path):
    df = read(input_path).to_pandas(types_mapper=None)
    # Object columns keep Decimals and dates exact; nulls are a group.
    groups = df.groupby(["tier", "day"], dropna=False, sort=False)
    want = {
        (None if pd.isna(tier) else tier, None if pd.isna(day) else day):
            (exact_sum(g["amount"]), int(g["amount"].notna().sum()))
        for (tier, day), g in groups
    }
    out = read(output_path).to_pylist()
    got = {(r["tier"], r["day"]): (r["sum_amount"], r["count_amount"]) for r in out}
    if got != want or len(out) != len(got):
        for key in sorted(set(want) | set(got), key=repr):
            if want.get(key) != got.get(key):
                print(f"{key}: pandas {want.get(key)} weir {got.get(key)}")
        sys.exit(1)
    print(f"{len(got)} groups equal")


if __name__ == "__main__":
    main(*sys.argv[1:])
