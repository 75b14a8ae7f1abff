"""The files of a partition's local snapshot (issue #20): a base and delta segments after it.

- The **base**, ``<changelog>-<partition>.snap``: every item of the partition (raw changelog
  key -> raw changelog value) and the changelog offset the image covers.
- A **delta**, ``<changelog>-<partition>.<from>-<to>.delta``: the items whose key was written
  to the changelog in ``[from, to)``, each with its value at ``to`` or a tombstone; applied to
  the image at ``from`` it gives the image at ``to``.

Each file is written to a temporary file, fsync'ed and renamed (a crash leaves the old file
or the new, whole) and ends with an item count and a BLAKE2b digest, so a torn or corrupt
file is refused as a whole. Images are named by changelog offsets, not by who wrote them:
every image is a prefix of the changelog, so any delta that starts where an image ends
continues it. :func:`follow` follows the deltas from a base; :func:`compact` folds them
into a new base.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("stream.sinks.local_snapshot")

BASE_MAGIC = b"ORSNAP1\n"
DELTA_MAGIC = b"ORDELT1\n"
_BASE_HEAD = struct.Struct("<iq")  # partition, changelog offset covered
_DELTA_HEAD = struct.Struct("<iqq")  # partition, offset of the image it continues, offset covered
ITEM = struct.Struct("<II")  # key length, value length
_END = 0xFFFFFFFF  # key length of the trailer: item count and digest follow
TOMBSTONE = 0xFFFFFFFF  # value length of a deleted key (deltas only)
_COUNT = struct.Struct("<q")
_DIGEST = 16
#: Unchanged base bytes copied at once by a compaction.
_RUN = 4 << 20

Buffer = bytes | mmap.mmap


class SnapshotError(ValueError):
    """A snapshot file is not whole or not one of ours."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A base file's content."""

    partition: int
    #: The changelog offset the snapshot covers: reading resumes there.
    offset: int
    #: Raw changelog values by raw key.
    values: dict[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Delta:
    """A delta file's content."""

    partition: int
    start: int
    offset: int
    #: Raw changelog values by raw key (``None``: the key was deleted).
    values: dict[bytes, bytes | None]


@dataclass(slots=True)
class Chain:
    """What a partition's files on disk hold: the image's offset and the files' sizes."""

    offset: int
    base_bytes: int
    delta_bytes: int = 0
    deltas: int = 0


@dataclass(frozen=True, slots=True)
class Image:
    """A partition's base with its deltas applied."""

    partition: int
    offset: int
    values: dict[bytes, bytes]
    chain: Chain


def base_path(directory: Path, changelog: str, partition: int) -> Path:
    return directory / f"{changelog}-{partition}.snap"


def delta_path(directory: Path, changelog: str, partition: int, start: int, offset: int) -> Path:
    return directory / f"{changelog}-{partition}.{start:020d}-{offset:020d}.delta"


def delta_files(directory: Path, changelog: str, partition: int) -> list[tuple[int, int, Path]]:
    """The partition's delta files as (from, to, path)."""
    prefix, suffix = f"{changelog}-{partition}.", ".delta"
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if name.startswith(prefix) and name.endswith(suffix):
            start, _, offset = name[len(prefix) : -len(suffix)].partition("-")
            if start.isdigit() and offset.isdigit():
                out.append((int(start), int(offset), directory / name))
    return out


def encode_item(raw_key: bytes, raw: bytes | None) -> bytes:
    if raw is None:
        return ITEM.pack(len(raw_key), TOMBSTONE) + raw_key
    return ITEM.pack(len(raw_key), len(raw)) + raw_key + raw


def _write_file(path: Path, head: bytes, chunks: Iterable[bytes], count: Callable[[], int]) -> int:
    """Write atomically: a temporary file, fsync, rename, fsync of the directory; bytes written.
    ``count`` is asked after the chunks (a stream of them may count as it goes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    digest = hashlib.blake2b(digest_size=_DIGEST)
    size = len(head) + ITEM.size + _COUNT.size + _DIGEST
    try:
        with tmp.open("wb") as out:
            digest.update(head)
            out.write(head)
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            trailer = ITEM.pack(_END, 0) + _COUNT.pack(count())
            digest.update(trailer)
            out.write(trailer)
            out.write(digest.digest())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return size


def write_base(path: Path, partition: int, offset: int, chunks: Iterable[bytes], count: int) -> int:
    """Write a base of ``count`` encoded items (:func:`encode_item`, no tombstones)."""
    return _write_file(path, BASE_MAGIC + _BASE_HEAD.pack(partition, offset), chunks, lambda: count)


def write_delta(path: Path, partition: int, start: int, offset: int, chunks: Iterable[bytes], count: int) -> int:
    head = DELTA_MAGIC + _DELTA_HEAD.pack(partition, start, offset)
    return _write_file(path, head, chunks, lambda: count)


def _checked(data: Buffer, path: Path, magic: bytes, head: struct.Struct) -> tuple[int, ...]:
    """The header fields of a whole file of ours (magic, size and digest checked)."""
    if data[: len(magic)] != magic or len(data) < len(magic) + head.size + ITEM.size + _COUNT.size + _DIGEST:
        raise SnapshotError(f"{path}: not a snapshot file (or truncated)")
    with memoryview(data) as view:
        whole = hashlib.blake2b(view[:-_DIGEST], digest_size=_DIGEST).digest() == data[-_DIGEST:]
    if not whole:
        raise SnapshotError(f"{path}: digest mismatch (corrupt or truncated)")
    return head.unpack_from(data, len(magic))


def _items(data: Buffer, at: int, path: Path) -> Iterator[tuple[int, int, bytes, int]]:
    """The items of a checked file from ``at``: (start, end, key, value length)."""
    body = len(data) - _DIGEST
    count = 0
    try:
        while True:
            klen, vlen = ITEM.unpack_from(data, at)
            if klen == _END:
                (said,) = _COUNT.unpack_from(data, at + ITEM.size)
                if said != count or at + ITEM.size + _COUNT.size != body:
                    raise SnapshotError(f"{path}: {count} items, the trailer says {said}")
                return
            end = at + ITEM.size + klen + (0 if vlen == TOMBSTONE else vlen)
            if end > body:
                raise SnapshotError(f"{path}: items run past the end")
            yield at, end, data[at + ITEM.size : at + ITEM.size + klen], vlen
            count += 1
            at = end
    except struct.error as exc:
        raise SnapshotError(f"{path}: items run past the end") from exc


def _parse(path: Path, magic: bytes, head: struct.Struct) -> tuple[tuple[int, ...], dict[bytes, bytes | None]]:
    data = path.read_bytes()
    fields = _checked(data, path, magic, head)
    values: dict[bytes, bytes | None] = {}
    for _, end, key, vlen in _items(data, len(magic) + head.size, path):
        values[key] = None if vlen == TOMBSTONE else data[end - vlen : end]
    return fields, values


def read_snapshot(path: Path) -> Snapshot:
    """The base in ``path``; :class:`SnapshotError` when it is not whole."""
    (partition, offset), values = _parse(path, BASE_MAGIC, _BASE_HEAD)
    base: dict[bytes, bytes] = {}
    for key, raw in values.items():
        if raw is None:
            raise SnapshotError(f"{path}: a base holds no tombstones")
        base[key] = raw
    return Snapshot(partition, offset, base)


def read_delta(path: Path) -> Delta:
    """The delta in ``path``; :class:`SnapshotError` when it is not whole."""
    (partition, start, offset), values = _parse(path, DELTA_MAGIC, _DELTA_HEAD)
    return Delta(partition, start, offset, values)


def follow(directory: Path, changelog: str, partition: int, chain: Chain) -> dict[bytes, bytes | None]:
    """The changes of the deltas that continue the image ``chain`` describes, merged in order;
    ``chain`` is moved on past them. A delta that is torn, corrupt or not what its name says
    is skipped with a warning (another one from the same offset is tried); the chain ends
    where none continues it: the changelog after it fills in."""
    by_start: dict[int, list[tuple[int, Path]]] = {}
    for start, offset, path in delta_files(directory, changelog, partition):
        if offset > start:
            by_start.setdefault(start, []).append((offset, path))
    changes: dict[bytes, bytes | None] = {}
    while chain.offset in by_start:
        for offset, path in sorted(by_start.pop(chain.offset), reverse=True):  # the longest step first
            try:
                delta = read_delta(path)
                size = path.stat().st_size
            except (OSError, SnapshotError) as exc:
                log.warning("local snapshot delta %s ignored (%s): the changelog fills in after it", path.name, exc)
                continue
            if (delta.partition, delta.start, delta.offset) != (partition, chain.offset, offset):
                log.warning("local snapshot delta %s does not say what its name says: ignored", path.name)
                continue
            changes.update(delta.values)
            chain.offset = offset
            chain.delta_bytes += size
            chain.deltas += 1
            break
        else:
            break
    return changes


def read_image(directory: Path, changelog: str, partition: int) -> Image:
    """The partition's base with the deltas that continue it applied (``FileNotFoundError``
    without a base, :class:`SnapshotError` when the base is not whole)."""
    path = base_path(directory, changelog, partition)
    base = read_snapshot(path)
    chain = Chain(base.offset, path.stat().st_size)
    values = base.values
    for key, raw in follow(directory, changelog, base.partition, chain).items():
        if raw is None:
            values.pop(key, None)
        else:
            values[key] = raw
    return Image(base.partition, chain.offset, values, chain)


def remove_deltas_before(directory: Path, changelog: str, partition: int, offset: int) -> None:
    """Remove the partition's deltas that start before ``offset`` (a base at ``offset`` replaced
    them) and the temporary files of writers that are gone (killed mid-write)."""
    for start, _, path in delta_files(directory, changelog, partition):
        if start < offset:
            path.unlink(missing_ok=True)
    prefix = f"{changelog}-{partition}."
    for name in os.listdir(directory):
        pid = name[len(prefix) : -len(".tmp")].rpartition(".")[2]
        if name.startswith(prefix) and name.endswith(".tmp") and pid.isdigit() and not _alive(int(pid)):
            (directory / name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def compact(directory: Path, changelog: str, partition: int) -> Chain:
    """Fold the partition's deltas into a new base; what is on disk afterwards. The base is
    streamed from a memory map (runs of unchanged items copied as they are, nothing decoded
    or held but the deltas' changes). Blocking: run it in a thread."""
    path = base_path(directory, changelog, partition)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        owner, offset = _checked(mm, path, BASE_MAGIC, _BASE_HEAD)
        if owner != partition:
            raise SnapshotError(f"{path}: of partition {owner}, not {partition}")
        chain = Chain(offset, len(mm))
        changes = follow(directory, changelog, partition, chain)
        if not chain.deltas:
            return chain
        count = [0]

        def merged() -> Iterator[bytes]:
            run = -1  # start of the run of unchanged items being copied
            at = len(BASE_MAGIC) + _BASE_HEAD.size
            for start, end, key, _ in _items(mm, at, path):
                if key in changes:
                    if run >= 0:
                        yield mm[run:start]
                    run = -1
                    raw = changes.pop(key)
                    if raw is not None:
                        count[0] += 1
                        yield encode_item(key, raw)
                else:
                    count[0] += 1
                    if run < 0:
                        run = start
                    elif end - run > _RUN:
                        yield mm[run:start]
                        run = start
                at = end
            if run >= 0:
                yield mm[run:at]
            for key, raw in changes.items():
                if raw is not None:
                    count[0] += 1
                    yield encode_item(key, raw)

        head = BASE_MAGIC + _BASE_HEAD.pack(partition, chain.offset)
        size = _write_file(path, head, merged(), lambda: count[0])
    remove_deltas_before(directory, changelog, partition, chain.offset)
    return Chain(chain.offset, size)


__all__ = [
    "Chain",
    "Delta",
    "Image",
    "Snapshot",
    "SnapshotError",
    "base_path",
    "compact",
    "delta_files",
    "delta_path",
    "encode_item",
    "follow",
    "read_delta",
    "read_image",
    "read_snapshot",
    "remove_deltas_before",
    "write_base",
    "write_delta",
]
