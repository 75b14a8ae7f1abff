"""/ws/track with real servers, broker and websockets clients: projection, resume, security."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from config.settings import Settings
from dashboard.gateway.order_snapshot import OrderSnapshot
from dashboard.gateway.projection import customer_view
from dashboard.gateway.staff import StaffDirectory
from gateway.harness import (
    RunningGateway,
    SkuPlan,
    TrackState,
    UpdateFeeder,
    cached_seq,
    follow_until,
    issue_link,
    known_orders,
    order_snapshot,
    receive,
    running_gateways,
    stuck_client,
    subscribe_track,
)
from orderradar.devstack.waiting import wait_until

pytestmark = pytest.mark.integration

JOURNEY = [
    "paid",
    "picked",
    "packed",
    "outbound_scan",
    "linehaul",
    "hub_arrival",
    "linehaul",
    "hub_arrival",
    "out_for_delivery",
    "delivery_failed",
    "out_for_delivery",
    "delivered",
]


def journey_snapshot(order_id: str, seq: int) -> dict[str, Any]:
    """Seq n: SKU a has taken n steps of the journey; SKU b moves every third seq."""
    a = JOURNEY[: min(seq, len(JOURNEY))]
    b = JOURNEY[: max(1, min(seq // 3, len(JOURNEY)))]
    return order_snapshot(order_id, seq, {"a": SkuPlan(a), "b": SkuPlan(b)}, extra=seq)


def expected_view(order_id: str, seq: int) -> dict[str, Any]:
    return customer_view(OrderSnapshot.model_validate(journey_snapshot(order_id, seq)))


def strip(view: dict[str, Any] | None) -> dict[str, Any]:
    assert view is not None
    return {k: v for k, v in view.items() if k != "updated_at"}


@pytest.fixture
def pair(stack_settings: Settings, staff: StaffDirectory) -> Iterator[list[RunningGateway]]:
    settings = stack_settings
    with running_gateways(settings, staff, count=2, deltas_per_order=8) as servers:
        yield servers


def test_a_customer_gets_a_private_snapshot_then_deltas(pair: list[RunningGateway]) -> None:
    server = pair[0]
    known_orders([server], "o-1")
    link = issue_link(server.base_url, "o-1")
    assert link["url"].endswith(f"/t/{link['token']}")
    out_for_delivery = JOURNEY.index("out_for_delivery") + 1

    async def scenario() -> tuple[list[str], dict[str, Any]]:
        raw: list[str] = []
        state = TrackState()

        async def follow(ws: Any, seq: int) -> None:
            async with asyncio.timeout(20):
                while state.seq != seq:
                    message = await ws.recv()
                    raw.append(message)
                    state.apply(orjson.loads(message))

        async with UpdateFeeder(server.settings) as feeder:
            await feeder.publish(journey_snapshot("o-1", 1))
            await asyncio.to_thread(wait_until, lambda: cached_seq(server, "o-1") == 1, 20)
            ws = await subscribe_track(server.ws_url("/ws/track"), link["token"])
            async with ws:
                assert await receive(ws) == {"type": "subscribed", "seq": 1, "order_id": "o-1"}
                for seq in range(2, out_for_delivery + 1):
                    await feeder.publish(journey_snapshot("o-1", seq))
                await follow(ws, out_for_delivery)
                last_mile = state.view
                for seq in range(out_for_delivery + 1, 13):
                    await feeder.publish(journey_snapshot("o-1", seq))
                await follow(ws, 12)
        assert state.kinds[0] == "snapshot" and "delta" in state.kinds
        assert strip(state.view) == strip(expected_view("o-1", 12))
        assert last_mile is not None
        return raw, last_mile

    messages, last_mile = asyncio.run(scenario())
    text = "\n".join(messages)
    for internal in ("HUB-SECRET-7", "PDA-0042", "staff", "late_scan", "ops-team-3", "device_id", "node"):
        assert internal not in text
    assert last_mile["skus"]["a"]["position"]["precise"] is True  # exact while out for delivery
    assert last_mile["skus"]["b"]["position"]["precise"] is False  # coarse elsewhere
    assert orjson.loads(messages[-1])["skus"]["a"]["position"] is None  # delivered: no position any more


def test_resume_is_gap_free_on_the_same_and_on_another_instance(pair: list[RunningGateway]) -> None:
    first, second = pair
    known_orders(pair, "o-7")
    link = issue_link(first.base_url, "o-7")
    wait_until(lambda: second.gateway.tracking_token_valid(link["token"]), 20, what="token on instance 2")

    async def scenario() -> None:
        state = TrackState()
        async with UpdateFeeder(first.settings) as feeder:
            ws = await subscribe_track(first.ws_url("/ws/track"), link["token"])
            async with ws:
                for seq in range(1, 6):
                    await feeder.publish(journey_snapshot("o-7", seq))
                await follow_until(ws, state, 5)
            resumed_at = state.seq
            # Missed while disconnected: seqs 6..9 (the buffer holds 8 deltas).
            for seq in range(6, 10):
                await feeder.publish(journey_snapshot("o-7", seq))
            await asyncio.to_thread(wait_until, lambda: cached_seq(second, "o-7") == 9, 20)
            ws = await subscribe_track(second.ws_url("/ws/track"), link["token"], last_seq=resumed_at)
            async with ws:
                assert (await receive(ws))["type"] == "subscribed"
                before = len(state.steps)
                await follow_until(ws, state, 9)
                # Replayed from the buffer as a delta (from_seq set), not a snapshot.
                assert state.steps[before][0] == resumed_at
                for seq in range(10, 13):
                    await feeder.publish(journey_snapshot("o-7", seq))
                await follow_until(ws, state, 12)
        # Gap-free: after the first snapshot (the known order's seq 0), every change is a delta
        # continuing exactly where the previous one ended.
        chain = state.steps
        assert chain[0][0] is None, chain
        assert all(later[0] == earlier[1] for earlier, later in itertools.pairwise(chain)), chain
        assert state.seq == 12 and strip(state.view) == strip(expected_view("o-7", 12))

        # A client whose last seq fell out of the buffer gets a fresh snapshot instead.
        stale = TrackState()
        stale.seq = 1
        ws = await subscribe_track(second.ws_url("/ws/track"), link["token"], last_seq=1)
        async with ws:
            assert (await receive(ws))["type"] == "subscribed"
            message = await receive(ws)
            assert message["type"] == "snapshot" and message["seq"] == 12

        # Already current: nothing but the subscribed notice, then live deltas.
        await asyncio.to_thread(wait_until, lambda: cached_seq(first, "o-7") == 12, 20)
        ws = await subscribe_track(first.ws_url("/ws/track"), link["token"], last_seq=12)
        async with ws:
            assert await receive(ws) == {"type": "subscribed", "seq": 12, "order_id": "o-7"}
            async with UpdateFeeder(first.settings) as feeder:
                await feeder.publish(journey_snapshot("o-7", 13))
                delta = await receive(ws)
            assert (delta["type"], delta["from_seq"], delta["seq"]) == ("delta", 12, 13)

    asyncio.run(scenario())


def test_both_instances_serve_the_same_updates(pair: list[RunningGateway]) -> None:
    known_orders(pair, "o-3")
    link = issue_link(pair[1].base_url, "o-3")
    for server in pair:
        wait_until(partial(server.gateway.tracking_token_valid, link["token"]), 20)

    async def scenario() -> None:
        async with UpdateFeeder(pair[0].settings) as feeder:
            sockets = [await subscribe_track(s.ws_url("/ws/track"), link["token"]) for s in pair]
            states = [TrackState(), TrackState()]
            for seq in range(1, 8):
                await feeder.publish(journey_snapshot("o-3", seq))
            for ws, state in zip(sockets, states, strict=False):
                await follow_until(ws, state, 7)
                await ws.close()
        assert states[0].view == states[1].view and states[0].seq == states[1].seq == 7

    asyncio.run(scenario())


async def refused(url: str, token: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    ws = await subscribe_track(url, token, **kwargs)
    async with ws:
        message = await receive(ws)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, message


def test_unknown_foreign_revoked_and_expired_tokens_all_get_the_same_404(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    settings = stack_settings
    clock = ShiftedClock()
    with running_gateways(settings, staff, clock=clock) as (server,):
        url = server.ws_url("/ws/track")
        known_orders([server], "o-1", "o-2")
        one = issue_link(server.base_url, "o-1", ttl=3600)
        two = issue_link(server.base_url, "o-2", ttl=3600)
        doomed = issue_link(server.base_url, "o-1", ttl=3600)
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            from gateway.harness import login

            login(client, "oncall")
            assert client.delete(f"/api/v1/tracking-links/{doomed['token']}").status_code == 204
            assert client.delete(f"/api/v1/tracking-links/{doomed['token']}").status_code == 404

        async def scenario() -> list[tuple[int, dict[str, Any]]]:
            answers = [
                await refused(url, "A" * 43),  # random
                await refused(url, two["token"], order_id="o-1"),  # another order's token
                await refused(url, doomed["token"]),  # revoked
            ]
            clock.shift(timedelta(hours=2))
            answers.append(await refused(url, one["token"]))  # expired
            return answers

        answers = asyncio.run(scenario())
        assert all(code == 4404 for code, _ in answers)
        assert len({orjson.dumps(message) for _, message in answers}) == 1  # byte for byte the same
        assert answers[0][1]["status"] == 404


class ShiftedClock:
    """The gateway's wall clock, movable by the test (thread-safe enough: one float)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def shift(self, by: timedelta) -> None:
        self.offset += by

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_foreign_origins_are_refused_before_the_upgrade(pair: list[RunningGateway]) -> None:
    server = pair[0]
    known_orders([server], "o-1")
    link = issue_link(server.base_url, "o-1")

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            await subscribe_track(server.ws_url("/ws/track"), link["token"], origin="https://evil.example")
        assert info.value.response.status_code == 403
        ws = await subscribe_track(server.ws_url("/ws/track"), link["token"], origin=server.origin)
        async with ws:
            assert (await receive(ws))["type"] == "subscribed"

    asyncio.run(scenario())
    assert server.metric("orderradar_gateway_ws_refused_total", endpoint="track", reason="origin") == 1


def test_bad_or_oversized_first_messages_are_refused_and_guessing_is_throttled(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    settings = stack_settings
    with running_gateways(settings, staff, ws_failed_lookups_per_s=0.01, ws_failed_lookups_burst=3) as (server,):
        url = server.ws_url("/ws/track")

        async def scenario() -> None:
            async with websockets.connect(url) as ws:
                await ws.send('{"type": "hello"}')
                assert (await receive(ws))["error"] == "bad_subscribe"
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
            async with websockets.connect(url) as ws:  # larger than ws_max_message_bytes
                await ws.send(orjson.dumps({"type": "subscribe", "token": "x" * 10_000}).decode())
                with pytest.raises(ConnectionClosed) as too_big:
                    await ws.recv()
                assert too_big.value.rcvd is not None and too_big.value.rcvd.code == 1009
            codes = [(await refused(url, f"guess-{i}-" + "x" * 40))[0] for i in range(4)]
            assert codes == [4404, 4404, 4404, 4429]

        asyncio.run(scenario())


def test_a_client_that_stops_reading_is_closed_while_others_on_the_order_carry_on(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    settings = stack_settings
    with running_gateways(
        settings, staff, ws_max_lag_s=0.5, ws_socket_send_buffer=16384, ws_write_buffer_bytes=8192
    ) as (server,):
        known_orders([server], "o-9")
        link = issue_link(server.base_url, "o-9")
        skus = {f"s{i}": SkuPlan(JOURNEY[: JOURNEY.index("out_for_delivery") + 1]) for i in range(20)}

        async def scenario() -> None:
            reader_state = TrackState()
            stuck = await stuck_client(server.port, link["token"])
            reader = await subscribe_track(server.ws_url("/ws/track"), link["token"])
            async with UpdateFeeder(server.settings) as feeder:
                for seq in range(1, 61):  # ~12 KB deltas: the courier moves every SKU each time
                    await feeder.publish(order_snapshot("o-9", seq, skus, extra=seq), wait=False)
                    if seq % 10 == 0:
                        await feeder.flush()
                        await follow_until(reader, reader_state, seq)
                await asyncio.to_thread(
                    wait_until,
                    lambda: server.metric("orderradar_gateway_ws_slow_disconnects_total", endpoint="track") == 1,
                    20,
                    0.1,
                    "stuck client shed",
                )
            assert reader_state.seq == 60
            # Its connection is gone once it reads again: closed with 4008 if the close frame
            # got through, else aborted (no close frame; 1006).
            try:
                async with asyncio.timeout(20):
                    async for _ in stuck:
                        pass
            except ConnectionClosed:
                pass
            assert stuck.close_code in (4008, 1006)
            await stuck.close()
            await reader.close()

        asyncio.run(scenario())


def test_a_new_instance_warms_its_cache_from_a_recent_position_only(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    settings = stack_settings

    async def publish_history() -> None:
        async with UpdateFeeder(settings) as feeder:
            for i in range(48):  # one record at a time, so every partition's end offset is exact
                await feeder.publish(order_snapshot(f"o-{i}", 1, {"a": SkuPlan(["paid"])}))

    asyncio.run(publish_history())
    with running_gateways(settings, staff, lookback_per_partition=2) as (server,):
        wait_until(lambda: len(server.gateway.orders) == 2 * settings.partitions, 20, what="recent records read")
        cached = {f"o-{i}" for i in range(48) if server.gateway.orders.get(f"o-{i}") is not None}
        assert len(cached) == 2 * settings.partitions
        assert server.gateway.orders.get("o-47") is not None  # the newest record is always among them
