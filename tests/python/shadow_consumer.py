#!/usr/bin/env python3
"""A new service's consumer, written from docs/consumer-protocol.md alone.

It reads one route's events topic with a consumer group and, for each event, follows "What a
new service must do for each event":

1. read ``ce_id``, ``ce_stranglermode``, ``ce_stranglerroute`` and the body;
2. skip an event marked ``ce_stranglersignature=invalid`` without remembering its ``ce_id``, and
   an event whose ``ce_id`` it already produced an outcome for (commit and move on);
3. decide, with no side effect at all (this service only ever *reports* a decision, so it is
   safe in ``shadow`` mode; in ``live`` mode it would perform them here, and it has none);
4. publish one outcome record to the outcomes topic, keyed by the event id, and wait for the
   broker's acknowledgement (``acks=all``);
5. only then commit the event's offset;
6. if deciding keeps failing, retry with backoff a bounded number of times, then write the event
   to a dead-letter topic with a ``dlq_reason`` header, commit, and publish no outcome.

The decision rule is deliberately trivial and deterministic so a test can predict it:

* body is a JSON object: ``status`` is its ``"reply_status"`` when that is an integer in
  100..=599, else 200; ``body`` (JSON) is
  ``{"accepted": status < 400, "event_id": <ce_id>, "type": <ce_type>, "echo": <body["echo"]>}``
  (``echo`` is ``null`` when absent);
* anything else (not JSON, or JSON that is not an object): ``status`` 422 and a ``text`` body
  ``"unprocessable: <ce_id>"``.

It exits 0 once it has published ``--count`` outcomes (distinct event ids; a duplicate does not
count), or on SIGTERM/SIGINT after finishing the event in hand. It exits non-zero when an outcome
cannot be published: the event's offset is then not committed, so it is delivered again.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from datetime import datetime, timezone

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

log = logging.getLogger("shadow_consumer")

MODES = ("shadow", "live")
DECIDE_ATTEMPTS = 3
ACK_TIMEOUT_S = 30.0


def header(msg, name: str) -> str | None:
    """The first header called ``name`` as UTF-8, or None."""
    for key, value in msg.headers() or []:
        if key == name:
            return None if value is None else value.decode("utf-8")
    return None


def decide(event_id: str, ce_type: str | None, value: bytes | None) -> dict:
    """The decision, as the outcome's answer fields. Pure: no side effects, in any mode."""
    try:
        doc = json.loads(value or b"")
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return {
            "status": 422,
            "body": f"unprocessable: {event_id}",
            "body_encoding": "text",
            "content_type": "text/plain; charset=utf-8",
        }
    status = doc.get("reply_status")
    if not (isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599):
        status = 200
    return {
        "status": status,
        "body": {"accepted": status < 400, "event_id": event_id, "type": ce_type, "echo": doc.get("echo")},
        "body_encoding": "json",
        "content_type": "application/json",
    }


def rfc3339_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Stop:
    """Set by SIGTERM/SIGINT; the loop finishes the event in hand, then exits."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, signum, _frame) -> None:
        log.info("signal %s: stopping after the current event", signum)
        self.requested = True


class ShadowConsumer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.consumer = Consumer(
            {
                "bootstrap.servers": args.brokers,
                "group.id": args.group,
                # Offsets are committed by hand, after the outcome is acknowledged (step 5).
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # A new group reads what was published before it joined.
                "auto.offset.reset": "earliest",
                "client.id": args.service_name,
            }
        )
        self.producer = Producer(
            {
                "bootstrap.servers": args.brokers,
                "acks": "all",
                "enable.idempotence": True,
                "client.id": args.service_name,
            }
        )
        # Event ids this process has produced an outcome (or a dead letter) for. In memory only:
        # a restarted process relies on the outcome being harmless to repeat (see the report).
        self.done: set[str] = set()
        self.published = 0

    # -- publishing ------------------------------------------------------------------------

    def _produce_acked(self, topic: str, key: str, value: bytes, headers=None) -> None:
        """Produces one record and blocks until the broker acknowledges it; raises on failure."""
        result: dict = {}

        def on_delivery(err, _msg) -> None:
            result["err"] = err

        self.producer.produce(topic, key=key.encode("utf-8"), value=value, headers=headers, on_delivery=on_delivery)
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while "err" not in result:
            if time.monotonic() > deadline:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"no ack from {topic} in {ACK_TIMEOUT_S}s"))
            self.producer.poll(0.1)
        if result["err"] is not None:
            raise KafkaException(result["err"])

    def publish_outcome(self, event_id: str, route: str, mode: str, answer: dict, latency_ms: float) -> None:
        outcome = {
            "event_id": event_id,
            "route": route,
            "source": "new",
            "mode": mode,
            **answer,
            "latency_ms": latency_ms,
            "at": rfc3339_now(),
            "consumer": self.args.service_name,
        }
        value = json.dumps(outcome, separators=(",", ":")).encode("utf-8")
        self._produce_acked(self.args.outcomes_topic, event_id, value)

    def dead_letter(self, msg, reason: str) -> None:
        headers = list(msg.headers() or []) + [("dlq_reason", reason.encode("utf-8"))]
        key = msg.key()
        self.producer.produce(self.args.dlq_topic, key=key, value=msg.value(), headers=headers)
        if self.producer.flush(ACK_TIMEOUT_S) != 0:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"dead letter to {self.args.dlq_topic} not acked"))
        log.warning("dead-lettered %s/%d@%d: %s", msg.topic(), msg.partition(), msg.offset(), reason)

    # -- one event -------------------------------------------------------------------------

    def handle(self, msg) -> None:
        event_id = header(msg, "ce_id")
        mode = header(msg, "ce_stranglermode")
        route = header(msg, "ce_stranglerroute")
        if not event_id or not route or mode not in MODES:
            self.dead_letter(msg, f"not a strangler event: ce_id={event_id!r} route={route!r} mode={mode!r}")
            return
        if header(msg, "ce_stranglersignature") == "invalid":
            # Perhaps a forgery ahead of the genuine delivery with this id: skip it without
            # remembering the id, and publish no outcome.
            log.info("invalid signature %s: skipped", event_id)
            return
        if event_id in self.done:
            log.info("duplicate %s: skipped", event_id)
            return
        answer, err = None, None
        started = time.monotonic()
        for attempt in range(DECIDE_ATTEMPTS):
            try:
                started = time.monotonic()
                answer = decide(event_id, header(msg, "ce_type"), msg.value())
                break
            except Exception as e:  # noqa: BLE001 -- any handler failure is retried, then dead-lettered
                err = e
                log.warning("decide %s failed (attempt %d): %s", event_id, attempt + 1, e)
                time.sleep(0.1 * 2**attempt)
        if answer is None:
            self.dead_letter(msg, f"handler failed {DECIDE_ATTEMPTS} times: {err}")
            self.done.add(event_id)
            return
        latency_ms = round((time.monotonic() - started) * 1000.0, 3)
        self.publish_outcome(event_id, route, mode, answer, latency_ms)
        self.done.add(event_id)
        self.published += 1
        log.info("outcome %s (%s %s): %s", event_id, route, mode, answer["status"])

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: Stop) -> int:
        self.consumer.subscribe([self.args.topic])
        try:
            while not stop.requested and (self.args.count is None or self.published < self.args.count):
                msg = self.consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    log.debug("consumer: %s", msg.error())
                    continue
                self.handle(msg)
                # Step 5: only now, after the outcome (or dead letter) is acknowledged.
                self.consumer.commit(message=msg, asynchronous=False)
        finally:
            self.producer.flush(ACK_TIMEOUT_S)
            self.consumer.close()
        log.info("done: %d outcomes published", self.published)
        return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True, help="bootstrap.servers")
    p.add_argument("--topic", required=True, help="the route's events topic")
    p.add_argument("--group", required=True, help="consumer group id")
    p.add_argument("--outcomes-topic", default="strangler.outcomes")
    p.add_argument("--count", type=int, default=None, help="exit after publishing this many outcomes")
    p.add_argument("--service-name", default="shadow-consumer", help="the outcome's `consumer` field")
    p.add_argument("--dlq-topic", default=None, help="dead-letter topic (default: <topic>.dlq)")
    args = p.parse_args(argv)
    if args.dlq_topic is None:
        args.dlq_topic = f"{args.topic}.dlq"
    return args


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    stop = Stop()
    try:
        return ShadowConsumer(args).run(stop)
    except KafkaException as e:
        log.error("kafka: %s (offset not committed; the event will be delivered again)", e)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
