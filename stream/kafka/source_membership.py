"""The source consumer's group membership: its lease renewed by heartbeats, and the wait
that confirms it before the pipeline writes (:class:`stream.kafka.batch_source.BatchSource`).

The lease itself is pure (:class:`stream.kafka.membership_lease.MembershipLease`); this module
ties it to aiokafka's consumer, which has no heartbeat callback and no public rebalance
flag: both are read from its group coordinator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from stream.kafka.membership_lease import MembershipLease


class MembershipLost(RuntimeError):
    """Neither a heartbeat nor a rebalance confirmed or ended the membership in time."""


def renew_on_heartbeats(consumer: Any, lease: MembershipLease) -> None:
    """Renew ``lease`` with each successful heartbeat of ``consumer`` (an AIOKafkaConsumer)."""
    coordinator: Any = getattr(consumer, "_coordinator", None)
    heartbeat = getattr(coordinator, "_do_heartbeat", None)
    if heartbeat is None:
        raise RuntimeError("aiokafka's group coordinator has no _do_heartbeat: cannot lease the membership")

    async def _do_heartbeat() -> bool:
        sent_at = time.monotonic()
        ok = await heartbeat()
        # aiokafka answers True to REBALANCE_IN_PROGRESS too (it keeps heartbeating while
        # it rejoins), but then the member stays only until the join deadline.
        if ok and not coordinator._rejoin_needed_fut.done():
            lease.renewed(sent_at)
        return bool(ok)

    # aiokafka has no heartbeat callback; its heartbeat loop calls this attribute.
    coordinator._do_heartbeat = _do_heartbeat


def rejoining(consumer: Any) -> bool:
    """Whether ``consumer``'s group coordinator is about to rejoin (a rebalance started)."""
    coordinator = getattr(consumer, "_coordinator", None)
    return bool(coordinator is not None and coordinator._rejoin_needed_fut.done())


async def confirm(
    lease: MembershipLease, session_s: float, rebalancing: Callable[[], bool], poll_s: float = 0.05
) -> bool:
    """Whether this worker may write state for the partitions it holds now.

    ``True`` at once while the lease is valid. Otherwise waits for a heartbeat to renew it
    (``True``) or for a rebalance to start (``False``: treat every partition as revoked,
    the successor replays them). Raises :class:`MembershipLost` after 3 sessions.
    """
    if not lease.ever_renewed:
        return False
    deadline = time.monotonic() + 3 * session_s
    while not lease.valid(time.monotonic()):
        if rebalancing():
            return False
        if time.monotonic() >= deadline:
            raise MembershipLost(f"membership neither confirmed nor ended within {3 * session_s:.0f}s")
        await asyncio.sleep(poll_s)  # a heartbeat renews it from aiokafka's heartbeat task
    return True


__all__ = ["MembershipLost", "confirm", "rejoining", "renew_on_heartbeats"]
