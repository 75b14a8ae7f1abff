"""WebSocket resource limits through a real uvicorn server: per-address connection cap and
the keepalive timeout that cuts off peers which stop answering pings."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import websockets
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from config.settings import Settings
from dashboard.gateway.hub import ABANDON_AFTER_S
from dashboard.gateway.staff import StaffDirectory
from dashboard.gateway.ws_endpoint import TOO_MANY_CONNECTIONS
from gateway.harness import (
    RunningGateway,
    SkuPlan,
    UpdateFeeder,
    cached_seq,
    issue_link,
    order_snapshot,
    receive,
    running_gateways,
    subscribe_track,
)
from orderradar.devstack.waiting import async_wait_until, wait_until

pytestmark = pytest.mark.integration

LIMIT = 3
#: Keepalive of the silent-peer test; every other way of closing it is set far beyond the wait.
PING_INTERVAL_S, PING_TIMEOUT_S = 4.0, 3.0
CUT_OFF_WITHIN_S = 30.0


JOURNEY = ["paid", "picked", "packed", "outbound_scan", "linehaul"]


def known_order(server: RunningGateway, order_id: str, snapshots: int = 1, skus: int = 1) -> str:
    """Publishes ``snapshots`` updates of an order with ``skus`` SKUs (as the worker does),
    waits until the gateway has the last one, and returns a tracking token for it."""

    async def publish() -> None:
        async with UpdateFeeder(server.settings) as feeder:
            for seq in range(1, snapshots + 1):
                # New SKU names every time: each delta carries all of them in full.
                plans = {f"s{seq}-{i}": SkuPlan(JOURNEY) for i in range(skus)}
                await feeder.publish(order_snapshot(order_id, seq, plans), wait=False)
            await feeder.flush()

    asyncio.run(publish())
    wait_until(lambda: cached_seq(server, order_id) == snapshots, 20, what=f"{order_id} cached")
    return str(issue_link(server.base_url, order_id)["token"])


@pytest.fixture
def limited(stack_settings: Settings, staff: StaffDirectory) -> Iterator[RunningGateway]:
    settings = stack_settings.with_overrides(ws_max_connections_per_client=LIMIT)
    with running_gateways(settings, staff) as (gateway,):
        yield gateway


def test_connections_over_the_per_address_limit_are_closed_with_4429(limited: RunningGateway) -> None:
    token = known_order(limited, "o-limit")
    url = limited.ws_url("/ws/track")

    async def scenario() -> None:
        held = [await subscribe_track(url, token) for _ in range(LIMIT)]
        for ws in held:
            assert [(await receive(ws))["type"] for _ in range(2)] == ["subscribed", "snapshot"]
        excess = await websockets.connect(url, open_timeout=10)
        refusal = await receive(excess)
        assert refusal["type"] == "error" and refusal["status"] == 429
        assert refusal["error"] == "too_many_connections", refusal
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(excess.recv(), 10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4429, TOO_MANY_CONNECTIONS)
        # The held connections are untouched, and a closed one frees its slot.
        for ws in held:
            await ws.send('{"type": "ping"}')
            assert (await receive(ws))["type"] == "pong"
        await held.pop().close()
        await async_wait_until(
            lambda: limited.gateway.hub.count_from("127.0.0.1") == LIMIT - 1,
            10,
            what="the closed connection's slot freed",
        )
        again = await subscribe_track(url, token)
        assert (await receive(again))["type"] == "subscribed"
        for ws in (*held, again):
            await ws.close()

    asyncio.run(scenario())
    assert limited.metric("orderradar_gateway_ws_refused_total", endpoint="track", reason="too_many_connections") == 1
    wait_until(lambda: limited.gateway.hub.count_from("127.0.0.1") == 0, 10, what="every slot freed")


class SilentPeer:
    """A raw TCP socket driven by websockets' sans-I/O client: it completes the handshake
    and subscribes, answering pings meanwhile, then stops reading and answering."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up quickly
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws/track"))
        self.protocol.send_request(self.protocol.connect())
        self.flush()
        while self.protocol.state is not State.OPEN:
            self.protocol.receive_data(self.sock.recv(65536))
            if self.protocol.handshake_exc is not None:
                raise self.protocol.handshake_exc
        self.protocol.send_text(orjson.dumps({"type": "subscribe", "token": token}))
        self.flush()

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def read_until(self, kind: str) -> None:
        """Read (answering pings) until a text message of type ``kind`` arrived."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.protocol.receive_data(self.sock.recv(65536))
            self.flush()  # pongs
            for event in self.protocol.events_received():
                if (
                    isinstance(event, Frame)
                    and event.opcode is Opcode.TEXT
                    and orjson.loads(event.data)["type"] == kind
                ):
                    return
        raise TimeoutError(f"no {kind!r} message")

    def closed_by_server(self) -> bool:
        """Drains what the server sent; True once it closed the connection (EOF or reset)."""
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


@pytest.fixture
def keepalive(stack_settings: Settings, staff: StaffDirectory) -> Iterator[RunningGateway]:
    with running_gateways(
        stack_settings,
        staff,
        ws_ping_interval_s=PING_INTERVAL_S,
        ws_ping_timeout_s=PING_TIMEOUT_S,
        ws_max_lag_s=600,
        warroom_max_lag_s=600,
        ws_first_message_timeout_s=600,
    ) as (gateway,):
        yield gateway


def test_a_peer_that_stops_answering_pings_is_cut_off_and_its_resources_freed(keepalive: RunningGateway) -> None:
    """The peer also stops reading while updates flow, so the server's buffers towards it
    are full: a polite close would wait for them to drain forever."""
    token = known_order(keepalive, "o-silent")
    peer = SilentPeer(keepalive.port, token)
    try:
        _silent_peer_is_cut_off(keepalive, peer)
    finally:
        peer.sock.close()


def _silent_peer_is_cut_off(keepalive: RunningGateway, peer: SilentPeer) -> None:
    peer.read_until("snapshot")  # subscribed, then the snapshot: now it goes silent
    hub = keepalive.gateway.hub
    # Updates it will never read, tens of KiB each.
    known_order(keepalive, "o-silent", snapshots=100, skus=40)

    def stuck() -> bool:
        # A message waits in the outbox or a send waits for buffer space.
        return any(c.lag(hub.clock()) > 0 for c in hub.connections())

    wait_until(stuck, 10, what="the silent peer's buffers full")
    wait_until(lambda: hub.count("track") == 0, CUT_OFF_WITHIN_S, what="the silent peer cut off")
    assert hub.count_from("127.0.0.1") == 0
    assert keepalive.metric("orderradar_gateway_ws_clients", endpoint="track") == 0
    peer.sock.settimeout(1)
    wait_until(peer.closed_by_server, CUT_OFF_WITHIN_S, what="the peer's socket closed by the server")


@pytest.fixture
def unpaused(stack_settings: Settings, staff: StaffDirectory) -> Iterator[RunningGateway]:
    """A write high-water mark far above what the test sends, so the server keeps queueing
    (never waits to send) and never sees the peer as slow; no keepalive either."""
    with running_gateways(
        stack_settings,
        staff,
        ws_write_buffer_bytes=64 * 1024 * 1024,
        ws_ping_interval_s=600,
        ws_max_lag_s=600,
        warroom_max_lag_s=600,
    ) as (gateway,):
        yield gateway


def test_a_connection_closed_while_its_peer_reads_nothing_is_still_freed(unpaused: RunningGateway) -> None:
    """The peer stops reading, then floods messages: the server closes it (1008) and its
    endpoint ends, but the close frame sits behind data the peer will never read. uvicorn's
    close waits for that to drain; the socket must be freed all the same."""
    token = known_order(unpaused, "o-flood")
    peer = SilentPeer(unpaused.port, token)
    try:
        peer.read_until("snapshot")
        port = peer.sock.getsockname()[1]

        def server_side() -> Any:
            return next(
                (
                    c
                    for c in unpaused.server.server_state.connections
                    if getattr(c, "client", None) == ("127.0.0.1", port)
                ),
                None,
            )

        known_order(unpaused, "o-flood", snapshots=100, skus=40)

        def queued() -> bool:
            connection = server_side()
            return connection is not None and connection.transport.get_write_buffer_size() > 0

        wait_until(queued, 20, what="data queued for the peer")
        for _ in range(30):  # over the per-connection message rate: closed with 1008
            peer.protocol.send_text(b'{"type": "ping"}')
        peer.flush()
        wait_until(lambda: unpaused.gateway.hub.count("track") == 0, 20, what="the endpoint done with it")
        assert server_side() is not None  # still closing: its buffer cannot drain
        wait_until(lambda: server_side() is None, ABANDON_AFTER_S + CUT_OFF_WITHIN_S, what="the socket freed")
    finally:
        peer.sock.close()
