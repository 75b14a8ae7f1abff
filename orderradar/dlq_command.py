"""``orderradar dlq``: inspect and re-drive dead-lettered events.

    orderradar dlq list   [--code schema] [--order O] [--event E] [--sender S] [--since 2026-11-11T00:00]
                          [--limit 50] [--json]
    orderradar dlq show   PARTITION:OFFSET [--raw]
    orderradar dlq redrive (--all | filters | --at P:O ...) [--dry-run]
    orderradar dlq influx                       # chunks of points waiting in influx-dlq

``redrive`` re-produces the selected originals (exact key, value and headers, plus an
``orderradar-redriven-from`` header) to ``order-events``, e.g. after fixing a producer or
the contract. Re-driving twice is harmless for valid events (the worker drops duplicate
``event_id`` s); a record that is still invalid is dead-lettered again. Events the ingest
API rejected (``--sender``: the source whose API key sent them) are re-driven the same way,
except those naming another source than their sender: re-driving those would let one
source's key inject events as another, so they are refused and listed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.client_auth import kafka_auth
from config.settings import Settings
from stream.core import dlq
from stream.topics import INFLUX_DLQ, ORDER_EVENTS, ORDER_EVENTS_DLQ

REDRIVEN_HEADER = "orderradar-redriven-from"


@dataclass(frozen=True)
class Stored:
    """A dead letter with its own place in the DLQ topic."""

    partition: int
    offset: int
    letter: dlq.DeadLetter

    @property
    def at(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True)
class Filters:
    code: str | None = None
    order_id: str | None = None
    event_id: str | None = None
    since: datetime | None = None
    at: frozenset[str] = frozenset()
    sender: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.code or self.order_id or self.event_id or self.since or self.at or self.sender)

    def match(self, item: Stored) -> bool:
        letter = item.letter
        if self.at and item.at not in self.at:
            return False
        if self.code and letter.code != self.code:
            return False
        if self.order_id and letter.order_id != self.order_id:
            return False
        if self.event_id and letter.event_id != self.event_id:
            return False
        if self.sender and letter.sender != self.sender:
            return False
        return not self.since or datetime.fromisoformat(letter.dead_lettered_at) >= self.since


async def read_all(settings: Settings, topic: str) -> list[tuple[int, int, bytes | None, list[tuple[str, bytes]]]]:
    """(partition, offset, value, headers) of every record now in ``topic``, in offset order.

    The end of a partition is the high watermark of fetch responses (the embedded broker
    answers ListOffsets wrongly for multi-record batches)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_auth(settings),
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise SystemExit(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[int, int, bytes | None, list[tuple[str, bytes]]]] = []
        async with asyncio.timeout(120):
            while True:
                for records in (await consumer.getmany(timeout_ms=300, max_records=10_000)).values():
                    out.extend((r.partition, r.offset, r.value, list(r.headers)) for r in records)
                caught_up = True
                for tp in tps:
                    highwater = consumer.highwater(tp)
                    if highwater is None or await consumer.position(tp) < highwater:
                        caught_up = False
                if caught_up:
                    return sorted(out, key=lambda r: (r[0], r[1]))
    finally:
        await consumer.stop()


def load(settings: Settings) -> tuple[list[Stored], int]:
    """The dead letters, and how many records were not valid envelopes."""
    raw = asyncio.run(read_all(settings, settings.topic(ORDER_EVENTS_DLQ)))
    stored: list[Stored] = []
    bad = 0
    for partition, offset, value, _ in raw:
        try:
            stored.append(Stored(partition, offset, dlq.decode(value or b"")))
        except dlq.EnvelopeError:
            bad += 1
    return stored, bad


def _preview(value: bytes | None, width: int = 80) -> str:
    if value is None:
        return "(no value)"
    text = value.decode("utf-8", "replace").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _as_json(item: Stored) -> dict[str, object]:
    letter = item.letter
    return {
        "at": item.at,
        "code": letter.code,
        "reason": letter.reason,
        "order_id": letter.order_id,
        "event_id": letter.event_id,
        "source": {"topic": letter.source.topic, "partition": letter.source.partition, "offset": letter.source.offset},
        "sender": letter.sender,
        "dead_lettered_at": letter.dead_lettered_at,
        "value": letter.value.decode("utf-8", "replace") if letter.value is not None else None,
    }


def cmd_list(items: Sequence[Stored], limit: int, as_json: bool, out: TextIO) -> None:
    shown = items[-limit:] if limit else items
    if as_json:
        for item in shown:
            out.write(orjson.dumps(_as_json(item)).decode() + "\n")
        return
    out.write(f"{'AT':<12} {'CODE':<13} {'VIA':<14} {'ORDER':<24} {'EVENT':<28} REASON\n")
    for item in shown:
        letter = item.letter
        via = f"http:{letter.sender}" if letter.via_http else "bus"
        out.write(
            f"{item.at:<12} {letter.code:<13} {via[:14]:<14} {(letter.order_id or '-')[:24]:<24} "
            f"{(letter.event_id or '-')[:28]:<28} {letter.summary()[:100]}\n"
        )
    out.write(f"{len(shown)} of {len(items)} matching dead letters\n")


def cmd_show(item: Stored, raw: bool, out: TextIO) -> None:
    if raw:
        data = item.letter.value or b""
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            out.write(data.decode("utf-8", "replace"))
        return
    out.write(orjson.dumps(_as_json(item), option=orjson.OPT_INDENT_2).decode() + "\n")


def impersonates(letter: dlq.DeadLetter) -> bool:
    """An HTTP reject whose event names another source than the API key that sent it."""
    if letter.sender is None:
        return False
    try:
        obj = orjson.loads(letter.value or b"")
    except orjson.JSONDecodeError:
        return False  # not JSON: the worker dead-letters it again, naming nobody
    return isinstance(obj, dict) and "source" in obj and obj["source"] != letter.sender


async def redrive(settings: Settings, items: Sequence[Stored]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", **kafka_auth(settings))
    await producer.start()
    try:
        topic = settings.topic(ORDER_EVENTS)
        futures = []
        dlq_topic = settings.topic(ORDER_EVENTS_DLQ)
        for item in items:
            letter = item.letter
            headers = [*letter.headers, (REDRIVEN_HEADER, f"{dlq_topic}:{item.at}".encode())]
            futures.append(await producer.send(topic, letter.value, key=letter.key, headers=headers))
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


def influx_chunks(settings: Settings, out: TextIO) -> None:
    raw = asyncio.run(read_all(settings, settings.topic(INFLUX_DLQ)))
    out.write(f"{'AT':<12} {'REASON':<18} {'LINES':>6}  ERROR\n")
    for partition, offset, value, headers in raw:
        reason = dlq.influx_reason(headers)
        error = next((v.decode("utf-8", "replace") for k, v in headers if k == "error"), "")
        lines = value.count(b"\n") + 1 if value else 0
        out.write(f"{partition}:{offset:<10} {reason.value if reason else '?':<18} {lines:>6}  {error[:80]}\n")
    out.write(f"{len(raw)} chunks (replayed ones stay in the topic; see the replayer's consumer group lag)\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--code", help="rejection code (schema, not_json, future_time, key_mismatch, ...)")
        p.add_argument("--order", dest="order_id", help="order id (the record key)")
        p.add_argument("--event", dest="event_id", help="event id (when the value had one)")
        p.add_argument("--sender", help="ingest source whose API key sent it (events rejected by the HTTP API)")
        p.add_argument("--since", type=datetime.fromisoformat, help="dead-lettered at or after (ISO 8601)")

    p_list = sub.add_parser("list", help="list dead letters, newest last")
    filters(p_list)
    p_list.add_argument("--limit", type=int, default=50, help="show the last N (0: all; default 50)")
    p_list.add_argument("--json", action="store_true", help="one JSON object per line")

    p_show = sub.add_parser("show", help="show one dead letter")
    p_show.add_argument("at", metavar="PARTITION:OFFSET", help="its place in the DLQ topic (from list)")
    p_show.add_argument("--raw", action="store_true", help="print the original value bytes only")

    p_redrive = sub.add_parser("redrive", help="re-produce selected originals to order-events")
    filters(p_redrive)
    p_redrive.add_argument(
        "--at", action="append", default=[], metavar="PARTITION:OFFSET", help="a dead letter by its place (repeatable)"
    )
    p_redrive.add_argument("--all", action="store_true", help="every dead letter (no filter needed)")
    p_redrive.add_argument("--dry-run", action="store_true", help="only say what would be re-driven")

    sub.add_parser("influx", help="list the chunks of points in influx-dlq")


def run(args: argparse.Namespace, settings: Settings) -> int:
    out = sys.stdout
    if args.dlq_command == "influx":
        influx_chunks(settings, out)
        return 0
    items, bad = load(settings)
    if bad:
        print(f"warning: {bad} records in the DLQ are not dead-letter envelopes", file=sys.stderr)
    if args.dlq_command == "show":
        found = [i for i in items if i.at == args.at]
        if not found:
            print(f"no dead letter at {args.at}", file=sys.stderr)
            return 1
        cmd_show(found[0], args.raw, out)
        return 0
    chosen = Filters(
        code=args.code,
        order_id=args.order_id,
        event_id=args.event_id,
        since=args.since,
        at=frozenset(getattr(args, "at", []) or []),
        sender=args.sender,
    )
    selected = [i for i in items if chosen.match(i)]
    if args.dlq_command == "list":
        cmd_list(selected, args.limit, args.json, out)
        return 0
    if chosen.empty and not args.all:
        print("redrive needs a filter (--code/--order/--event/--sender/--since/--at) or --all", file=sys.stderr)
        return 2
    refused = [i for i in selected if impersonates(i.letter)]
    if refused:
        selected = [i for i in selected if not impersonates(i.letter)]
        print(
            f"refusing {len(refused)} dead letters whose event names another source than its sender: "
            + ", ".join(i.at for i in refused),
            file=sys.stderr,
        )
    if args.dry_run:
        cmd_list(selected, 0, False, out)
        print(f"dry run: {len(selected)} would be re-driven to {settings.topic(ORDER_EVENTS)}")
        return 0
    count = asyncio.run(redrive(settings, selected))
    print(f"re-drove {count} records to {settings.topic(ORDER_EVENTS)}")
    return 0
