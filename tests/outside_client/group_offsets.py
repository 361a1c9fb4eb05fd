"""Reads, or overwrites, a consumer group's committed offsets with the Python
confluent-kafka client (a Kafka client this project did not write).

Usage:
  group_offsets.py BROKERS GROUP TOPIC PARTITIONS
      -> prints {"PARTITION": OFFSET, ...} for partitions with a commit
  group_offsets.py BROKERS GROUP TOPIC PARTITIONS --commit OFFSET
      -> commits OFFSET on every partition (the group must have no member)
  group_offsets.py BROKERS GROUP TOPIC PARTITIONS --ends
      -> prints {"PARTITION": END, ...}: each partition's end offset (its
         high watermark: past every record and transaction marker)
"""

import json
import sys

from confluent_kafka import Consumer, TopicPartition


def main(brokers: str, group: str, topic: str, partitions: int, commit=None, ends=False) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    if ends:
        out = {}
        for tp in tps:
            _low, high = consumer.get_watermark_offsets(tp, timeout=15, cached=False)
            out[str(tp.partition)] = high
        consumer.close()
        print(json.dumps(out, sort_keys=True))
        return
    if commit is not None:
        consumer.commit(
            offsets=[TopicPartition(topic, p, commit) for p in range(partitions)],
            asynchronous=False,
        )
    committed = consumer.committed(tps, timeout=15)
    consumer.close()
    out = {str(tp.partition): tp.offset for tp in committed if tp.offset >= 0}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    args = sys.argv[1:]
    commit = None
    if len(args) == 5 and args[4] == "--ends":
        main(args[0], args[1], args[2], int(args[3]), ends=True)
        sys.exit(0)
    if len(args) == 6 and args[4] == "--commit":
        commit = int(args[5])
        args = args[:4]
    if len(args) != 4:
        sys.exit(__doc__)
    main(args[0], args[1], args[2], int(args[3]), commit)
