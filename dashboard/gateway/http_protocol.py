"""uvicorn's h11 HTTP protocol with a deadline for the request head (slowloris).

uvicorn times out an idle keep-alive connection only after a response, and cancels even
that on the first byte received: a client that connects and sends nothing, or trickles a
request line a byte at a time, holds a socket, its buffers and a connection slot forever.
Here every request head (request line and headers) must arrive within
``Settings.web_header_timeout_s`` of the connection opening, or of the first byte of a
later request on a kept-alive connection; otherwise the connection is closed. Bodies,
responses and upgraded WebSockets are not affected (the deadline ends with the head).

uvicorn's protocol classes are not a public extension API; this subclass touches only
``conn``, ``transport``, ``loop`` and the three methods below, and
``tests/gateway/test_session_and_slowloris.py`` covers it.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


def http_protocol_class(header_timeout_s: float) -> type[H11Protocol]:
    """A protocol class bound to this deadline (uvicorn takes a class, not an instance)."""

    class GatewayHTTPProtocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # IDLE: still waiting for a complete request head (first or next one).
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                if self._head_deadline is None:
                    self._arm()
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._head_deadline = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_timed_out(self) -> None:
            self._head_deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.debug("closing a connection that sent no complete request in %gs", header_timeout_s)
                self.transport.close()

    return GatewayHTTPProtocol
