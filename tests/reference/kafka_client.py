"""The kafka tests' outside client: librdkafka's Python binding
(confluent-kafka) and fastavro, doing what a team's other services would —
create topics, produce JSON and Confluent-framed Avro, read what weir wrote
as a read_committed consumer.

    kafka_client.py create BROKERS TOPIC PARTITIONS
    kafka_client.py produce-json BROKERS TOPIC N [BAD_EVERY [RATE]]
    kafka_client.py produce-avro BROKERS TOPIC REGISTRY N VERSION
    kafka_client.py read BROKERS TOPIC            -> JSON summary
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


def records(brokers, topic, isolation="read_committed"):
    """Every record now in `topic`: read until each partition reports its
    end (librdkafka's partition EOF, which steps over transaction markers)."""
    from confluent_kafka import KafkaError
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"reader-{time.time()}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": True})
    meta = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    at_end = set()
    out = []
    deadline = time.time() + 60
    while len(at_end) < len(meta.partitions) and time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
            continue
        at_end.discard(m.partition())
        out.append(m)
    c.close()
    return out


def read(brokers, topic):
    ms = records(brokers, topic)
    values = [m.value() for m in ms]
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    print(json.dumps({
        "count": len(values),
        "distinct": len(counts),
        "duplicated": sum(1 for c in counts.values() if c > 1),
        "records": [{
            "key": None if m.key() is None else m.key().decode("utf-8", "replace"),
            "value": None if m.value() is None else m.value().decode("utf-8", "replace"),
            "partition": m.partition(),
            "headers": {k: v.decode("utf-8", "replace") for k, v in (m.headers() or [])},
        } for m in ms] if len(ms) <= 5000 else [],
    }))


def read_avro(brokers, topic, registry):
    import fastavro
    out = []
    cache = {}
    for m in records(brokers, topic):
        magic, schema_id = struct.unpack(">bI", m.value()[:5])
        assert magic == 0, "not Confluent-framed"
        if schema_id not in cache:
            body = json.load(urllib.request.urlopen(f"{registry}/schemas/ids/{schema_id}"))
            cache[schema_id] = fastavro.parse_schema(json.loads(body["schema"]))
        r = fastavro.schemaless_reader(io.BytesIO(m.value()[5:]), cache[schema_id])
        out.append(r)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"create": create, "produce-json": produce_json, "produce-avro": produce_avro,
     "read": read, "read-avro": read_avro}[command](*args)
