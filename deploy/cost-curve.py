#!/usr/bin/env python3
"""The README's cost curve: a Markdown table from `clearing bench
--replay-only --format json` outputs, one file per run.

    deploy/cost-curve.py run-100k.json run-1m.json run-10m.json ...

Runs of the same size are shown side by side (run 1 / run 2), sizes in
the order of their event counts."""

import json
import sys
from collections import defaultdict

MIB = 1024 * 1024


def cell(values, fmt):
    return " / ".join(fmt(v) for v in values)


def main(paths):
    by_size = defaultdict(list)
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        by_size[run["events"] // 100_000].append(run)
    rows = [
        ("ingest, lines/s", lambda r: r["ingest_txn_per_s"], lambda v: f"{v:,.0f}"),
        ("project, s", lambda r: r["project_s"], lambda v: f"{v:.1f}"),
        ("decode only, events/s", lambda r: r["decode_only_events_per_s"], lambda v: f"{v:,.0f}"),
        ("replay from scratch, s", lambda r: r["replay_s"], lambda v: f"{v:.1f}"),
        ("replay from scratch, events/s", lambda r: r["replay_events_per_s"], lambda v: f"{v:,.0f}"),
        ("replay peak RSS, MiB", lambda r: r["replay_peak_rss_bytes"] / MIB, lambda v: f"{v:.0f}"),
        ("replay tail (100k before end), s", lambda r: r["replay_tail_s"], lambda v: f"{v:.2f}"),
        ("… tail events applied", lambda r: r["replay_tail_events"], lambda v: f"{v:,}"),
        ("… peak RSS, MiB", lambda r: r["replay_tail_peak_rss_bytes"] / MIB, lambda v: f"{v:.0f}"),
        ("snapshot of the whole state, s", lambda r: r["snapshot_write_s"], lambda v: f"{v:.2f}"),
        ("snapshot size, MiB", lambda r: r["snapshot_bytes"] / MIB, lambda v: f"{v:.0f}"),
    ]
    sizes = sorted(by_size)
    head = ["events →"] + [f"{by_size[s][0]['events']:,}" for s in sizes]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, get, fmt in rows:
        cells = [cell([get(r) for r in by_size[s]], fmt) for s in sizes]
        print("| " + " | ".join([name] + cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
