"""Per-partition local snapshots of the worker's state (issue #20).

A restarted worker used to read its partitions' whole changelog. With snapshots it reads its
own disk, then only the changelog tail after the offset the snapshot covers:

- :meth:`LocalSnapshots.maybe_save` (after a batch, under the batch lock) copies the owned,
  clean partitions' items (the values are immutable, so a shallow copy is a consistent image)
  with the changelog end offset each one covers, then encodes and writes them in a task that
  yields to the event loop; :meth:`LocalSnapshots.save` does the same at once (clean stop).
- A file per partition, ``<changelog>-<partition>.snap``, written to a temporary file,
  fsync'ed and renamed over the old one: a crash leaves the old snapshot or the new, whole.
  Values are the changelog's own encoding (:func:`stream.sinks.changelog.encode_value`).
- :func:`restore_state` seeds :func:`stream.changelog_restore.load_changelog` with the
  snapshot's raw values and starts reading at its offset. A partition without a snapshot is
  read from the changelog's start; a snapshot that is corrupt, of another partition, whose
  offset lies outside the changelog (beyond its end: the broker lost data; before its
  beginning: records it did not see were deleted), or that does not hold the changelog's
  record just before its offset (another log under the same name) is ignored with a warning.

The snapshot is a prefix of the changelog (only partitions whose state matches what was
written are saved), so which worker wrote it does not matter: the tail brings whatever
other owners wrote after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import struct
import time
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.changelog_restore import changelog_ranges, load_changelog, records_at
from stream.order_state import OrderState
from stream.sinks.changelog import encode_value
from stream.stage_api import StageValue

log = logging.getLogger(__name__)

MAGIC = b"ORSNAP1\n"
_HEAD = struct.Struct("<iq")  # partition, changelog offset covered
_ITEM = struct.Struct("<II")  # key length, value length
_END = 0xFFFFFFFF  # key length of the trailer: item count and digest follow
_COUNT = struct.Struct("<q")
_DIGEST = 16
#: Items encoded between two yields to the event loop.
_CHUNK = 2_000


class SnapshotError(ValueError):
    """A snapshot file is not whole or not one of ours."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    partition: int
    #: The changelog offset the snapshot covers: reading resumes there.
    offset: int
    #: Raw changelog values by raw key.
    values: dict[bytes, bytes]


def partition_of(value: object) -> int | None:
    return value.partition if isinstance(value, (OrderState, StageValue)) else None


def snapshot_path(directory: Path, changelog: str, partition: int) -> Path:
    return directory / f"{changelog}-{partition}.snap"


def _write_file(path: Path, partition: int, offset: int, chunks: Iterable[bytes], count: int) -> None:
    """Write the snapshot atomically: a temporary file, fsync, rename, fsync of the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    digest = hashlib.blake2b(digest_size=_DIGEST)
    with tmp.open("wb") as out:
        for chunk in (MAGIC + _HEAD.pack(partition, offset), *chunks, _ITEM.pack(_END, 0) + _COUNT.pack(count)):
            digest.update(chunk)
            out.write(chunk)
        out.write(digest.digest())
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_snapshot(path: Path) -> Snapshot:
    """The snapshot in ``path``; :class:`SnapshotError` when it is not whole."""
    data = path.read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _HEAD.size + _ITEM.size + _COUNT.size + _DIGEST:
        raise SnapshotError(f"{path}: not a snapshot (or truncated)")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.blake2b(body, digest_size=_DIGEST).digest() != digest:
        raise SnapshotError(f"{path}: digest mismatch (corrupt or truncated)")
    partition, offset = _HEAD.unpack_from(body, len(MAGIC))
    at = len(MAGIC) + _HEAD.size
    values: dict[bytes, bytes] = {}
    while True:
        klen, vlen = _ITEM.unpack_from(body, at)
        at += _ITEM.size
        if klen == _END:
            (count,) = _COUNT.unpack_from(body, at)
            if count != len(values) or at + _COUNT.size != len(body):
                raise SnapshotError(f"{path}: {len(values)} items, the trailer says {count}")
            return Snapshot(partition, offset, values)
        values[body[at : at + klen]] = body[at + klen : at + klen + vlen]
        at += klen + vlen


def _encoded(items: list[tuple[str, Any]], start: int, stop: int) -> bytes:
    out = []
    for key, value in items[start:stop]:
        raw_key, raw = key.encode(), encode_value(value)
        out.append(_ITEM.pack(len(raw_key), len(raw)) + raw_key + raw)
    return b"".join(out)


class LocalSnapshots:
    """Saves and finds the snapshots of one changelog's partitions in ``directory``."""

    def __init__(self, directory: Path, changelog: str, interval_s: float = 60.0) -> None:
        self.directory = directory
        self.changelog = changelog
        self.interval_s = interval_s
        self._task: asyncio.Future[None] | None = None
        self._last = time.monotonic()
        self.saved = 0

    def path(self, partition: int) -> Path:
        return snapshot_path(self.directory, self.changelog, partition)

    def load(self, partition: int, begin: int, end: int) -> Snapshot | None:
        """The partition's snapshot when it is whole and within the changelog ``[begin, end]``."""
        path = self.path(partition)
        try:
            snapshot = read_snapshot(path)
        except FileNotFoundError:
            return None
        except (OSError, SnapshotError, struct.error) as exc:
            log.warning(
                "local snapshot of partition %d ignored (%s): its changelog is read from the start", partition, exc
            )
            return None
        if snapshot.partition != partition:
            log.warning("local snapshot %s is of partition %d, not %d: ignored", path, snapshot.partition, partition)
            return None
        if not begin <= snapshot.offset <= end:
            log.warning(
                "local snapshot of partition %d covers the changelog to offset %d, which holds [%d, %d) "
                "(data lost or deleted on the broker): ignored, its changelog is read from the start",
                partition,
                snapshot.offset,
                begin,
                end,
            )
            return None
        return snapshot

    @staticmethod
    def _items(store: Mapping[str, Any], ends: Mapping[int, int]) -> dict[int, list[tuple[str, Any]]]:
        by_partition: dict[int, list[tuple[str, Any]]] = {p: [] for p in ends}
        for key, value in store.items():
            p = partition_of(value)
            if p in by_partition:
                by_partition[p].append((key, value))
        return by_partition

    def maybe_save(self, store: Mapping[str, Any], ends: Mapping[int, int], now: float | None = None) -> None:
        """Start saving ``ends``' partitions (partition -> changelog offset their state in
        ``store`` covers) when the interval passed and no save is running. Call it where
        ``store`` is consistent with ``ends`` (under the batch lock)."""
        now = time.monotonic() if now is None else now
        if not ends or now - self._last < self.interval_s or (self._task is not None and not self._task.done()):
            return
        self._last = now
        self._task = asyncio.ensure_future(self._write(self._items(store, ends), dict(ends)))

    async def save(self, store: Mapping[str, Any], ends: Mapping[int, int]) -> None:
        """Save now (a clean stop), after a save in progress."""
        await self.settle()
        if ends:
            self._last = time.monotonic()
            await self._write(self._items(store, ends), dict(ends))

    async def settle(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait([task])

    async def _write(self, items: dict[int, list[tuple[str, Any]]], ends: dict[int, int]) -> None:
        for partition, part in items.items():
            started = time.monotonic()
            chunks = []
            for at in range(0, len(part), _CHUNK):
                chunks.append(_encoded(part, at, at + _CHUNK))
                await asyncio.sleep(0)  # the batch loop and heartbeats go on
            try:
                await asyncio.to_thread(
                    _write_file, self.path(partition), partition, ends[partition], chunks, len(part)
                )
            except OSError as exc:
                log.warning("local snapshot of partition %d not written: %r", partition, exc)
                continue
            self.saved += 1
            log.info(
                "local snapshot of partition %d: %d items to changelog offset %d in %.1fs",
                partition,
                len(part),
                ends[partition],
                time.monotonic() - started,
            )


async def restore_state(
    snapshots: LocalSnapshots | None,
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    store: MutableMapping[str, Any],
    security: Mapping[str, Any] | None = None,
    ends_read: dict[int, int] | None = None,
) -> int:
    """Fill ``store`` with ``partitions``' state: each one's local snapshot (when usable) and
    the changelog after it, or its whole changelog; changelog records read."""
    partitions = sorted(set(partitions))
    if snapshots is None or not partitions:
        return await load_changelog(bootstrap, topic, partitions, store, security, ends_read=ends_read)
    ranges = await changelog_ranges(bootstrap, topic, partitions, security)
    usable = {p: s for p in partitions if (s := snapshots.load(p, *ranges[p])) is not None}
    # The record just before a snapshot's offset is the newest version of its key there, so
    # the snapshot holds it: otherwise the log is another one (topic recreated, broker reset).
    last = await records_at(
        bootstrap, topic, {p: s.offset - 1 for p, s in usable.items() if s.offset > ranges[p][0]}, security
    )
    seed: dict[bytes, bytes | None] = {}
    starts: dict[int, int] = {}
    for p, snapshot in usable.items():
        record = last.get(p)
        if (
            record is not None
            and record[0] == snapshot.offset - 1
            and record[1] is not None
            and snapshot.values.get(record[1]) != record[2]
        ):
            log.warning(
                "local snapshot of partition %d does not hold the changelog's record at offset %d "
                "(another log under the same name?): ignored",
                p,
                record[0],
            )
            continue
        seed.update(snapshot.values)
        starts[p] = snapshot.offset
    if starts:
        log.info(
            "local snapshots of partitions %s: %d items; reading the changelog from %s",
            sorted(starts),
            len(seed),
            starts,
        )
    return await load_changelog(
        bootstrap, topic, partitions, store, security, ends_read=ends_read, start_offsets=starts, seed=seed
    )
