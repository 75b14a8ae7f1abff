"""The owners of the war-room's global views: a Faust agent on ``warroom-partials``.

Phase two of :mod:`stream.core.global_views` in every worker: the worker that owns a partition
of ``warroom-partials`` owns the keys on it. Its agent applies each partial (or ``reset``)
to the ``warroom-views`` table (key -> the key's partials by source partition; memory
store, changelog ``<app id>-warroom-views-changelog``, as many partitions as the topic, so
it moves with the partition) and keeps the changed global items; a timer publishes them
on ``warroom-updates`` every ``flush_s`` (coalesced: one record per changed key, keyed like
the worker's other war-room items, so the gateway's last-wins is right). After a
rebalance the owner re-publishes every key it now holds (an item that was changed but not
yet published by the previous owner is not lost).

A record that is not JSON or not a partial is dead-lettered to ``order-events-dlq`` with
its bytes (never dropped); anything else that fails stops the worker (crash-only, like
the pipeline).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from stream.core.global_views import PartialError, ViewsOwner, ViewsTopics
from stream.sinks.outbox import Outbox, OutRecord
from stream.stages.agent_records import agent_table, install_json_agent, raw_topic
from stream.topics import WARROOM_VIEWS_TABLE

log = logging.getLogger(__name__)

VIEWS_AGENT = "orderradar.warroom-views"
#: Wall-clock period of the global items' publication.
FLUSH_S = 0.5


def install_views_owner(
    app: Any,
    topics: ViewsTopics,
    warroom_topic: str,
    producer: Outbox,
    on_fatal: Callable[[BaseException], None],
    flush_s: float = FLUSH_S,
) -> ViewsOwner:
    """Register the agent, its table and its timer on a Faust app (topics must exist)."""
    partials_topic, partitions, dlq_topic = topics.partials, topics.partitions, topics.dlq
    source = raw_topic(app, partials_topic, partitions=partitions)
    table = agent_table(app, WARROOM_VIEWS_TABLE, topics.changelog, partitions)
    owner = ViewsOwner(table)
    #: Global items to publish: key -> (partials partition, item).
    pending: dict[str, tuple[int, dict[str, Any]]] = {}
    lock = asyncio.Lock()

    def assigned() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == partials_topic}

    async def handle(message: Any, value: Any) -> None:
        async with lock:
            for key, item in owner.apply(value, message.partition).items():
                pending[key] = (message.partition, item)

    install_json_agent(
        app,
        source,
        VIEWS_AGENT,
        handle,
        refused=(PartialError,),
        problem=str,
        producer=producer,
        dlq_topic=dlq_topic,
        on_fatal=on_fatal,
    )

    @table.on_recover  # type: ignore[untyped-decorator]  # Faust ships no types
    async def on_recover() -> None:
        mine = assigned()
        async with lock:
            for key in [k for k, (p, _) in pending.items() if p not in mine]:
                del pending[key]  # another worker owns the key now
            for key, partition, item in owner.items(mine):
                pending[key] = (partition, item)

    async def flush() -> None:
        if not pending:
            return
        try:
            async with lock:
                mine = assigned()
                out = [
                    OutRecord(warroom_topic, orjson.dumps(item), key.encode())
                    for key, (p, item) in sorted(pending.items())
                    if p in mine
                ]
                pending.clear()
            await producer.send(out)
        except Exception as exc:
            log.critical("publishing the war-room views failed; stopping", exc_info=exc)
            on_fatal(exc)
            raise

    app.timer(flush_s)(flush)
    return owner


__all__ = ["VIEWS_AGENT", "install_views_owner"]
