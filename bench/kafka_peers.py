"""Kafka: weir's kafka source and sink against the same jobs written with
confluent-kafka (librdkafka's Python client) + pandas / fastavro, and
against librdkafka's own raw consume rate on the same broker, side by side
in one run:

- JSON → filter (amount > 0) → Parquet, records/s on 1 core (taskset) and
  2 cores; the Python peer: consume, json.loads, a pandas DataFrame,
  filter, pyarrow Parquet;
- Avro (Confluent framing, schema registry) → Avro on another topic; the
  peer: consume, fastavro decode, fastavro encode, produce;
- the ceiling: `kafka-raw-consume` (Rust, librdkafka) reading every
  record, nothing decoded;
- end-to-end latency, p50/p99, at a moderate rate through weir
  (Kafka → weir → Kafka), at-least-once and exactly-once.

The broker is the tests' (tansu, in memory, `scripts/kafka`): its own
speed is part of every figure, which is why the raw rate is measured too.
Run through `bench/run`; `--smoke` uses tiny inputs.
"""

import argparse
import http.server
import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import run

PARTITIONS = 6

AVRO = {"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "long"},
    {"name": "customer", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "country", "type": ["null", "string"], "default": None},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
]}


def create(brokers: str, *topics: str) -> None:
    admin = AdminClient({"bootstrap.servers": brokers})
    for f in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics]).values():
        f.result()


def produce(brokers: str, topic: str, values) -> None:
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 20, "batch.size": 1 << 20,
                  "queue.buffering.max.messages": 1_000_000})
    for i, v in enumerate(values):
        while True:
            try:
                p.produce(topic, v, key=str(i % 1000).encode())
                break
            except BufferError:
                p.poll(0.01)
    p.flush(120)


def orders_json(n: int, seed: int = 3):
    rng = random.Random(seed)
    for i in range(n):
        yield json.dumps({"id": i, "customer": f"c{rng.randrange(10_000)}",
                          "amount": rng.randrange(-1000, 100_000) / 100,
                          "ts": "2026-01-01T00:00:00"}).encode()


class Registry(http.server.BaseHTTPRequestHandler):
    """The three Confluent Schema Registry calls weir makes."""
    schemas: list[str] = []
    subjects: dict[str, list[int]] = {}

    def reply(self, body: dict, status: int = 200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["schemas", "ids"]:
            return self.reply({"schema": self.schemas[int(parts[2]) - 1]})
        if parts[0] == "subjects" and parts[2:] == ["versions", "latest"]:
            ids = self.subjects[parts[1]]
            return self.reply({"id": ids[-1], "version": len(ids), "schema": self.schemas[ids[-1] - 1]})
        self.reply({"error_code": 404}, 404)

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        schema = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
        if schema not in self.schemas:
            self.schemas.append(schema)
        sid = self.schemas.index(schema) + 1
        self.subjects.setdefault(parts[1], []).append(sid)
        self.reply({"id": sid})

    def log_message(self, *args):
        pass


def registry() -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def avro_frames(url: str, topic: str, n: int):
    import fastavro
    body = json.dumps({"schema": json.dumps(AVRO)}).encode()
    req = urllib.request.Request(f"{url}/subjects/{topic}-value/versions", data=body,
                                 headers={"Content-Type": "application/json"})
    sid = json.load(urllib.request.urlopen(req))["id"]
    parsed = fastavro.parse_schema(AVRO)
    rng = random.Random(5)
    for i in range(n):
        out = io.BytesIO()
        out.write(struct.pack(">bI", 0, sid))
        fastavro.schemaless_writer(out, parsed, {
            "id": i, "customer": f"c{rng.randrange(10_000)}", "amount": rng.randrange(100_000) / 100,
            "country": None if i % 5 == 0 else "NL", "ts": 1_767_225_600_000_000 + i})
        yield out.getvalue()


def consume_all(brokers: str, topic: str, on_batch) -> int:
    """Reads every record of `topic` in batches of 10,000, to each
    partition's end; the records read."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"bench-{time.time()}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    ended, n = set(), 0
    while len(ended) < PARTITIONS:
        good = []
        for m in c.consume(10_000, timeout=0.1):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(m.partition())
                continue
            good.append(m)
        if good:
            on_batch(good)
            n += len(good)
    c.close()
    return n


def python_json_job(brokers: str, topic: str, out: Path) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    writer = None

    def batch(ms):
        nonlocal writer
        df = pd.DataFrame.from_records([json.loads(m.value()) for m in ms])
        df["ts"] = pd.to_datetime(df["ts"])
        table = pa.Table.from_pandas(df[df["amount"] > 0], preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
    consume_all(brokers, topic, batch)
    writer.close()


def python_avro_job(brokers: str, source: str, sink: str, url: str) -> None:
    import fastavro
    readers = {}
    parsed = fastavro.parse_schema(AVRO)
    body = json.dumps({"schema": json.dumps(AVRO)}).encode()
    req = urllib.request.Request(f"{url}/subjects/{sink}-value/versions", data=body,
                                 headers={"Content-Type": "application/json"})
    sid = json.load(urllib.request.urlopen(req))["id"]
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})

    def batch(ms):
        for m in ms:
            v = m.value()
            wid = struct.unpack(">I", v[1:5])[0]
            if wid not in readers:
                s = json.load(urllib.request.urlopen(f"{url}/schemas/ids/{wid}"))["schema"]
                readers[wid] = fastavro.parse_schema(json.loads(s))
            record = fastavro.schemaless_reader(io.BytesIO(v[5:]), readers[wid])
            out = io.BytesIO()
            out.write(struct.pack(">bI", 0, sid))
            fastavro.schemaless_writer(out, parsed, record)
            while True:
                try:
                    p.produce(sink, out.getvalue(), key=m.key())
                    break
                except BufferError:
                    p.poll(0.01)
        p.poll(0)
    consume_all(brokers, source, batch)
    p.flush(120)


def python_in(fn, *args) -> list[str]:
    """`python -c` running `fn(*args)` from this module, for taskset."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import kafka_peers as k; "
            f"k.{fn}(*{[str(a) for a in args]!r})")
    return [sys.executable, "-c", code]


def latency(weir: str, plugins: Path, brokers: str, folder: Path, exactly_once: bool,
            rate: int, seconds: float) -> tuple[float, float]:
    tag = "eo" if exactly_once else "alo"
    source, sink = f"lat-in-{tag}-{time.time_ns()}", f"lat-out-{tag}-{time.time_ns()}"
    create(brokers, source, sink)
    checkpoint = '[pipeline]\ncheckpoint = { dir = "ckpt-%s", interval_ms = 100 }\n' % tag if exactly_once else ""
    delivery = "exactly_once" if exactly_once else "at_least_once"
    manifest = folder / f"latency-{tag}.toml"
    manifest.write_text(f"""{checkpoint}
[sources.k]
type = "kafka"
brokers = "{brokers}"
topics = ["{source}"]
group = "{source}-weir"
session_timeout_ms = 6000
max_delay_ms = 5
format = "json"
schema = [{{ name = "id", type = "int64" }}, {{ name = "sent_us", type = "int64" }}]

[sinks.out]
type = "kafka"
inputs = ["k"]
brokers = "{brokers}"
topic = "{sink}"
delivery = "{delivery}"
options = {{ "linger.ms" = "1" }}
""")
    proc = subprocess.Popen([weir, "run", "--quiet", str(manifest)], stderr=subprocess.DEVNULL)
    # Assigned, not subscribed: a group join against tansu takes seconds.
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"lat-{time.time()}",
                  "isolation.level": "read_committed", "fetch.wait.max.ms": 5})
    c.assign([TopicPartition(sink, p, 0) for p in range(PARTITIONS)])
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 0})
    time.sleep(8)  # the group joins
    n = int(rate * seconds)
    lat = []
    started = time.time()
    for i in range(n):
        ahead = started + i / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
        p.produce(source, json.dumps({"id": i, "sent_us": int(time.time() * 1e6)}).encode())
        p.poll(0)
        for m in c.consume(1000, timeout=0):
            if not m.error():
                lat.append(time.time() * 1e6 - json.loads(m.value())["sent_us"])
    p.flush(10)
    deadline = time.time() + 10
    while len(lat) < n and time.time() < deadline:
        for m in c.consume(1000, timeout=0.2):
            if not m.error():
                lat.append(time.time() * 1e6 - json.loads(m.value())["sent_us"])
    proc.send_signal(2)
    proc.wait(30)
    c.close()
    lat.sort()
    if len(lat) < n:
        sys.exit(f"latency run ({tag}): {len(lat)} of {n} records came through")
    return lat[len(lat) // 2] / 1e3, lat[int(len(lat) * 0.99)] / 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--plugins", required=True, type=Path)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--records", type=int, help="JSON records (Avro: half as many)")
    args = ap.parse_args()
    args.plugins = args.plugins.resolve()
    n = args.records or (20_000 if args.smoke else 1_000_000)
    brokers = args.brokers
    stamp = time.time_ns()
    json_topic, avro_in, avro_out = f"bench-json-{stamp}", f"bench-avro-{stamp}", f"bench-avro-out-{stamp}"
    py_out = f"bench-avro-py-{stamp}"
    create(brokers, json_topic, avro_in, avro_out, py_out)
    url = registry()
    print(f"producing {n:,} JSON and {n // 2:,} Avro records into tansu ({PARTITIONS} partitions each)…")
    produce(brokers, json_topic, orders_json(n))
    produce(brokers, avro_in, avro_frames(url, avro_in, n // 2))
    folder = Path(tempfile.mkdtemp(prefix="weir-kafka-bench-"))

    def weir_job(name: str, source: str, sink: str) -> Path:
        m = folder / f"{name}.toml"
        m.write_text(f"""
[sources.k]
type = "kafka"
brokers = "{brokers}"
topics = ["{source}"]
group = "bench-{name}-{stamp}"
until = "end"
{sink}
""")
        return m

    json_manifest = weir_job("json", json_topic, f"""format = "json"
schema = [{{ name = "id", type = "int64" }}, {{ name = "customer", type = "utf8" }},
          {{ name = "amount", type = "float64" }}, {{ name = "ts", type = "timestamp" }}]

[transforms.positive]
plugin = "{args.plugins / 'filter.wasm'}"
inputs = ["k"]
config = {{ predicate = "amount > 0" }}

[sinks.out]
type = "parquet"
inputs = ["positive"]
path = "{folder / 'weir.parquet'}"
""")
    avro_manifest = weir_job("avro", avro_in, f"""format = "avro"
registry = {{ url = "{url}" }}

[sinks.out]
type = "kafka"
inputs = ["k"]
brokers = "{brokers}"
topic = "{avro_out}"
format = "avro"
registry = {{ url = "{url}" }}
""")
    results = {}
    raw = subprocess.run(["taskset", "-c", "0", args.raw, brokers, json_topic],
                         capture_output=True, text=True, check=True).stdout.split()
    results["librdkafka raw consume (Rust, no decoding), 1 core"] = float(raw[2])
    for label, cores in (("1 core (taskset)", "0"), ("2 cores", None)):
        cmd = [args.weir, "run", "--quiet", str(json_manifest)]
        results[f"weir JSON → filter → Parquet, {label}"] = run(["taskset", "-c", cores] + cmd if cores else cmd)
    results["confluent-kafka + pandas JSON → filter → Parquet, 1 core"] = run(
        ["taskset", "-c", "0"] + python_in("python_json_job", brokers, json_topic, folder / "py.parquet"))
    results["weir Avro → Avro, 1 core"] = run(["taskset", "-c", "0", args.weir, "run", "--quiet", str(avro_manifest)])
    # The peer's producer is not idempotent; weir's is by default. tansu
    # makes idempotence costly, so the same job without it, side by side.
    plain = Path(str(avro_manifest).replace(".toml", "-plain.toml"))
    plain.write_text(avro_manifest.read_text().replace(
        f'topic = "{avro_out}"', f'topic = "{avro_out}"\noptions = {{ "enable.idempotence" = "false" }}')
        .replace(f'group = "bench-avro-{stamp}"', f'group = "bench-avro-plain-{stamp}"'))
    results["weir Avro → Avro, idempotence off (as the peer), 1 core"] = run(
        ["taskset", "-c", "0", args.weir, "run", "--quiet", str(plain)])
    results["confluent-kafka + fastavro Avro → Avro, 1 core"] = run(
        ["taskset", "-c", "0"] + python_in("python_avro_job", brokers, avro_in, py_out, url))

    import pyarrow.parquet as pq
    ours, theirs = (pq.ParquetFile(folder / f).metadata.num_rows for f in ("weir.parquet", "py.parquet"))
    if ours != theirs:
        sys.exit(f"the JSON job kept {ours:,} rows in weir and {theirs:,} in the Python peer")
    print(f"both JSON jobs kept {ours:,} of {n:,} rows")
    print("| run | seconds | records/s |")
    print("|---|---|---|")
    for label, secs in results.items():
        records = n // 2 if "Avro" in label else n
        print(f"| {label} | {secs:.3f} | {records / secs:,.0f} |")
    w1 = results["weir JSON → filter → Parquet, 1 core (taskset)"]
    print(f"\nJSON job on 1 core: weir {results['confluent-kafka + pandas JSON → filter → Parquet, 1 core'] / w1:.2f}× "
          f"the Python peer's rate, {results['librdkafka raw consume (Rust, no decoding), 1 core'] / w1:.2f} of "
          f"librdkafka's raw consume rate (weir's run includes start-up and the group's first fetch)")
    peer = results['confluent-kafka + fastavro Avro → Avro, 1 core']
    print(f"Avro → Avro on 1 core: weir {peer / results['weir Avro → Avro, 1 core']:.2f}× the Python peer's rate "
          f"({peer / results['weir Avro → Avro, idempotence off (as the peer), 1 core']:.2f}× with the peer's producer settings)")
    rate, seconds = (200, 2.0) if args.smoke else (1000, 20.0)
    for eo in (False, True):
        p50, p99 = latency(args.weir, args.plugins, brokers, folder, eo, rate, seconds)
        mode = "exactly-once (checkpoint every 100 ms)" if eo else "at-least-once"
        print(f"end-to-end latency at {rate}/s, {mode}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
