"""Reads the ledger's events topic with the Python confluent-kafka client
(a Kafka client this project did not write) and checks that it follows
standard Kafka conventions:

- every message decodes as a ledger event (JSON with event_id, type,
  schema_version, merchant_id, occurred_at, recorded_at, body);
- its key is the event's merchant_id ("reference" for events of no merchant);
- its headers carry the same type, schema_version and event_id;
- it sits on the partition Java clients' default partitioner picks for its
  key (murmur2), so any Kafka producer keyed by merchant agrees with us.

Usage: read_events.py BROKERS TOPIC  -> prints {"events": N, "types": {...}}
Exits non-zero, naming the message, on the first violation.
"""

import json
import sys
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2)."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[i * 4 : i * 4 + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def fail(msg, why):
    sys.exit(f"partition {msg.partition()} offset {msg.offset()}: {why}")


def main(brokers: str, topic: str) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"outside-client-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    partitions = consumer.list_topics(topic, timeout=15).topics[topic].partitions
    count = len(partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    at_end, events, types = set(), 0, {}
    while len(at_end) < count:
        msg = consumer.poll(10)
        if msg is None:
            sys.exit("no answer from the broker for 10 s")
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition())
                continue
            sys.exit(f"consumer error: {msg.error()}")
        event = json.loads(msg.value())
        for field in ("event_id", "type", "schema_version", "merchant_id", "occurred_at", "recorded_at", "body"):
            if field not in event:
                fail(msg, f"event has no {field}")
        key = msg.key().decode()
        expected_key = event["merchant_id"] or "reference"
        if key != expected_key:
            fail(msg, f"key {key!r}, expected {expected_key!r}")
        headers = {k: v.decode() for k, v in (msg.headers() or [])}
        for name, value in (("type", event["type"]), ("schema_version", str(event["schema_version"])), ("event_id", event["event_id"])):
            if headers.get(name) != value:
                fail(msg, f"header {name}={headers.get(name)!r}, payload says {value!r}")
        expected_partition = (murmur2(msg.key()) & 0x7FFFFFFF) % count
        if msg.partition() != expected_partition:
            fail(msg, f"key {key!r} on partition {msg.partition()}, murmur2 says {expected_partition}")
        events += 1
        types[event["type"]] = types.get(event["type"], 0) + 1
    consumer.close()
    print(json.dumps({"events": events, "types": types}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
