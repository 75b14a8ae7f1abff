"""The local snapshot's files (issue #20): a base, delta segments after it, the chain a
restore follows and the compaction that folds it into a new base."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from stream.sinks.snapshot_files import (
    SnapshotError,
    base_path,
    compact,
    delta_files,
    delta_path,
    encode_item,
    read_delta,
    read_image,
    read_snapshot,
    write_base,
    write_delta,
)

LOG = "orders-changelog"


def _base(directory: Path, offset: int, values: dict[bytes, bytes], partition: int = 0) -> None:
    chunks = [encode_item(k, v) for k, v in values.items()]
    write_base(base_path(directory, LOG, partition), partition, offset, chunks, len(chunks))


def _delta(directory: Path, start: int, offset: int, values: dict[bytes, bytes | None], partition: int = 0) -> Path:
    chunks = [encode_item(k, v) for k, v in values.items()]
    path = delta_path(directory, LOG, partition, start, offset)
    write_delta(path, partition, start, offset, chunks, len(chunks))
    return path


def test_a_base_and_a_delta_read_back_byte_for_byte(tmp_path: Path) -> None:
    _base(tmp_path, 7, {b"a": b"\x01" * 300, b"": b"", b"c": b"v"})
    snapshot = read_snapshot(base_path(tmp_path, LOG, 0))
    assert (snapshot.partition, snapshot.offset) == (0, 7)
    assert snapshot.values == {b"a": b"\x01" * 300, b"": b"", b"c": b"v"}
    delta = read_delta(_delta(tmp_path, 7, 9, {b"a": None, b"d": b"new"}))
    assert (delta.partition, delta.start, delta.offset, delta.values) == (0, 7, 9, {b"a": None, b"d": b"new"})


def test_the_image_is_the_base_and_its_deltas_in_order(tmp_path: Path) -> None:
    _base(tmp_path, 10, {b"a": b"a1", b"b": b"b1"})
    _delta(tmp_path, 10, 12, {b"a": b"a2", b"c": b"c1"})
    _delta(tmp_path, 12, 15, {b"a": None, b"c": b"c2"})
    _delta(tmp_path, 3, 10, {b"b": b"stale"})  # before the base: not part of its chain
    _delta(tmp_path, 16, 20, {b"b": b"gap"})  # no delta ends at 16: not reached
    _delta(tmp_path, 12, 15, {b"b": b"other partition"}, partition=1)
    image = read_image(tmp_path, LOG, 0)
    assert image.offset == 15 and image.values == {b"b": b"b1", b"c": b"c2"}
    assert (image.chain.offset, image.chain.deltas) == (15, 2)


def test_a_torn_delta_ends_the_chain_before_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _base(tmp_path, 10, {b"a": b"a1"})
    _delta(tmp_path, 10, 12, {b"a": b"a2"})
    torn = _delta(tmp_path, 12, 15, {b"a": b"a3", b"b": b"b1"})
    _delta(tmp_path, 15, 18, {b"a": b"a4"})
    torn.write_bytes(torn.read_bytes()[:-5])  # a crash mid-write
    with pytest.raises(SnapshotError, match="digest"):
        read_delta(torn)
    with caplog.at_level(logging.WARNING, logger="stream.sinks.local_snapshot"):
        image = read_image(tmp_path, LOG, 0)
    assert image.offset == 12 and image.values == {b"a": b"a2"}
    assert any(torn.name in r.getMessage() for r in caplog.records)


def test_a_good_delta_from_the_same_offset_as_a_torn_one_is_used(tmp_path: Path) -> None:
    """A worker restored past a torn delta and saved again from the same offset."""
    _base(tmp_path, 10, {b"a": b"a1"})
    torn = _delta(tmp_path, 10, 15, {b"a": b"torn"})
    torn.write_bytes(torn.read_bytes()[:20])
    _delta(tmp_path, 10, 13, {b"a": b"a2"})
    image = read_image(tmp_path, LOG, 0)
    assert (image.offset, image.values) == (13, {b"a": b"a2"})


def test_a_file_that_is_not_whole_is_refused(tmp_path: Path) -> None:
    _base(tmp_path, 1, {b"a": b"a1"})
    path = base_path(tmp_path, LOG, 0)
    whole = path.read_bytes()
    for broken in (whole[:-1], whole[:10], b"", b"x" + whole[1:]):
        path.write_bytes(broken)
        with pytest.raises(SnapshotError):
            read_snapshot(path)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path, LOG, 5)


def test_compaction_folds_the_deltas_into_a_new_base(tmp_path: Path) -> None:
    values = {f"k{i:05d}".encode(): bytes([i % 251]) * (i % 40) for i in range(3_000)}
    _base(tmp_path, 100, values)
    _delta(tmp_path, 100, 130, {b"k00000": None, b"k01500": b"changed", b"new": b"n"})
    _delta(tmp_path, 130, 170, {b"k02999": None, b"new": None, b"k00001": b"again"})
    expected = read_image(tmp_path, LOG, 0).values
    chain = compact(tmp_path, LOG, 0)
    assert chain.offset == 170 and chain.deltas == 0
    assert chain.base_bytes == base_path(tmp_path, LOG, 0).stat().st_size
    assert delta_files(tmp_path, LOG, 0) == []
    snapshot = read_snapshot(base_path(tmp_path, LOG, 0))
    assert (snapshot.offset, snapshot.values) == (170, expected)
    assert len(expected) == 3_000 - 2 and expected[b"k01500"] == b"changed" and expected[b"k00001"] == b"again"


def test_compaction_stops_at_a_torn_delta(tmp_path: Path) -> None:
    _base(tmp_path, 1, {b"a": b"a1"})
    _delta(tmp_path, 1, 2, {b"b": b"b1"})
    torn = _delta(tmp_path, 2, 3, {b"c": b"c1"})
    torn.write_bytes(torn.read_bytes()[:-1])
    chain = compact(tmp_path, LOG, 0)
    assert chain.offset == 2
    assert read_snapshot(base_path(tmp_path, LOG, 0)).values == {b"a": b"a1", b"b": b"b1"}
    assert [start for start, _, _ in delta_files(tmp_path, LOG, 0)] == [2]  # the torn one stays until replaced


def test_a_new_base_removes_what_it_replaced_and_files_of_writers_killed_mid_write(tmp_path: Path) -> None:
    _base(tmp_path, 1, {b"a": b"a1"})
    _delta(tmp_path, 1, 2, {b"b": b"b1"})
    dead = tmp_path / f"{LOG}-0.{2:020d}-{3:020d}.delta.999999999.tmp"  # no such process
    live = tmp_path / f"{LOG}-0.snap.{os.getppid()}.tmp"  # a writer still running
    for path in (dead, live):
        path.write_bytes(b"half")
    compact(tmp_path, LOG, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{LOG}-0.snap", live.name])
