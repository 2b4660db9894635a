"""The kafka tests' outside clients: librdkafka's Python binding
(confluent-kafka), kafka-python and fastavro, doing what a team's other services would —
create topics, produce JSON and Confluent-framed Avro, read what weir wrote
as a read_committed consumer.

    kafka_client.py create BROKERS TOPIC PARTITIONS
    kafka_client.py produce-json BROKERS TOPIC N [BAD_EVERY [RATE]]
    kafka_client.py produce-events BROKERS TOPIC N RATE KEYS
    kafka_client.py produce-avro BROKERS TOPIC REGISTRY N VERSION
    kafka_client.py read BROKERS TOPIC            -> JSON summary
    kafka_client.py check-ids BROKERS TOPIC N     -> JSON: orders 0..N repeated, missing
    kafka_client.py offset-deferral BROKERS TOPIC -> JSON: the group offset after each of two commits
    kafka_client.py read-avro BROKERS TOPIC REGISTRY -> JSON records
"""
import io
import json
import struct
import sys
import time
import urllib.request
from decimal import Decimal
from datetime import datetime, timezone

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(brokers, topic, partitions):
    admin = AdminClient({"bootstrap.servers": brokers})
    for f in admin.create_topics([NewTopic(topic, int(partitions), 1)]).values():
        f.result()


def json_record(i):
    return {"id": i, "name": f"name {i}", "amount": i * 1.5, "ts": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}"}


def produce_json(brokers, topic, n, bad_every=0, rate=0):
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    started = time.time()
    for i in range(int(n)):
        if float(rate) and i % 100 == 0:
            ahead = started + i / float(rate) - time.time()
            if ahead > 0:
                time.sleep(ahead)
        if int(bad_every) and i % int(bad_every) == int(bad_every) - 1:
            value = b'{"id": "not a number", "name": '
        else:
            value = json.dumps(json_record(i)).encode()
        p.produce(topic, value, key=f"k{i % 7}".encode(), headers=[("source", b"python")])
        if i % 1000 == 0:
            p.poll(0)
    p.flush(30)


def produce_events(brokers, topic, n, rate, keys):
    """Event `i`: key `k{i % keys}`, time 2024-01-01 + 10 ms × i, keyed by
    its key (so a key's events are in one partition, in time order); then
    one event per key an hour later, which closes every window before it."""
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    start = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
    began = time.time()
    n, rate, keys = int(n), float(rate), int(keys)
    for i in list(range(n)) + [n + 360_000 + k for k in range(keys)]:
        if i < n and i % 100 == 0:
            ahead = began + i / rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
            p.poll(0)
        at = datetime.fromtimestamp(start + i / 100, tz=timezone.utc)
        key = f"k{i % keys}"
        value = {"key": key, "n": i, "ts": at.strftime("%Y-%m-%dT%H:%M:%S.%f")}
        p.produce(topic, json.dumps(value).encode(), key=key.encode())
    p.flush(30)


# The Avro schemas of the tests: version 1 holds every type weir maps;
# version 2 adds a field with a default and drops none (a compatible
# evolution), so version-1 records read as version 2 get the default.
AVRO_V1 = {
    "type": "record", "name": "Order", "namespace": "weir.test",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "small", "type": "int"},
        {"name": "ok", "type": "boolean"},
        {"name": "ratio", "type": "float"},
        {"name": "amount", "type": "double"},
        {"name": "name", "type": "string"},
        {"name": "blob", "type": "bytes"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "at_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
            {"name": "cid", "type": "long"},
            {"name": "country", "type": ["null", "string"], "default": None},
        ]}},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    ],
}
AVRO_V2 = json.loads(json.dumps(AVRO_V1))
AVRO_V2["fields"].append({"name": "channel", "type": "string", "default": "web"})


def avro_record(i, version):
    r = {
        "id": i, "small": -i, "ok": i % 2 == 0, "ratio": 0.5, "amount": i * 2.25,
        "name": f"ünïcode {i}", "blob": bytes([i % 256, 0, 255]),
        "price": Decimal(f"{i}.{i % 100:02d}"),
        "day": datetime(2024, 1, 1 + i % 28).date(),
        "at": datetime(2024, 1, 1, 0, 0, i % 60, 123456, tzinfo=timezone.utc),
        "at_ms": datetime(2024, 1, 1, 0, 0, i % 60, 123000, tzinfo=timezone.utc),
        "note": None if i % 3 == 0 else f"note {i}",
        "tags": [f"t{j}" for j in range(i % 3)],
        "attrs": {f"a{j}": j for j in range(i % 2 + 1)},
        "customer": {"cid": 1000 + i, "country": None if i % 4 == 0 else "NL"},
        "status": ["NEW", "PAID", "SHIPPED"][i % 3],
    }
    if version == 2:
        r["channel"] = "app"
    return r


def register(registry, subject, schema):
    body = json.dumps({"schema": json.dumps(schema)}).encode()
    req = urllib.request.Request(f"{registry}/subjects/{subject}/versions", data=body,
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    return json.load(urllib.request.urlopen(req))["id"]


def produce_avro(brokers, topic, registry, n, version):
    import fastavro
    schema = AVRO_V1 if int(version) == 1 else AVRO_V2
    schema_id = register(registry, f"{topic}-value", schema)
    parsed = fastavro.parse_schema(schema)
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for i in range(int(n)):
        out = io.BytesIO()
        out.write(struct.pack(">bI", 0, schema_id))
        fastavro.schemaless_writer(out, parsed, avro_record(i, int(version)))
        p.produce(topic, out.getvalue(), key=str(i).encode())
    p.flush(30)


def committed_records(brokers, topic):
    """Every record of `topic` in a committed transaction (or in none), in
    offset order per partition — what a read_committed consumer must see.

    librdkafka's read_committed relies on the aborted-transaction list a
    Kafka broker sends with each fetch; tansu sends none, so its aborted
    records would show. This reader (kafka-python's fetcher, reading
    uncommitted) holds each producer's transactional records back until
    that transaction's control marker says commit, and drops them on
    abort: read_committed from the log itself.
    """
    from kafka import KafkaConsumer, TopicPartition as TP
    from kafka.consumer import fetcher
    from kafka.consumer.fetcher import ConsumerRecord

    pending = {}

    def unpack(self, tp, records, key_deserializer, value_deserializer):
        batch = records.next_batch()
        while batch is not None:
            if batch.magic == 2 and batch.is_transactional:
                # A fenced producer's open transaction is aborted by its
                # successor (same id, next epoch): markers close only their
                # own epoch's records.
                key = (tp, batch.producer_id, batch.producer_epoch)
                if batch.is_control_batch:
                    marker = next(batch)
                    held = pending.pop(key, [])
                    if marker is not None and not marker.abort:
                        yield from held
                else:
                    pending.setdefault(key, []).extend(
                        ConsumerRecord(tp.topic, tp.partition, batch.leader_epoch, r.offset,
                                       r.timestamp, r.timestamp_type, r.key, r.value, r.headers,
                                       None, -1, -1, -1)
                        for r in batch)
            elif not batch.is_control_batch:
                for r in batch:
                    yield ConsumerRecord(tp.topic, tp.partition, -1, r.offset, r.timestamp,
                                         r.timestamp_type, r.key, r.value, r.headers, None, -1, -1, -1)
            self.next_fetch_offset = batch.next_offset
            batch = records.next_batch()
        self.drain()

    fetcher.Fetcher.PartitionRecords._unpack_records = unpack
    c = KafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                      isolation_level="read_uncommitted", group_id=None)
    tps = [TP(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
    c.assign(tps)
    # Offset 0, not the log start: tansu sometimes reports a log start
    # past records it still serves.
    for tp in tps:
        c.seek(tp, 0)
    ends = c.end_offsets(tps)
    out = []
    deadline = time.time() + 60
    while time.time() < deadline and any(c.position(tp) < ends[tp] for tp in tps):
        for batch in c.poll(timeout_ms=200).values():
            out.extend(batch)
    c.close()
    return out


def read(brokers, topic):
    ms = committed_records(brokers, topic)
    values = [m.value for m in ms]
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    text = lambda b: None if b is None else b.decode("utf-8", "replace")
    print(json.dumps({
        "count": len(values),
        "distinct": len(counts),
        "duplicated": sum(1 for c in counts.values() if c > 1),
        "records": [{
            "key": text(m.key),
            "value": text(m.value),
            "partition": m.partition,
            "headers": {k: text(v) for k, v in (m.headers or [])},
        } for m in ms] if len(ms) <= 5000 else [],
    }))


def check_ids(brokers, topic, n):
    """Which of the JSON orders 0..N the topic holds other than once, as
    a read_committed consumer sees it: counts and the first ten ids."""
    seen = {}
    for m in committed_records(brokers, topic):
        i = json.loads(m.value)["id"]
        seen[i] = seen.get(i, 0) + 1
    repeated = sorted(i for i, c in seen.items() if c > 1)
    missing = [i for i in range(int(n)) if i not in seen]
    unknown = sorted(i for i in seen if not 0 <= i < int(n))
    print(json.dumps({
        "records": sum(seen.values()),
        "repeated": len(repeated), "first_repeated": repeated[:10],
        "missing": len(missing), "first_missing": missing[:10],
        "unknown": len(unknown), "first_unknown": unknown[:10],
    }))


def read_avro(brokers, topic, registry):
    import fastavro
    out = []
    cache = {}
    for m in committed_records(brokers, topic):
        magic, schema_id = struct.unpack(">bI", m.value[:5])
        assert magic == 0, "not Confluent-framed"
        if schema_id not in cache:
            body = json.load(urllib.request.urlopen(f"{registry}/schemas/ids/{schema_id}"))
            cache[schema_id] = fastavro.parse_schema(json.loads(body["schema"]))
        r = fastavro.schemaless_reader(io.BytesIO(m.value[5:]), cache[schema_id])
        out.append(r)
    print(json.dumps(out, default=str))


def offset_deferral(brokers, topic):
    """Whether the broker holds a transaction's offset commit back while
    another producer's transaction on the same partition is open (tansu
    does; Kafka applies it with the commit): the group's committed offset
    after the first commit, and after the second."""
    group = f"{topic}-deferral"
    reader = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})

    def producer(name):
        p = Producer({"bootstrap.servers": brokers, "transactional.id": f"{topic}-{name}"})
        p.init_transactions(30)
        return p

    def committed():
        offset = reader.committed([TopicPartition(topic, 0)], timeout=30)[0].offset
        return offset if offset >= 0 else None

    first, second = producer("first"), producer("second")
    second.begin_transaction()
    second.produce(topic, b"second")
    second.flush(30)
    first.begin_transaction()
    first.produce(topic, b"first")
    first.flush(30)
    first.send_offsets_to_transaction([TopicPartition(topic, 0, 5)], reader.consumer_group_metadata(), 30)
    first.commit_transaction(30)
    after_first = committed()
    second.commit_transaction(30)
    print(json.dumps({"after_first_commit": after_first, "after_second_commit": committed()}))
    reader.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"create": create, "produce-json": produce_json, "produce-events": produce_events, "produce-avro": produce_avro,
     "read": read, "read-avro": read_avro, "offset-deferral": offset_deferral,
     "check-ids": check_ids}[command](*args)
