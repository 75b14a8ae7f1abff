"""The changelog sink: the worker's table (orders and stage entries) to its changelog topic,
and the table values' encoding (the changelog format).

Values are msgpack arrays tagged by kind and version (``o2``: order, ``s2``: stage entry); a
value starting with ``{`` is version 1 (JSON), still read after an upgrade. The partition of
an entry is its source partition; a tombstone (``None``) forgets the key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
import orjson

from stream.core.order_state import OrderState
from stream.core.state_codec import OrderRecord, StateFormatError, order_from_dict, order_from_record, order_record
from stream.sinks.outbox import Outbox, OutRecord
from stream.sinks.sink import Fence
from stream.stage_api import StageValue

#: A table entry: key, new value (``None``: a tombstone) and partition.
Entry = tuple[str, OrderState | StageValue | None, int]


class ChangelogSink:
    """Table entries to the changelog topic, within the batch's fence."""

    def __init__(self, outbox: Outbox, topic: str) -> None:
        self.outbox = outbox
        self.topic = topic
        #: Told the entries written once the broker took them (local snapshots keep their
        #: keys for the next delta, :meth:`stream.sinks.local_snapshot.LocalSnapshots.note`).
        self.on_written: Callable[[Sequence[Entry]], None] | None = None

    async def write(self, items: Sequence[Entry], fence: Fence) -> None:
        topic = self.topic
        kept = [item for item in items if not fence.dropped(item[2])]
        records = [
            OutRecord(topic, None if value is None else encode_value(value), key.encode(), partition)
            for key, value, partition in kept
        ]
        # Exact end offsets: recovery reads the changelog up to them (see Outbox.send).
        await self.outbox.send(records, exact_end_offsets=True)
        if self.on_written is not None:
            self.on_written(kept)


class StageRecord(msgspec.Struct, array_like=True, tag="s2"):
    stage: str
    key: str
    partition: int
    #: JSON, as stages were promised (see :meth:`BatchContext.stage_put`).
    data: bytes


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(OrderRecord | StageRecord)


def encode_value(value: OrderState | StageValue) -> bytes:
    if isinstance(value, StageValue):
        return _ENCODER.encode(StageRecord(value.stage, value.key, value.partition, orjson.dumps(value.data)))
    return _ENCODER.encode(order_record(value))


def decode_value(raw: bytes) -> OrderState | StageValue:
    if raw[:1] == b"{":
        return _decode_v1(raw)
    try:
        record = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise StateFormatError(f"table value is not a known state record: {exc} ({raw[:80]!r})") from exc
    if isinstance(record, StageRecord):
        try:
            return StageValue(record.stage, record.key, record.partition, orjson.loads(record.data))
        except orjson.JSONDecodeError as exc:
            raise StateFormatError(f"bad stage value {record.stage}/{record.key}: {exc}") from exc
    return order_from_record(record)


def _decode_v1(raw: bytes) -> OrderState | StageValue:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StateFormatError(f"table value is not JSON: {raw[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise StateFormatError(f"table value is not an object: {raw[:80]!r}")
    if obj.get("kind") == "stage":
        return StageValue(obj["stage"], obj["key"], int(obj["partition"]), obj["data"])
    return order_from_dict(obj)


__all__ = ["ChangelogSink", "Entry", "StageRecord", "decode_value", "encode_value"]
