"""Every worker's copy of the declared disruption zones, read from ``orderradar-control``.

Zones must be known to every worker (each evaluates them against its own partitions' SKUs),
so this is a broadcast, not a consumer group: each worker reads the one-partition control
topic from the beginning with its own group-less consumer, like the web instances do to
list zones. Records that are not zone commands (alert commands, audit records) are skipped
here: the alerting agent owns them. A zone command that fails validation was already
refused by the web tier; one that still does not parse is logged and skipped (its bytes
stay in the topic).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from geo.disruption_areas import DisruptionArea
from stream.core.control_commands import disruption_change

log = logging.getLogger(__name__)


class ZoneFeed:
    def __init__(
        self, bootstrap: str, topic: str, *, retry_s: float = 2.0, security: Mapping[str, Any] | None = None
    ) -> None:
        self.bootstrap = bootstrap
        #: SASL/TLS options (``config.client_auth.kafka_auth``).
        self.security = dict(security or {})
        self.topic = topic
        self.retry_s = retry_s
        self.zones: dict[str, DisruptionArea] = {}
        #: Bumped on every change, so evaluators can tell a new zone set cheaply.
        self.version = 0

    def apply(self, value: bytes, now: datetime) -> bool:
        """One control record; whether the zone set changed."""
        try:
            record = orjson.loads(value)
            change = disruption_change(record, now) if isinstance(record, dict) else None
            if change is None:
                return False
            zone_id, item = change
            area = DisruptionArea.from_item(item) if item is not None else None
        except (orjson.JSONDecodeError, ValidationError, KeyError, TypeError, ValueError) as exc:
            log.warning("control record is not a usable zone command: %s", exc)
            return False
        if area is None:
            changed = self.zones.pop(zone_id, None) is not None
        else:
            self.zones[zone_id] = area
            changed = True
        if changed:
            self.version += 1
        return changed

    def active(self, now: datetime) -> list[DisruptionArea]:
        return [z for _, z in sorted(self.zones.items()) if z.is_active(now)]

    async def run(self) -> None:
        """Follow the topic until cancelled (reconnecting after broker errors)."""
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **self.security,
            )
            try:
                await consumer.start()
                tp = TopicPartition(self.topic, 0)
                consumer.assign([tp])
                await consumer.seek_to_beginning(tp)
                while True:
                    batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
                    now = datetime.now(UTC)
                    for records in batch.values():
                        for record in records:
                            if record.value is not None:
                                self.apply(record.value, now)
            except KafkaError as exc:
                log.warning("zone feed: %s; retrying in %.0fs", exc, self.retry_s)
            finally:
                await consumer.stop()
            # Re-reading from the beginning re-applies the same commands: idempotent.
            await asyncio.sleep(self.retry_s)
