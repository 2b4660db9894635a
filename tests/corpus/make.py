"""Writes the malformed-input corpus under tests/corpus/ (run from the repo
root with the project's .venv: `.venv/bin/python tests/corpus/make.py`).

Deterministic (fixed seeds). Each file's expected verdict is in
expected.json, decided by pyarrow (Parquet) or by construction (CSV,
NDJSON): weir must fail, naming the file and the position, wherever that
says "error"; and read exactly the stated rows otherwise.
"""
import io
import json
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.abspath(__file__))


def parquet():
    out = os.path.join(ROOT, "parquet")
    os.makedirs(out, exist_ok=True)
    table = pa.table({
        "id": pa.array(range(300), pa.int64()),
        "name": [f"name-{i}" for i in range(300)],
        "amount": [i * 0.25 for i in range(300)],
    })
    buf = io.BytesIO()
    # Page checksums: what makes a flipped byte in page data detectable
    # (parquet-mr writes them by default; pyarrow on request).
    pq.write_table(table, buf, row_group_size=100, compression="snappy",
                   write_page_checksum=True)
    good = buf.getvalue()
    footer_len = int.from_bytes(good[-8:-4], "little")
    data_end = len(good) - 8 - footer_len
    rng = random.Random(7)
    files = {
        "truncated-footer.parquet": good[:-5],
        "truncated-data.parquet": good[: data_end // 2],
        "lying-footer-length.parquet": good[:-8] + (len(good) * 4).to_bytes(4, "little") + b"PAR1",
        "no-magic.parquet": b"PAR0" + good[4:],
    }
    for _ in range(8):
        data = bytearray(good)
        at = rng.randrange(4, data_end - 4)
        for k in range(2):
            data[at + k] ^= 0xFF
        files[f"flip-page-{at}.parquet"] = bytes(data)
    expected = {}
    for name, data in files.items():
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(data)
        try:
            rows = pq.read_table(path, page_checksum_verification=True).num_rows
            expected[name] = {"rows": rows}
        except Exception as e:  # pyarrow's verdict: unreadable
            expected[name] = {"error": type(e).__name__}
    return expected


def text_files(kind, files):
    out = os.path.join(ROOT, kind)
    os.makedirs(out, exist_ok=True)
    expected = {}
    for name, (data, verdict) in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        expected[name] = verdict
    return expected


HEADER = b"id,name,amount\n"


def rows(n, start=0):
    return b"".join(b"%d,name-%d,%d.5\n" % (i, i, i) for i in range(start, start + n))


def csv():
    # verdict: the line of the first bad record, and the rows a skip keeps.
    return text_files("csv", {
        "ragged.csv": (HEADER + rows(5) + b"5,too,many,fields\n" + rows(4, 6), {"line": 7, "good": 9}),
        "short-row.csv": (HEADER + rows(3) + b"3\n" + rows(2, 4), {"line": 5, "good": 5}),
        "not-a-number.csv": (HEADER + rows(8) + b"8,name-8,eight\n" + rows(1, 9), {"line": 10, "good": 9}),
        "invalid-utf8.csv": (HEADER + rows(2) + b"2,caf\xe9\xff,1.0\n" + rows(2, 3), {"line": 4, "good": 4}),
        "nul-bytes.csv": (HEADER + rows(2) + b"2,\x00\x00\x00,x\x00\n" + rows(1, 3), {"line": 4, "good": 3}),
        # Cut inside a quoted field: a cut between fields ("4,name-4,4.")
        # is a valid last record without a newline, for every reader.
        "truncated-in-quotes.csv": (HEADER + rows(4) + b'4,"name-', {"line": 6, "good": 4}),
        "binary-garbage.csv": (HEADER + rows(1) + bytes(random.Random(3).randrange(256) for _ in range(40)) + b"\n" + rows(1, 2), {"line": 3, "good": 2}),
    })


def ndjson():
    def lines(n, start=0):
        return b"".join(b'{"id": %d, "name": "name-%d"}\n' % (i, i) for i in range(start, start + n))
    return text_files("ndjson", {
        "not-json.ndjson": (lines(3) + b"this is not json\n" + lines(2, 4), {"line": 4, "good": 5}),
        "truncated-object.ndjson": (lines(2) + b'{"id": 2, "na', {"line": 3, "good": 2}),
        "wrong-type.ndjson": (lines(5) + b'{"id": "five", "name": "x"}\n' + lines(1, 6), {"line": 6, "good": 6}),
        "array-line.ndjson": (lines(1) + b"[1, 2, 3]\n" + lines(1, 2), {"line": 2, "good": 2}),
        "invalid-utf8.ndjson": (lines(2) + b'{"id": 2, "name": "caf\xe9\xff"}\n' + lines(1, 3), {"line": 3, "good": 3}),
        "deep-nesting.ndjson": (lines(1) + b'{"id": 1, "name": ' + b"[" * 5000 + b"]" * 5000 + b"}\n" + lines(1, 2), {"line": 2, "good": 2}),
    })


if __name__ == "__main__":
    expected = {"parquet": parquet(), "csv": csv(), "ndjson": ndjson()}
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps(expected, indent=1))
