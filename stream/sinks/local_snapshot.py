"""Per-partition local snapshots of the worker's state (issue #20).

A restarted worker used to read its partitions' whole changelog. With snapshots it reads its
own disk, then only the changelog tail after the offset the snapshot covers. The files
(:mod:`stream.sinks.snapshot_files`) are a base per partition and delta segments after it:

- :meth:`LocalSnapshots.maybe_save` (after a batch, under the batch lock) saves the owned,
  clean partitions (their state matches the changelog up to the offset given). A partition
  whose files are known to hold its image at an earlier offset gets a **delta**: only the
  keys the changelog sink wrote since (:meth:`LocalSnapshots.note`, keys only, no values)
  and the keys a restore read from the changelog tail, each with its value in the store now
  or a tombstone. Others get a whole **base**. Items are encoded in chunks that yield to the
  event loop (the values are immutable, so the references taken under the lock are a
  consistent image) and written in a thread; :meth:`LocalSnapshots.save` does the same at
  once (clean stop). So a save costs what changed, not what is held.
- When a partition's deltas pass ``compact_ratio`` of its base and ``compact_min_bytes`` (a
  tiny base is not rewritten each minute), or number ``max_deltas``, they are folded into a
  new base in a thread, from the files' raw bytes (nothing encoded).
- :func:`restore_state` seeds :func:`stream.kafka.changelog_restore.load_changelog` with the base
  and its deltas applied in order, and reads the changelog from the last delta's offset. A
  partition without a base is read from the changelog's start, and so is one whose base is
  corrupt or of another partition, whose image ends outside the changelog (beyond its end:
  the broker lost data; before its beginning: records it did not see were deleted), or that
  does not hold the changelog's record just before its offset (another log under the same
  name): each with a warning. A torn or corrupt delta ends the chain before it (warning):
  the changelog after the last good one fills in.

The images are prefixes of the changelog, so which worker wrote a file does not matter: the
tail brings whatever other owners wrote after it.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.core.order_state import OrderState
from stream.kafka.changelog_restore import changelog_ranges, load_changelog, records_at
from stream.sinks.changelog import encode_value
from stream.sinks.snapshot_files import (
    Chain,
    Image,
    Snapshot,
    SnapshotError,
    base_path,
    compact,
    delta_path,
    encode_item,
    read_image,
    read_snapshot,
    remove_deltas_before,
    write_base,
    write_delta,
)
from stream.stage_api import StageValue

log = logging.getLogger(__name__)

#: Items encoded between two yields to the event loop.
_CHUNK = 2_000


def partition_of(value: object) -> int | None:
    return value.partition if isinstance(value, (OrderState, StageValue)) else None


def snapshot_path(directory: Path, changelog: str, partition: int) -> Path:
    return base_path(directory, changelog, partition)


@dataclass(slots=True)
class _Job:
    """One file to write: a base (``start`` is ``None``) or a delta from ``start``."""

    partition: int
    start: int | None
    offset: int
    #: Keys and their values (``None``: deleted), references taken under the batch lock.
    items: list[tuple[str, Any]]


class LocalSnapshots:
    """Saves and finds the snapshots of one changelog's partitions in ``directory``."""

    def __init__(
        self,
        directory: Path,
        changelog: str,
        interval_s: float = 60.0,
        compact_ratio: float = 0.5,
        max_deltas: int = 64,
        compact_min_bytes: int = 1 << 20,
    ) -> None:
        self.directory = directory
        self.changelog = changelog
        self.interval_s = interval_s
        self.compact_ratio = compact_ratio
        self.max_deltas = max_deltas
        self.compact_min_bytes = compact_min_bytes
        self._task: asyncio.Future[None] | None = None
        self._last = time.monotonic()
        #: What each partition's files hold (the image offset is set when a save is planned;
        #: a failed write drops the entry): absent, the next save writes a base.
        self._chains: dict[int, Chain] = {}
        #: Keys written to the changelog since each chained partition's image (keys only).
        self._dirty: dict[int, set[str]] = {}
        self.saved = 0
        self.bases = 0
        self.compactions = 0

    def path(self, partition: int) -> Path:
        return snapshot_path(self.directory, self.changelog, partition)

    def note(self, written: Iterable[tuple[str, object, int]]) -> None:
        """The changelog sink wrote these entries (key, value, partition): their keys are in
        the next delta (:attr:`stream.sinks.changelog.ChangelogSink.on_written`)."""
        dirty = self._dirty
        for key, _, partition in written:
            keys = dirty.get(partition)
            if keys is not None:
                keys.add(key)

    def load(self, partition: int, begin: int, end: int) -> Image | None:
        """The partition's image (base and deltas) when it is whole and within the changelog
        ``[begin, end]``. Blocking (file reads): run it in a thread."""
        path = self.path(partition)
        try:
            image = read_image(self.directory, self.changelog, partition)
        except FileNotFoundError:
            return None
        except (OSError, SnapshotError, struct.error) as exc:
            log.warning(
                "local snapshot of partition %d ignored (%s): its changelog is read from the start", partition, exc
            )
            return None
        if image.partition != partition:
            log.warning("local snapshot %s is of partition %d, not %d: ignored", path, image.partition, partition)
            return None
        if not begin <= image.offset <= end:
            log.warning(
                "local snapshot of partition %d covers the changelog to offset %d, which holds [%d, %d) "
                "(data lost or deleted on the broker): ignored, its changelog is read from the start",
                partition,
                image.offset,
                begin,
                end,
            )
            return None
        return image

    def restored(self, partition: int, image: Image | None, tail_keys: Iterable[bytes]) -> None:
        """A restore read ``partition`` from ``image`` (``None``: from the changelog alone) and
        the changelog records of ``tail_keys`` after it: the next save continues the image."""
        if image is None:
            self._chains.pop(partition, None)
            self._dirty.pop(partition, None)
            return
        self._chains[partition] = image.chain
        self._dirty[partition] = {key.decode() for key in tail_keys}

    def _plan(self, store: Mapping[str, Any], ends: Mapping[int, int]) -> list[_Job]:
        """What to write for ``ends``' partitions; the chains move on to ``ends`` at once."""
        jobs: list[_Job] = []
        bases: dict[int, list[tuple[str, Any]]] = {}
        for p, offset in ends.items():
            chain, keys = self._chains.get(p), self._dirty.get(p)
            if chain is not None and keys is not None and offset > chain.offset:
                items = []
                for key in keys:
                    value = store.get(key)
                    items.append((key, value if partition_of(value) == p else None))
                jobs.append(_Job(p, chain.offset, offset, items))
            elif chain is not None and keys is not None and offset == chain.offset and not keys:
                continue  # nothing written since
            else:
                bases[p] = []
            self._chains[p] = Chain(offset, 0) if chain is None or p in bases else chain
            self._chains[p].offset = offset
            self._dirty[p] = set()
        if bases:
            for key, value in store.items():
                part = bases.get(partition_of(value))  # type: ignore[arg-type]  # None is no key
                if part is not None:
                    part.append((key, value))
            jobs.extend(_Job(p, None, ends[p], items) for p, items in bases.items())
        return jobs

    def maybe_save(self, store: Mapping[str, Any], ends: Mapping[int, int], now: float | None = None) -> None:
        """Start saving ``ends``' partitions (partition -> changelog offset their state in
        ``store`` covers) when the interval passed and no save is running. Call it where
        ``store`` is consistent with ``ends`` (under the batch lock)."""
        now = time.monotonic() if now is None else now
        if not ends or now - self._last < self.interval_s or (self._task is not None and not self._task.done()):
            return
        self._last = now
        self._task = asyncio.ensure_future(self._write(self._plan(store, ends)))

    async def save(self, store: Mapping[str, Any], ends: Mapping[int, int]) -> None:
        """Save now (a clean stop), after a save in progress."""
        await self.settle()
        if ends:
            self._last = time.monotonic()
            await self._write(self._plan(store, ends))

    async def settle(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait([task])

    async def _write(self, jobs: list[_Job]) -> None:
        for job in jobs:
            started = time.monotonic()
            chunks, count = [], 0
            for at in range(0, len(job.items), _CHUNK):
                encoded = []
                for key, value in job.items[at : at + _CHUNK]:
                    encoded.append(encode_item(key.encode(), None if value is None else encode_value(value)))
                chunks.append(b"".join(encoded))
                count += len(encoded)
                await asyncio.sleep(0)  # the batch loop and heartbeats go on
            p = job.partition
            try:
                size = await asyncio.to_thread(self._write_file, job, chunks, count)
            except OSError as exc:
                log.warning("local snapshot of partition %d not written: %r", p, exc)
                self._chains.pop(p, None)  # the next save writes a base
                self._dirty.pop(p, None)
                continue
            self.saved += 1
            chain = self._chains.get(p)
            if chain is not None:
                if job.start is None:
                    chain.base_bytes, chain.delta_bytes, chain.deltas = size, 0, 0
                    self.bases += 1
                else:
                    chain.delta_bytes += size
                    chain.deltas += 1
            log.info(
                "local snapshot of partition %d: %s of %d items to changelog offset %d in %.1fs",
                p,
                "base" if job.start is None else "delta",
                count,
                job.offset,
                time.monotonic() - started,
            )
            if chain is not None and self._compacting(chain):
                await self._compact(p, chain)

    def _compacting(self, chain: Chain) -> bool:
        if chain.deltas >= self.max_deltas:
            return True
        return chain.delta_bytes > max(self.compact_ratio * chain.base_bytes, self.compact_min_bytes)

    def _write_file(self, job: _Job, chunks: list[bytes], count: int) -> int:
        p = job.partition
        if job.start is None:
            size = write_base(self.path(p), p, job.offset, chunks, count)
            remove_deltas_before(self.directory, self.changelog, p, job.offset)
            return size
        path = delta_path(self.directory, self.changelog, p, job.start, job.offset)
        return write_delta(path, p, job.start, job.offset, chunks, count)

    async def _compact(self, partition: int, chain: Chain) -> None:
        started = time.monotonic()
        try:
            done = await asyncio.to_thread(compact, self.directory, self.changelog, partition)
        except (OSError, SnapshotError) as exc:
            log.warning(
                "local snapshot of partition %d not compacted (%r): the next save writes a base", partition, exc
            )
            self._chains.pop(partition, None)
            self._dirty.pop(partition, None)
            return
        if done.offset != chain.offset:
            log.warning(
                "local snapshot of partition %d compacted to offset %d, not %d (a delta went missing): "
                "the next save writes a base",
                partition,
                done.offset,
                chain.offset,
            )
            self._chains.pop(partition, None)
            self._dirty.pop(partition, None)
            return
        chain.base_bytes, chain.delta_bytes, chain.deltas = done.base_bytes, 0, 0
        self.compactions += 1
        log.info(
            "local snapshot of partition %d compacted to offset %d (%d bytes) in %.1fs",
            partition,
            done.offset,
            done.base_bytes,
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
    await snapshots.settle()  # a save in progress finishes first: the files are read next
    ranges = await changelog_ranges(bootstrap, topic, partitions, security)
    usable: dict[int, Image] = {}
    for p in partitions:
        image = await asyncio.to_thread(snapshots.load, p, *ranges[p])
        if image is not None:
            usable[p] = image
    # The record just before an image's offset is the newest version of its key there, so
    # the image holds it: otherwise the log is another one (topic recreated, broker reset).
    last = await records_at(
        bootstrap, topic, {p: s.offset - 1 for p, s in usable.items() if s.offset > ranges[p][0]}, security
    )
    seed: dict[bytes, bytes | None] = {}
    starts: dict[int, int] = {}
    for p, image in list(usable.items()):
        record = last.get(p)
        if (
            record is not None
            and record[0] == image.offset - 1
            and record[1] is not None
            and image.values.get(record[1]) != record[2]
        ):
            log.warning(
                "local snapshot of partition %d does not hold the changelog's record at offset %d "
                "(another log under the same name?): ignored",
                p,
                record[0],
            )
            del usable[p]
            continue
        seed.update(image.values)
        starts[p] = image.offset
    if starts:
        log.info(
            "local snapshots of partitions %s: %d items; reading the changelog from %s",
            sorted(starts),
            len(seed),
            starts,
        )
    tail: dict[int, set[bytes]] = {}
    read = await load_changelog(
        bootstrap,
        topic,
        partitions,
        store,
        security,
        ends_read=ends_read,
        start_offsets=starts,
        seed=seed,
        keys_read=tail,
    )
    for p in partitions:
        snapshots.restored(p, usable.get(p), tail.get(p, ()))
    return read


__all__ = ["LocalSnapshots", "Snapshot", "SnapshotError", "partition_of", "read_snapshot", "restore_state"]
