"""Writes, with pyarrow, one Arrow IPC file and one Parquet file per Arrow
type weir must carry, plus nested combinations: nulls at every nesting
level, a sliced batch, an empty batch. Parquet files are written once per
codec. Usage: every_type.py OUT_DIR

Each file holds one column, "v", in two record batches (a full one and a
slice of it, so readers meet offsets) and an empty third batch."""

import decimal
import os
import sys
from datetime import date, datetime, time, timedelta, timezone

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

D = decimal.Decimal


def columns():
    """(name, pyarrow array) for every type; rows: a value, a null, more values."""
    s = pa.struct([("id", pa.int64()), ("name", pa.string())])
    m = pa.map_(pa.string(), pa.int32())
    yield "null", pa.nulls(4)
    yield "bool", pa.array([True, None, False, True])
    for t in (pa.int8(), pa.int16(), pa.int32(), pa.int64(),
              pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()):
        yield str(t), pa.array([1, None, 0, 100], t)
    yield "float16", pa.array([1.5, None, 0.0, -2.0], pa.float16())
    yield "float32", pa.array([1.5, None, float("nan"), -0.0], pa.float32())
    yield "float64", pa.array([1.5, None, float("inf"), -0.0], pa.float64())
    yield "utf8", pa.array(["é", None, "", "a string over twelve bytes"])
    yield "large_utf8", pa.array(["é", None, "", "x"], pa.large_string())
    yield "utf8_view", pa.array(["é", None, "", "a string over twelve bytes"], pa.string_view())
    yield "binary", pa.array([b"\x00\xff", None, b"", b"z"])
    yield "large_binary", pa.array([b"\x00", None, b"", b"z"], pa.large_binary())
    yield "binary_view", pa.array([b"\x00", None, b"", b"over twelve bytes!"], pa.binary_view())
    yield "fixed_size_binary", pa.array([b"ab", None, b"cd", b"ef"], pa.binary(2))
    yield "date32", pa.array([date(2026, 1, 2), None, date(1969, 12, 31), date(1970, 1, 1)])
    yield "date64", pa.array([date(2026, 1, 2), None, date(1970, 1, 1), date(2000, 2, 29)], pa.date64())
    yield "time32_s", pa.array([time(1, 2, 3), None, time(0), time(23, 59, 59)], pa.time32("s"))
    yield "time32_ms", pa.array([time(1, 2, 3, 4000), None, time(0), time(23)], pa.time32("ms"))
    yield "time64_us", pa.array([time(1, 2, 3, 4), None, time(0), time(23)], pa.time64("us"))
    yield "time64_ns", pa.array([time(1, 2, 3, 4), None, time(0), time(23)], pa.time64("ns"))
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for unit in ("s", "ms", "us", "ns"):
        yield f"timestamp_{unit}", pa.array([t0, None, t0, t0], pa.timestamp(unit))
        yield f"timestamp_{unit}_berlin", pa.array([t0, None, t0, t0], pa.timestamp(unit, "Europe/Berlin"))
        yield f"duration_{unit}", pa.array([timedelta(seconds=5), None, timedelta(0), timedelta(days=-1)], pa.duration(unit))
    yield "interval_month_day_nano", pa.array([pa.MonthDayNano([1, 2, 3]), None, pa.MonthDayNano([0, 0, 0]), pa.MonthDayNano([-1, 0, 5])])
    yield "decimal32", pa.array([D("12.34"), None, D("-0.01"), D("0")], pa.decimal32(9, 2))
    yield "decimal64", pa.array([D("12.34"), None, D("-0.01"), D("0")], pa.decimal64(18, 2))
    yield "decimal128", pa.array([D("12.34"), None, D("-99999999.99"), D("0")], pa.decimal128(10, 2))
    yield "decimal256", pa.array([D("1234567890123456789012345678901234567890.5"), None, D("-1"), D("0")], pa.decimal256(50, 1))
    yield "list", pa.array([[1, None], None, [], [4]], pa.list_(pa.int32()))
    yield "large_list", pa.array([["a"], None, [], [None]], pa.large_list(pa.string()))
    yield "fixed_size_list", pa.array([[1, 2], None, [None, 4], [5, 6]], pa.list_(pa.int32(), 2))
    yield "list_view", pa.array([[1, None], None, [], [4]], pa.list_view(pa.int32()))
    yield "struct", pa.array([{"id": 1, "name": "a"}, None, {"id": None, "name": None}, {"id": 4, "name": "d"}], s)
    yield "map", pa.array([[("a", 1), ("b", None)], None, [], [("c", 3)]], m)
    yield "dictionary", pa.array(["de", None, "fr", "de"]).dictionary_encode()
    yield "dictionary_large", pa.DictionaryArray.from_arrays(
        pa.array([1, None, 0, 1], pa.int16()), pa.array(["x", "y"], pa.large_string()))
    yield "sparse_union", pa.UnionArray.from_sparse(
        pa.array([0, 1, 0, 1], pa.int8()),
        [pa.array([1, None, 3, 4]), pa.array(["a", "b", None, "d"])], ["i", "s"])
    yield "dense_union", pa.UnionArray.from_dense(
        pa.array([0, 1, 1, 0], pa.int8()), pa.array([0, 0, 1, 1], pa.int32()),
        [pa.array([10, None]), pa.array(["x", "y"])], ["i", "s"])
    yield "run_end_encoded", pa.RunEndEncodedArray.from_arrays(
        pa.array([2, 3, 4], pa.int32()), pa.array(["a", None, "c"]))
    # Nested combinations, nulls at every level.
    deep = pa.list_(pa.struct([("sku", pa.string()), ("price", pa.decimal128(12, 2)), ("attrs", m)]))
    yield "list_struct_map", pa.array([
        [{"sku": "x", "price": D("1.25"), "attrs": [("size", 3), ("w", None)]}, None,
         {"sku": None, "price": None, "attrs": None}],
        None, [], [{"sku": "y", "price": D("-0.50"), "attrs": []}]], deep)
    yield "struct_of_lists", pa.array([
        {"tags": ["a", None], "scores": [1.5]}, None, {"tags": None, "scores": []},
        {"tags": [], "scores": [None]}],
        pa.struct([("tags", pa.list_(pa.string())), ("scores", pa.large_list(pa.float64()))]))
    yield "list_of_dictionary", pa.array([["a", "b"], None, [], ["a"]],
                                         pa.list_(pa.dictionary(pa.int8(), pa.string())))


# Types the Parquet format can't hold (pyarrow refuses or silently changes
# them); they are written to IPC only.
NOT_PARQUET = {"null", "float16", "interval_month_day_nano", "sparse_union",
               "dense_union", "run_end_encoded", "list_view", "utf8_view",
               "binary_view", "decimal32", "decimal64", "time32_s",
               "duration_s", "duration_ms", "duration_us", "duration_ns",
               "date64", "timestamp_s", "timestamp_s_berlin"}
CODECS = ["none", "snappy", "gzip", "brotli", "zstd", "lz4"]


def main(out):
    os.makedirs(out, exist_ok=True)
    for name, array in columns():
        batch = pa.record_batch([array], names=["v"])
        batches = [batch, batch.slice(1, 3), batch.slice(0, 0)]
        table = pa.Table.from_batches(batches)
        with ipc.new_file(os.path.join(out, f"{name}.arrow"), batch.schema) as w:
            for b in batches:
                w.write_batch(b)
        if name in NOT_PARQUET:
            continue
        for codec in CODECS:
            pq.write_table(table, os.path.join(out, f"{name}.{codec}.parquet"),
                           compression=codec, row_group_size=3)


if __name__ == "__main__":
    main(sys.argv[1])
