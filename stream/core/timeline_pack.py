"""A SKU's timeline packed in one ``bytes`` (issue #20), with its duplicate window.

A timeline of :class:`TimelineEntry` structs cost ~210 B per event in RAM (a 96 B struct, an
80 B event-id ``str`` and a 48 B ``int`` time). Packed, an event costs 8 B of hash, a 30 B
fixed record and its id's bytes (front-coded), in one object per SKU::

    [n: u8] [n x 8 B id hashes] [n x 30 B records] [n x (u8 shared prefix, u8 length, suffix)]

Records hold the time, the status, flags and indexes into process-wide tables of the
low-cardinality strings (sources, nodes, regions, devices, reasons) and of ``skipped``
tuples; a table holds each distinct value once (the strings ``sys.intern``-ed), so it is
bounded by the number of distinct sources/nodes/devices, not by events.

Duplicate window: the 8 B hashes are Python's (SipHash) hash of each event id, compared with
one ``bytes.find`` over the window; a hit is confirmed by comparing the stored id bytes, so
detection is exact (a collision costs one extra compare, never a dropped event). The hashes
are process-local (the keyed ``str`` hash): the packed form never leaves the process; the
changelog and local snapshots carry the entries (ids), and packing again hashes them anew.

:attr:`stream.core.order_state.SkuState.timeline` unpacks on demand, so consumers keep reading
:class:`TimelineEntry` objects.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence

import msgspec

from stream.contract import Status


class TimelineEntry(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One atomic event of a SKU as recorded in its timeline."""

    event_id: str
    status: Status
    time_ns: int
    source: str
    node: str | None = None
    region: str | None = None
    #: It arrived after a newer event of the SKU had been recorded.
    late: bool = False
    #: Why it is not a legal step in the time-ordered timeline (``None``: legal).
    illegal: str | None = None
    #: Device that scanned it (``device_id``), for the missing-scan measure.
    device: str | None = None
    #: Ladder stages not scanned before it (a legal forward skip; ``()`` otherwise).
    skipped: tuple[Status, ...] = ()

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.time_ns, self.event_id)


#: time_ns, status index (+128: late), skipped index, source, node, region, illegal, device
_REC = struct.Struct("<qBBIIIII")
_LATE = 128
_HASH = struct.Struct("<q")
_HASH_SIZE = _HASH.size
_REC_SIZE = _REC.size
#: At most this many entries in one packed timeline (the count is one byte).
MAX_ENTRIES = 255

_STATUSES: tuple[Status, ...] = tuple(Status)
_STATUS_INDEX: dict[Status, int] = {s: i for i, s in enumerate(_STATUSES)}

#: Index 0 is ``None``; a string's index is stable for the life of the process.
_NAMES: list[str | None] = [None]
_NAME_INDEX: dict[str, int] = {}
_SKIPS: list[tuple[Status, ...]] = [()]
_SKIP_INDEX: dict[tuple[Status, ...], int] = {(): 0}

EMPTY = b"\x00"


def _name(value: str | None) -> int:
    if value is None:
        return 0
    index = _NAME_INDEX.get(value)
    if index is None:
        index = len(_NAMES)
        value = sys.intern(value)
        _NAMES.append(value)
        _NAME_INDEX[value] = index
    return index


def _skip(value: tuple[Status, ...]) -> int:
    """Index of a ``skipped`` tuple: runs of the ladder's 9 stages, well under 256 distinct."""
    index = _SKIP_INDEX.get(value)
    if index is None:
        index = len(_SKIPS)
        _SKIPS.append(value)
        _SKIP_INDEX[value] = index
    return index


def id_hash(event_id: str) -> bytes:
    """The 8-byte window hash of an event id (``str`` caches its hash: computed once per object)."""
    return _HASH.pack(hash(event_id))


def pack(entries: Sequence[TimelineEntry]) -> bytes:
    """The packed form of ``entries`` (oldest first)."""
    n = len(entries)
    if n > MAX_ENTRIES:
        raise ValueError(f"{n} timeline entries, at most {MAX_ENTRIES} are packed")
    if not n:
        return EMPTY
    hashes = b"".join([_HASH.pack(hash(e.event_id)) for e in entries])
    index, name = _NAME_INDEX.get, _name  # index 0 is None: a hit is never falsy
    records = b"".join(
        [
            _REC.pack(
                e.time_ns,
                _STATUS_INDEX[e.status] | (_LATE if e.late else 0),
                _SKIP_INDEX.get(e.skipped) or _skip(e.skipped) if e.skipped else 0,
                index(e.source) or name(e.source),
                0 if e.node is None else index(e.node) or name(e.node),
                0 if e.region is None else index(e.region) or name(e.region),
                0 if e.illegal is None else index(e.illegal) or name(e.illegal),
                0 if e.device is None else index(e.device) or name(e.device),
            )
            for e in entries
        ]
    )
    return bytes((n,)) + hashes + records + _front_coded([e.event_id.encode() for e in entries])


def _front_coded(ids: list[bytes]) -> bytes:
    """Each id as (length of the prefix it shares with the previous one, suffix length,
    suffix): ids of one SKU mostly differ in their last characters."""
    out = []
    previous = b""
    for raw in ids:
        # the shared prefix's length: the first differing byte is the XOR's highest non-zero one
        m = min(len(raw), len(previous))
        shared = m - ((int.from_bytes(raw[:m], "big") ^ int.from_bytes(previous[:m], "big")).bit_length() + 7) // 8
        out.append(bytes((shared, len(raw) - shared)) + raw[shared:])
        previous = raw
    return b"".join(out)


def _ids(packed: bytes, n: int, upto: int) -> list[bytes]:
    """The first ``upto`` ids of a packed timeline of ``n`` entries."""
    at = 1 + (_HASH_SIZE + _REC_SIZE) * n
    out = []
    previous = b""
    for _ in range(upto):
        shared, length = packed[at], packed[at + 1]
        previous = previous[:shared] + packed[at + 2 : at + 2 + length]
        out.append(previous)
        at += 2 + length
    return out


def unpack(packed: bytes) -> tuple[TimelineEntry, ...]:
    """The entries of a packed timeline (oldest first)."""
    n = packed[0]
    if not n:
        return ()
    start = 1 + _HASH_SIZE * n
    ids = [raw.decode() for raw in _ids(packed, n, n)]
    names, statuses, skips = _NAMES, _STATUSES, _SKIPS
    return tuple(
        [
            TimelineEntry(
                event_id,
                statuses[status & ~_LATE],
                time_ns,
                names[source],
                names[node],
                names[region],
                status >= _LATE,
                names[illegal],
                names[device],
                skips[skipped],
            )
            for event_id, (time_ns, status, skipped, source, node, region, illegal, device) in zip(
                ids, _REC.iter_unpack(packed[start : start + _REC_SIZE * n]), strict=True
            )
        ]
    )


def count(packed: bytes) -> int:
    return packed[0]


def newest_time(packed: bytes) -> int | None:
    """Event time of the newest entry (``None``: empty), without unpacking the others."""
    n = packed[0]
    if not n:
        return None
    return int(_HASH.unpack_from(packed, 1 + _HASH_SIZE * n + _REC_SIZE * (n - 1))[0])


def contains(packed: bytes, event_id: str) -> bool:
    """Whether ``event_id`` is in the window: a hash hit confirmed by the stored id (exact)."""
    n = packed[0]
    if not n:
        return False
    needle = _HASH.pack(hash(event_id))
    end = 1 + _HASH_SIZE * n
    at = packed.find(needle, 1, end)
    while at != -1:
        offset = at - 1
        if offset % _HASH_SIZE == 0 and _ids(packed, n, offset // _HASH_SIZE + 1)[-1] == event_id.encode():
            return True
        at = packed.find(needle, at + 1, end)
    return False
