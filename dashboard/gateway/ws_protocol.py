"""uvicorn's WebSocket protocol with the additions the hub needs to shed slow and dead clients.

* Per-connection buffer bounds: the transport's write high-water mark (a ``send`` waits
  above it) and the socket's kernel send buffer, so a client that stops reading pins at
  most a few tens of KiB in this process and in the kernel.
* An abort hook in the ASGI scope (``scope["extensions"]["orderradar.abort"]``): a close
  frame cannot reach a client that does not read (the send waits for buffer space that
  never comes), so the hub aborts the transport instead, and every endpoint has its
  connection aborted a while after it finished unless it is gone by then (a polite close
  waits for the write buffer to drain). Under another ASGI server the hook is absent and
  slow clients are left to the keepalive ping timeout.
* A keepalive timeout that frees the connection: a peer that has not answered a ping
  within ``ws_ping_timeout_s`` (gone without a FIN, or silent on purpose) gets a 1011
  close frame and its transport is aborted. uvicorn only closes it, and a close waits
  for the write buffer to drain, which a peer that stopped reading never lets happen: the
  socket, its buffers and the endpoint task would stay forever.

uvicorn's protocol classes are not a public extension API; this subclass touches only
``transport``, ``scope``, ``disconnected`` and the three methods below, and tests cover them
(``tests/gateway/test_ws_limits.py``, ``test_slow_clients.py``).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

ABORT_EXTENSION = "orderradar.abort"


def protocol_class(write_buffer_bytes: int, socket_send_buffer: int | None) -> type[WebSocketsSansIOProtocol]:
    """A protocol class bound to these buffer sizes (uvicorn takes a class, not an instance)."""

    class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            if isinstance(transport, asyncio.WriteTransport):
                transport.set_write_buffer_limits(high=write_buffer_bytes, low=write_buffer_bytes // 4)
            sock = transport.get_extra_info("socket")
            if socket_send_buffer is not None and sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, socket_send_buffer)

        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            # The ASGI task was created but has not run yet, so it sees the extension.
            scope = getattr(self, "scope", None)
            if scope is not None:
                scope["extensions"][ABORT_EXTENSION] = self.abort_if_open

        def keepalive_timeout(self) -> None:
            super().keepalive_timeout()  # queues the 1011 close frame and closes politely
            self.abort_if_open()

        def abort_if_open(self) -> None:
            # A transport whose close finished by draining its buffer is gone already
            # (aborting it again would fail); every other state aborts, queued data dropped.
            if not self.disconnected:
                self.transport.abort()

    return GatewayWebSocketProtocol
