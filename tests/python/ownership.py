"""Predicts which path owns each event from docs/consumer-protocol.md alone ("Who owns an entity").

Written from the protocol page, not from strangler's source: it recomputes the page's test
vectors, then reads a split route's events topic and checks that the owner strangler stamped on
every record (`ce_stranglerowner`) is the one the documented hash gives for its key.

Prints one JSON line: {"vectors": n, "records": n, "agree": n, "owners": {"new": n, "legacy": n}}.
Exit status 0 only when every vector and every record agree and `--count` records were read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def bucket(salt: str, key: str) -> int:
    """SHA-256 of UTF-8 salt, one zero byte, UTF-8 key; first 8 bytes big-endian, mod 10000."""
    digest = hashlib.sha256(salt.encode("utf-8") + b"\x00" + key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 10000


def owner(salt: str, key: str, share_percent: float) -> str:
    """`new` when the bucket is below the share in basis points, else `legacy` (split mode)."""
    share_bp = round(share_percent * 100)
    return "new" if bucket(salt, key) < share_bp else "legacy"


def check_vectors(doc_path: str) -> int:
    """Recomputes every row of the page's vector table; raises on the first disagreement."""
    text = open(doc_path, encoding="utf-8").read()
    section = text.split("## Who owns an entity", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]*)` \| `([^`]*)` \| `([0-9a-f]{16})` \| (\d+) \| (\w+) \| (\w+) \|$", section, re.M)
    if len(rows) < 5:
        raise SystemExit(f"expected at least 5 test vectors in {doc_path}, found {len(rows)}")
    for salt, key, hex8, want_bucket, at25, at60 in rows:
        digest = hashlib.sha256(salt.encode() + b"\x00" + key.encode()).hexdigest()[:16]
        got = (digest, bucket(salt, key), owner(salt, key, 25), owner(salt, key, 60))
        want = (hex8, int(want_bucket), at25, at60)
        if got != want:
            raise SystemExit(f"vector salt={salt!r} key={key!r}: computed {got}, page says {want}")
    return len(rows)


def header(msg, name: str) -> str | None:
    for k, v in msg.headers() or []:
        if k == name:
            return v.decode("utf-8") if v is not None else None
    return None


def check_topic(args: argparse.Namespace) -> dict:
    consumer = Consumer({"bootstrap.servers": args.brokers, "group.id": "ownership-check", "enable.auto.commit": False})
    try:
        md = consumer.list_topics(args.topic, timeout=30)
        parts = md.topics[args.topic].partitions
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])
        seen, agree, owners, wrong = 0, 0, {"new": 0, "legacy": 0}, []
        deadline = time.monotonic() + args.timeout
        while seen < args.count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            seen += 1
            key = msg.key().decode("utf-8")
            stamped = header(msg, "ce_stranglerowner")
            owners[stamped] = owners.get(stamped, 0) + 1
            if stamped == owner(args.salt, key, args.share_percent):
                agree += 1
            elif len(wrong) < 5:
                wrong.append({"key": key, "stamped": stamped, "bucket": bucket(args.salt, key)})
        return {"records": seen, "agree": agree, "owners": owners, "wrong": wrong}
    finally:
        consumer.close()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--doc", required=True, help="path of docs/consumer-protocol.md")
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--salt", required=True)
    p.add_argument("--share-percent", type=float, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    summary = {"vectors": check_vectors(args.doc), **check_topic(args)}
    print(json.dumps(summary), flush=True)
    ok = summary["records"] == args.count and summary["agree"] == args.count
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
