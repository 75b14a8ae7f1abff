"""The changelog value of an order state (issue #20): compact msgpack records.

Version 2 (written): msgpack arrays of ``msgspec`` structs (``array_like``), tagged ``o2``;
the changelog sink (``encode_value``) writes them beside stage entries. Version 1 (JSON objects,
read only) is still decoded, so a worker upgraded over an old changelog recovers it.
Decoding interns the low-cardinality strings, as :mod:`stream.core.lifecycle` does for live events,
and packs each timeline (:mod:`stream.core.timeline_pack`): the wire format holds entries, not the
process-local packed form.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from sys import intern as _intern
from typing import Any

import msgspec
import orjson

from stream.contract import Status
from stream.core import timeline_pack
from stream.core.order_state import (
    NO_EXTENSIONS,
    OrderState,
    Position,
    SkuFacts,
    SkuLines,
    SkuState,
    interned,
    pack_stage_times,
    shared_facts,
    sku_times,
    unpack_stage_times,
)
from stream.core.progress import START, Progress
from stream.core.timeline_pack import TimelineEntry

#: Version of the changelog value written (1: JSON objects, still decoded; 2: msgpack arrays).
STATE_VERSION = 2


class SkuRecord(msgspec.Struct, array_like=True, gc=False):
    """A SKU state as written to the changelog (stage times by status name: independent of
    the order of :class:`Status` members)."""

    sku: str
    status: Status
    interrupted: Status | None
    rank: int
    status_time_ns: int
    stage_times: dict[str, int]
    position: Position | None
    facts: SkuFacts
    timeline: tuple[TimelineEntry, ...]
    base: Progress
    pinned: bool


class OrderRecord(msgspec.Struct, array_like=True, gc=False, tag="o2"):
    """An order state as written to the changelog."""

    order_id: str
    partition: int
    seq: int
    last_event_ns: int
    skus: list[SkuRecord]
    #: The extensions as JSON (``b""``: none): stage state keeps JSON semantics (a datetime
    #: comes back as its ISO string, as with version 1).
    ext: bytes


class StateFormatError(ValueError):
    """A stored order state is not in a format this version understands."""


def order_record(o: OrderState) -> OrderRecord:
    return OrderRecord(
        o.order_id,
        o.partition,
        o.seq,
        o.last_event_ns,
        [
            SkuRecord(
                s.sku,
                s.status,
                s.interrupted,
                s.rank,
                s.status_time_ns,
                unpack_stage_times(s.stage_ns),
                s.position,
                s.facts,
                s.timeline,
                s.base,
                s.pinned,
            )
            for s in o.skus.values()
        ],
        orjson.dumps(o.extensions) if o.extensions else b"",
    )


def _interned_facts(f: SkuFacts) -> SkuFacts:
    i = interned
    return SkuFacts(
        f.qty,
        i(f.region),
        i(f.warehouse),
        i(f.carrier),
        i(f.channel),
        i(f.node),
        f.promised_by_ns,
        f.dest_lat,
        f.dest_lon,
        i(f.sku_class),
        f.vip,
    )


#: One copy of each fold base (few distinct: a decoded tuple per SKU cost 64 B).
_BASES: dict[Progress, Progress] = {START: START}


def _shared(base: Progress) -> Progress:
    return _BASES.setdefault(base, base)


def order_from_record(r: OrderRecord) -> OrderState:
    """The in-memory state of a decoded record (its low-cardinality strings interned)."""
    try:
        lines = []
        sibling = None
        for s in r.skus:
            facts = shared_facts(_interned_facts(s.facts), sibling)
            sibling = facts
            lines.append(
                SkuState(
                    _intern(s.sku),
                    s.status,
                    s.interrupted,
                    s.rank,
                    sku_times(s.status_time_ns, pack_stage_times(s.stage_times)),
                    s.position,
                    facts,
                    timeline_pack.pack(s.timeline),
                    _shared(s.base),
                    s.pinned,
                )
            )
        skus = SkuLines(lines)
    except (KeyError, ValueError, struct.error) as exc:  # an unknown status, too many entries, a bad time
        raise StateFormatError(f"bad order state for {r.order_id!r}: {exc!r}") from exc
    try:
        extensions = orjson.loads(r.ext) if r.ext else NO_EXTENSIONS
    except orjson.JSONDecodeError as exc:
        raise StateFormatError(f"bad extensions of order {r.order_id!r}: {exc}") from exc
    return OrderState(r.order_id, r.partition, skus, r.last_event_ns, r.seq, extensions)


# Version 1 (JSON objects), read only.


def _entry_from_list(v: list[Any]) -> TimelineEntry:
    # Entries written before ``device`` and ``skipped`` existed have 8 items.
    device = v[8] if len(v) > 8 else None
    skipped = tuple(Status(s) for s in v[9]) if len(v) > 9 else ()
    i = interned
    return TimelineEntry(
        v[0], Status(v[1]), int(v[2]), _intern(v[3]), i(v[4]), i(v[5]), bool(v[6]), i(v[7]), i(device), skipped
    )


def _progress_from_list(v: list[Any]) -> Progress:
    return Progress(Status(v[0]) if v[0] else None, Status(v[1]) if v[1] else None, int(v[2]))


def sku_from_dict(d: Mapping[str, Any]) -> SkuState:
    position = d.get("position")
    return SkuState(
        sku=_intern(d["sku"]),
        status=Status(d["status"]),
        interrupted=Status(d["interrupted"]) if d.get("interrupted") else None,
        rank=int(d["rank"]),
        times=sku_times(int(d["status_time_ns"]), pack_stage_times(d["stage_times"])),
        position=Position(position[0], position[1], int(position[2])) if position else None,
        facts=_interned_facts(SkuFacts(**d.get("facts", {}))),
        packed=timeline_pack.pack([_entry_from_list(v) for v in d["timeline"]]),
        base=_shared(_progress_from_list(d["base"])) if "base" in d else START,
        pinned=bool(d.get("pinned", False)),
    )


def order_from_dict(d: Mapping[str, Any]) -> OrderState:
    """A version 1 (JSON) order state."""
    if d.get("v") != 1:
        raise StateFormatError(f"order state version {d.get('v')!r}, expected 1 (JSON) or 2 (msgpack)")
    try:
        skus = [sku_from_dict(s) for s in d["skus"]]
        return OrderState(
            order_id=d["order_id"],
            partition=int(d["partition"]),
            skus=SkuLines(skus),
            last_event_ns=int(d["last_event_ns"]),
            seq=int(d["seq"]),
            extensions=dict(d.get("ext", {})),
        )
    except (KeyError, TypeError, ValueError, IndexError, struct.error) as exc:
        raise StateFormatError(f"bad order state for {d.get('order_id')!r}: {exc!r}") from exc
