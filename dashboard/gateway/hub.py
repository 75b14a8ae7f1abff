"""Fan-out of live updates to WebSocket connections, without ever waiting for one of them.

Each connection has an :class:`~dashboard.gateway.send_queue.SendQueue` and its own writer task;
broadcasting only puts messages into outboxes (O(1), never ``await``). A connection falls
behind when its outbox overflows or its oldest unsent message (or a send in progress) is
older than ``max_lag_s``; the hub then closes it with code 4008 ("too slow"), aborting the
transport when a close frame cannot get through. Nobody else is slowed down.

The hub also counts open connections per client address, so one address cannot hold more
than its share of sockets (:meth:`Hub.add` with ``max_per_client``), and its sweeper closes
a staff connection (4401) once the session it opened with has ended: signed out on any
instance, password or role changed, user removed, or older than the session lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from dashboard.gateway.messages import Outgoing
from dashboard.gateway.metrics import GatewayMetrics
from dashboard.gateway.order_cache import OrderChange
from dashboard.gateway.send_queue import PutResult, SendQueue
from dashboard.gateway.sessions import client_address
from dashboard.gateway.ws_protocol import ABORT_EXTENSION

log = logging.getLogger(__name__)

#: Close code for a client that cannot keep up (application range; reconnect later).
TOO_SLOW = 4008
#: Close code for a staff connection whose session has ended (sign in again).
SESSION_ENDED = 4401
#: How long a polite close may take before the transport is aborted.
CLOSE_TIMEOUT_S = 1.0
#: How long after its endpoint finished a connection may still be closing (uvicorn allows
#: the closing handshake 10 s) before its transport is aborted: a close waits for the
#: write buffer to drain, which a peer that stopped reading never lets happen.
ABANDON_AFTER_S = 15.0
#: ``TrackConnection.seq`` of a client that holds no order state yet.
NO_STATE = -1
#: Errors meaning "the peer is gone" while sending.
_GONE = (WebSocketDisconnect, WebSocketDisconnected, OSError, RuntimeError)


class Connection:
    """One accepted WebSocket with its outbox and writer task."""

    def __init__(
        self,
        websocket: WebSocket,
        endpoint: str,
        outbox_keys: int,
        hub: Hub,
        max_lag_s: float | None = None,
        session_valid: Callable[[], bool] | None = None,
    ) -> None:
        self.websocket = websocket
        #: For staff connections: whether the session it opened with still holds.
        self.session_valid = session_valid
        self.endpoint = endpoint
        self.client = client_address(websocket)
        self.hub = hub
        self.max_lag_s = max_lag_s if max_lag_s is not None else hub.max_lag_s
        self.outbox = SendQueue(outbox_keys)
        self.closed = False
        #: Monotonic time the current send started (``None`` between sends).
        self.sending_since: float | None = None
        self._writer: asyncio.Task[None] | None = None
        extensions = websocket.scope.get("extensions") or {}
        self._abort: Callable[[], None] | None = extensions.get(ABORT_EXTENSION)

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.endpoint}")

    async def _write_loop(self) -> None:
        try:
            while True:
                message = await self.outbox.get()
                self.sending_since = self.hub.clock()
                await self.websocket.send_text(message.text())
                self.sending_since = None
                self.hub.metrics.ws_sent.inc(endpoint=self.endpoint)
        except _GONE:
            self.closed = True  # the endpoint's receive loop sees the disconnect and cleans up

    def offer(self, message: Outgoing) -> None:
        """Queue ``message`` (never blocks); sheds the connection when its outbox overflows."""
        if self.closed:
            return
        result = self.outbox.put(message, self.hub.clock())
        if result is PutResult.COALESCED:
            self.hub.metrics.ws_coalesced.inc(endpoint=self.endpoint)
        elif result is PutResult.OVERFLOW:
            self.hub.shed(self, "outbox full")

    def lag(self, now: float) -> float:
        oldest = [t for t in (self.sending_since, self.outbox.oldest_since()) if t is not None]
        return now - min(oldest) if oldest else 0.0

    async def close_slow(self, reason: str, code: int = TOO_SLOW) -> None:
        """Stop writing, try a polite close, abort the transport if that cannot get through."""
        self.closed = True
        await self.stop_writer()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.websocket.close(code, reason)
            return
        except TimeoutError:
            pass
        except _GONE:
            return
        if self._abort is not None:
            self._abort()

    def abandon(self) -> None:
        """The endpoint is done with this connection: abort its transport unless it is gone
        within :data:`ABANDON_AFTER_S`."""
        if self._abort is not None:
            asyncio.get_running_loop().call_later(ABANDON_AFTER_S, self._abort)

    async def stop_writer(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


class TrackConnection(Connection):
    """A customer's connection: one order, and the seq the client will have once its
    outbox drains (what decides between a delta and a snapshot)."""

    def __init__(self, websocket: WebSocket, outbox_keys: int, hub: Hub) -> None:
        super().__init__(websocket, "track", outbox_keys, hub)
        self.order_id: str | None = None
        self.seq = 0

    def offer_order(self, change: OrderChange) -> None:
        if change.seq <= self.seq:
            return  # the client has it already (resumed from a faster instance)
        delta = change.delta
        message: Outgoing = delta if delta is not None and delta.from_seq == self.seq else change.snapshot
        self.seq = change.seq
        self.offer(message)


class Hub:
    """Who watches what, and the sweeper that sheds lagging connections. ``max_lag_s`` is
    the default bound; a connection may carry its own (the war-room's is larger)."""

    def __init__(self, metrics: GatewayMetrics, max_lag_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.max_lag_s = max_lag_s
        self.clock = clock
        self._connections: set[Connection] = set()
        self._per_client: Counter[str] = Counter()
        self._by_order: dict[str, set[TrackConnection]] = {}
        self._warroom: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def count(self, endpoint: str) -> int:
        return sum(1 for c in self._connections if c.endpoint == endpoint)

    def add(self, connection: Connection, max_per_client: int | None = None) -> bool:
        """Register ``connection``; False (and not registered) when its client address
        already holds ``max_per_client`` connections."""
        if max_per_client is not None and self._per_client[connection.client] >= max_per_client:
            self.metrics.ws_refused.inc(endpoint=connection.endpoint, reason="too_many_connections")
            return False
        self._connections.add(connection)
        self._per_client[connection.client] += 1
        self.metrics.ws_accepted.inc(endpoint=connection.endpoint)
        return True

    def connections(self) -> tuple[Connection, ...]:
        return tuple(self._connections)

    def count_from(self, client: str) -> int:
        """Open connections of one client address."""
        return self._per_client[client]

    def watch_order(self, connection: TrackConnection, order_id: str) -> None:
        connection.order_id = order_id
        self._by_order.setdefault(order_id, set()).add(connection)

    def join_warroom(self, connection: Connection) -> None:
        self._warroom.add(connection)

    def remove(self, connection: Connection) -> None:
        if connection not in self._connections:
            return
        self._connections.discard(connection)
        self._per_client[connection.client] -= 1
        if not self._per_client[connection.client]:
            del self._per_client[connection.client]
        self._warroom.discard(connection)
        if isinstance(connection, TrackConnection) and connection.order_id is not None:
            watchers = self._by_order.get(connection.order_id)
            if watchers is not None:
                watchers.discard(connection)
                if not watchers:
                    del self._by_order[connection.order_id]

    def order_changed(self, change: OrderChange) -> None:
        for connection in tuple(self._by_order.get(change.order_id, ())):
            connection.offer_order(change)

    def warroom_changed(self, message: Outgoing) -> None:
        for connection in tuple(self._warroom):
            connection.offer(message)

    def shed(self, connection: Connection, reason: str, code: int = TOO_SLOW) -> None:
        if connection.closed:
            return
        connection.closed = True
        if code == TOO_SLOW:
            self.metrics.ws_dropped.inc(endpoint=connection.endpoint)
        log.info("closing websocket endpoint=%s code=%d reason=%s", connection.endpoint, code, reason)
        task = asyncio.create_task(connection.close_slow(reason, code), name="ws-shed")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def sweep(self) -> None:
        """Shed every connection lagging more than ``max_lag_s``, and close staff connections
        whose session has ended."""
        now = self.clock()
        for connection in tuple(self._connections):
            if connection.closed:
                continue
            if connection.session_valid is not None and not connection.session_valid():
                self.shed(connection, "session ended; sign in again", SESSION_ENDED)
            elif connection.lag(now) > connection.max_lag_s:
                self.shed(connection, f"more than {connection.max_lag_s:g}s behind")

    async def run_sweeper(self) -> None:
        interval = max(0.1, min(1.0, self.max_lag_s / 4))  # the customers' (smallest) bound
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    async def close_all(self) -> None:
        for connection in tuple(self._connections):
            await connection.stop_writer()
        for task in tuple(self._tasks):
            task.cancel()
