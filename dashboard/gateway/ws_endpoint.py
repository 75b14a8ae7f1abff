"""The shape both WebSocket endpoints share: refuse before accept, first message, serve.

1. Before ``accept``: the ``Origin`` allow-list (403 ``forbidden_origin``) and, for staff
   endpoints, the session (401/403) are checked and refused with a plain HTTP response.
2. After ``accept``: a client address holding ``Settings.ws_max_connections_per_client``
   open WebSockets already is closed with 4429 ("too many connections from this
   address"); the client must send its ``subscribe`` message within
   ``ws_first_message_timeout_s`` (else close 4400).
3. Then the connection's writer drains its outbox while this task reads the client:
   ``{"type": "ping"}`` gets ``{"type": "pong", "seq"}``; anything else gets a non-fatal
   ``error`` message; more than a few messages per second closes with 1008.

A peer that does not answer the server's keepalive ping within ``ws_ping_timeout_s`` is
cut off (:mod:`dashboard.gateway.ws_protocol`) and leaves through the same cleanup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocket

from dashboard.gateway.hub import Connection, Hub
from dashboard.gateway.messages import Notice, error_message
from dashboard.gateway.origin import origin_allowed
from dashboard.gateway.rate_limit import TokenBucket
from dashboard.gateway.responses import error_response
from dashboard.gateway.runtime import Gateway

M = TypeVar("M", bound=BaseModel)

BAD_REQUEST = 4400
NOT_FOUND = 4404
TOO_MANY = 4429
POLICY = 1008
#: Close reason of a connection over ``Settings.ws_max_connections_per_client``.
TOO_MANY_CONNECTIONS = "too many connections from this address"
#: Client messages allowed per connection (rate per second, burst).
CLIENT_RATE = (2.0, 10)


async def refuse_foreign_origin(websocket: WebSocket, gateway: Gateway, endpoint: str) -> bool:
    """Deny the handshake (403) when the Origin is not allowed; True when refused."""
    settings = gateway.settings
    allowed = (*settings.allowed_origins, *((settings.public_url,) if settings.public_url else ()))
    if origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"), allowed):
        return False
    gateway.metrics.ws_refused.inc(endpoint=endpoint, reason="origin")
    await websocket.send_denial_response(error_response(403, "forbidden_origin", "this Origin may not connect"))
    return True


async def close_with_error(
    websocket: WebSocket, code: int, status: int, error: str, detail: str, reason: str | None = None
) -> None:
    await websocket.send_text(error_message(status, error, detail))
    await websocket.close(code, reason)


async def admit(websocket: WebSocket, hub: Hub, connection: Connection, max_per_client: int) -> bool:
    """Register an accepted connection with the hub, or close it (4429) when its address
    already holds ``max_per_client``. Accept-then-close, not an HTTP refusal, so that
    browsers see the code and the reason."""
    if hub.add(connection, max_per_client):
        return True
    await close_with_error(
        websocket,
        TOO_MANY,
        429,
        "too_many_connections",
        f"at most {max_per_client} open connections per address",
        TOO_MANY_CONNECTIONS,
    )
    connection.abandon()
    return False


async def first_message(websocket: WebSocket, gateway: Gateway, model: type[M]) -> M | None:
    """The client's subscribe message, or ``None`` after closing the connection."""
    try:
        async with asyncio.timeout(gateway.options.ws_first_message_timeout_s):
            message = await websocket.receive()
    except TimeoutError:
        await close_with_error(websocket, BAD_REQUEST, 400, "subscribe_expected", "send a subscribe message first")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    try:
        if text is None:
            raise ValueError("messages must be JSON text")
        return model.model_validate_json(text)
    except ValueError as exc:
        detail = (
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        await close_with_error(websocket, BAD_REQUEST, 400, "bad_subscribe", detail[:300])
        return None


async def session(
    websocket: WebSocket,
    gateway: Gateway,
    connection: Connection,
    model: type[M],
    subscribed: Callable[[M], Awaitable[None]],
) -> None:
    """An accepted connection's life: admitted by the hub, its subscribe message (``model``)
    handed to ``subscribed`` (which serves it), and always released from the hub after."""
    if not await admit(websocket, gateway.hub, connection, gateway.settings.ws_max_connections_per_client):
        return
    try:
        request = await first_message(websocket, gateway, model)
        if request is not None:
            await subscribed(request)
    finally:
        gateway.hub.remove(connection)
        await connection.stop_writer()
        connection.abandon()


async def serve(websocket: WebSocket, connection: Connection, current_seq: Callable[[], int]) -> None:
    """Read the client until it leaves; ``current_seq()`` stamps pongs."""
    bucket = TokenBucket(CLIENT_RATE[0], CLIENT_RATE[1], CLIENT_RATE[1], connection.hub.clock())
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if not bucket.take(connection.hub.clock()).allowed:
            await connection.stop_writer()
            await websocket.close(POLICY, "too many messages")
            return
        kind = None
        text = message.get("text")
        if text is not None:
            try:
                parsed = orjson.loads(text)
                kind = parsed.get("type") if isinstance(parsed, dict) else None
            except orjson.JSONDecodeError:
                kind = None
        seq = current_seq()
        if kind == "ping":
            connection.offer(Notice("pong", seq))
        else:
            connection.offer(
                Notice(
                    "error",
                    seq,
                    status=400,
                    error="unsupported",
                    detail='only {"type": "ping"} is accepted after subscribe',
                )
            )
