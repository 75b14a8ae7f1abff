"""WebSocket cuts: 100 /ws/track clients, 10 % of the connections aborted (TCP transport
abort, no close frame) while updates flow; they reconnect with their last seq and every
client ends with a gap-free seq chain per order."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from config.settings import Settings
from gateway.harness import (
    RunningGateway,
    SkuPlan,
    TrackState,
    UpdateFeeder,
    build_staff,
    cached_seq,
    issue_link,
    known_orders,
    order_snapshot,
    receive,
    running_gateways,
    subscribe_track,
)
from orderradar.devstack.waiting import async_wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ORDERS = 10
CLIENTS = 100
CUT_EVERY = 10  # every 10th client is cut: 10 %
CUT_AT_SEQ = 10
FINAL_SEQ = 30
JOURNEY = ["paid", "picked", "packed", "outbound_scan", "linehaul", "hub_arrival"]


def snapshot(order_id: str, seq: int) -> dict[str, Any]:
    return dict(order_snapshot(order_id, seq, {"a": SkuPlan(JOURNEY[: 1 + seq % len(JOURNEY)])}, extra=seq))


@pytest.fixture
def server(stack_settings: Settings) -> Iterator[RunningGateway]:
    # The resume buffer covers the whole run, so a resume is always answered with deltas.
    with running_gateways(stack_settings, build_staff(), deltas_per_order=64) as (gateway,):
        yield gateway


def test_10_percent_of_100_clients_cut_and_resumed_see_gap_free_seqs(server: RunningGateway) -> None:
    order_ids = [f"o-cut-{n}" for n in range(ORDERS)]
    known_orders([server], *order_ids)
    tokens = {o: issue_link(server.base_url, o)["token"] for o in order_ids}
    url = server.ws_url("/ws/track")

    async def scenario() -> tuple[list[TrackState], int]:
        states = [TrackState() for _ in range(CLIENTS)]
        to_cut = {c for c in range(CLIENTS) if c % CUT_EVERY == 0}
        cut_done = asyncio.Event()
        cuts = 0

        async def client(c: int) -> None:
            nonlocal cuts
            order_id, state = order_ids[c % ORDERS], states[c]
            ws = await subscribe_track(url, tokens[order_id])
            try:
                while state.seq is None or state.seq < FINAL_SEQ:
                    state.apply(await receive(ws, timeout=30))
                    if c in to_cut and state.seq is not None and state.seq >= CUT_AT_SEQ:
                        to_cut.discard(c)
                        ws.transport.abort()  # abrupt: no close handshake
                        await asyncio.wait_for(ws.wait_closed(), 10)
                        cuts += 1
                        if cuts == CLIENTS // CUT_EVERY:
                            cut_done.set()
                        ws = await subscribe_track(url, tokens[order_id], last_seq=state.seq)
            finally:
                await ws.close()

        async with UpdateFeeder(server.settings) as feeder:
            for order_id in order_ids:
                await feeder.publish(snapshot(order_id, 1))
            await async_wait_until(
                lambda: all(cached_seq(server, o) == 1 for o in order_ids), 30, what="first snapshots cached"
            )
            tasks = [asyncio.create_task(client(c)) for c in range(CLIENTS)]
            for seq in range(2, FINAL_SEQ + 1):
                if seq == CUT_AT_SEQ + 1:
                    # The rest is published while the cut clients reconnect.
                    await asyncio.wait_for(cut_done.wait(), 60)
                for order_id in order_ids:
                    await feeder.publish(snapshot(order_id, seq))
            async with asyncio.timeout(120):
                await asyncio.gather(*tasks)
        return states, cuts

    states, cuts = asyncio.run(scenario())
    assert cuts == CLIENTS // CUT_EVERY
    for c, state in enumerate(states):
        chain = [step for step in state.steps if step != (None, 0)]
        assert chain and chain[0][0] is None, (c, chain)
        assert all(later[0] == earlier[1] for earlier, later in itertools.pairwise(chain)), (c, chain)
        assert state.seq == FINAL_SEQ, (c, state.seq)
    resumed = [states[c] for c in range(0, CLIENTS, CUT_EVERY)]
    # A resumed client got the missed updates as deltas, not a second snapshot.
    assert all(sum(1 for s in r.steps if s[0] is None and s != (None, 0)) == 1 for r in resumed)
    print(f"{CLIENTS} clients, {cuts} cut and resumed; all reached seq {FINAL_SEQ} gap-free")
