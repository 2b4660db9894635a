"""Parquet files as other tools write them, and the check that weir read
them as pyarrow does.

    parquet_files.py write DIR   # DIR/<case>.parquet, one per codec/encoding
    parquet_files.py check DIR   # DIR/<case>.parquet vs weir's DIR/<case>.arrow

`check` prints one line per case that differs (and exits 1), or `ok N`.
"""
import datetime
import decimal
import pathlib
import sys

import pyarrow as pa
import pyarrow.parquet as pq

N = 5000


def table():
    names = ["ana", "bo", "chen", "dora", None]
    return pa.table(
        {
            "id": pa.array(range(N), pa.int64()),
            "name": pa.array([names[i % 5] for i in range(N)], pa.string()),
            "amount": pa.array([None if i % 17 == 0 else i * 0.25 - 100 for i in range(N)], pa.float64()),
            "price": pa.array([decimal.Decimal(i) / 100 for i in range(N)], pa.decimal128(12, 2)),
            "ts": pa.array([datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=i * 37) for i in range(N)], pa.timestamp("us")),
            "day": pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 400) for i in range(N)], pa.date32()),
            "flag": pa.array([i % 3 == 0 for i in range(N)], pa.bool_()),
            "tags": pa.array([[i, i + 1][: i % 3] for i in range(N)], pa.list_(pa.int32())),
        }
    )


CASES = {
    "codec-none": dict(compression="none"),
    "codec-snappy": dict(compression="snappy"),
    "codec-gzip": dict(compression="gzip"),
    "codec-brotli": dict(compression="brotli"),
    "codec-lz4": dict(compression="lz4"),
    "codec-zstd": dict(compression="zstd"),
    "dictionary-pages": dict(use_dictionary=True, compression="snappy"),
    "byte-stream-split": dict(use_dictionary=False, use_byte_stream_split=["amount"], column_encoding=None),
    "int96-timestamps": dict(use_deprecated_int96_timestamps=True),
    "page-index": dict(write_page_index=True, data_page_size=4096),
    "data-page-v2": dict(data_page_version="2.0", compression="zstd"),
    "small-row-groups": dict(row_group_size=333),
}


def write(folder):
    folder.mkdir(parents=True, exist_ok=True)
    t = table()
    for case, options in CASES.items():
        options = {k: v for k, v in options.items() if v is not None}
        pq.write_table(t, folder / f"{case}.parquet", **options)


def check(folder):
    bad = []
    for case in CASES:
        expected = pq.read_table(folder / f"{case}.parquet")
        got = pa.ipc.open_file(folder / f"{case}.arrow").read_all()
        if got.num_rows != expected.num_rows:
            bad.append(f"{case}: {got.num_rows} rows, pyarrow reads {expected.num_rows}")
            continue
        for name in expected.column_names:
            a, b = expected.column(name), got.column(name)
            # INT96 timestamps: pyarrow reads nanoseconds; arrow-rs follows
            # the file's embedded Arrow schema (microseconds, as written).
            # The instants are what must agree.
            both_timestamps = pa.types.is_timestamp(a.type) and pa.types.is_timestamp(b.type)
            if both_timestamps and a.type.tz == b.type.tz:
                b = b.cast(a.type)
            if a.type != b.type:
                bad.append(f"{case}: column {name} is {b.type}, pyarrow reads {a.type}")
            elif a.to_pylist() != b.to_pylist():
                bad.append(f"{case}: column {name} differs")
    for line in bad:
        print(line)
    if bad:
        sys.exit(1)
    print(f"ok {len(CASES)}")


{"write": write, "check": check}[sys.argv[1]](pathlib.Path(sys.argv[2]))
