"""``/ws/track``: one customer order, live, for the holder of a tracking token.

Client -> server (first message, within ``ws_first_message_timeout_s``; the token is
never put in the URL, where it would end up in logs)::

    {"type": "subscribe", "token": "<token>", "last_seq": 12, "order_id": "o-1"}

``last_seq`` (optional) is the last ``seq`` the client applied, to resume (0 or absent: the
client has nothing yet; worker seqs start at 1); ``order_id``
(optional) must match the token's order. Later, ``{"type": "ping"}`` -> ``pong``.

Server -> client (every message has ``type`` and ``seq``; ``seq`` is the worker's
per-order sequence, the same on every instance)::

    {"type": "subscribed", "seq": 41, "order_id": "o-1"}            # server's current seq
    {"type": "snapshot", "order_id": "o-1", "seq": 41,
     "status": "linehaul", "updated_at": "...", "promised_by": "...", "eta": null,
     "summary": {"en": "2 of 3 items in transit", "zh-CN": "..."},
     "skus": {"sku-1": {"status": "linehaul", "since": "...", "qty": 1,
                        "timeline": [{"status": "paid", "time": "..."}, ...],
                        "position": {"lat": 31.23, "lon": 121.47, "precise": false, "time": "..."},
                        "route": [[31.2, 121.4], ...],            # recent fixes, oldest first
                        "city": {"lat": 31.2317, "lon": 121.4726, "adcode": "310000"},  # never the address
                        "promised_by": "...", "eta": "...", "reason": "weather"}}}
    {"type": "delta", "order_id": "o-1", "from_seq": 41, "seq": 42,
     "status": ..., "updated_at": ..., "promised_by": ..., "eta": ..., "summary": ...,
     "skus": {<only SKUs whose view changed, each in full>}, "removed": ["sku-9"]}
    {"type": "pong", "seq": 42}
    {"type": "error", "seq": 0, "status": 404, "error": "not_found", "detail": "..."}

Applying: a snapshot replaces the state; a delta applies only when ``from_seq`` equals
the client's ``seq`` (replace the header fields, replace each listed SKU, delete
``removed``). ``seq`` may jump by more than one: a slow connection gets merged deltas,
never a gap. If ``from_seq`` ever differs, reconnect with ``last_seq``.

Resume: with ``last_seq`` the server replays the missed deltas (merged into one) from its
per-order buffer, or sends a snapshot when they are gone; nothing when already current.

Close codes: 4400 bad or missing subscribe, 4404 unknown/expired/revoked/other order's
token (always after the same ``error`` message), 4429 too many failed lookups from this
address or too many open connections from it (the close reason says which), 4008 too
slow (reconnect with ``last_seq``), 1008 too many messages, 1009 a message over
``ws_max_message_bytes``. A foreign ``Origin`` is refused with HTTP 403 before the upgrade.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.websockets import WebSocket

from dashboard.gateway.hub import NO_STATE, TrackConnection
from dashboard.gateway.messages import Notice, TrackSnapshot, error_message
from dashboard.gateway.projection import empty_view
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.sessions import client_address, gateway_of
from dashboard.gateway.ws_endpoint import NOT_FOUND, TOO_MANY, refuse_foreign_origin, serve, session

NOT_FOUND_DETAIL = "this tracking link is unknown or has expired"


class TrackSubscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["subscribe"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    last_seq: int | None = Field(default=None, ge=0)
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


def subscribe(gateway: Gateway, connection: TrackConnection, order_id: str, last_seq: int | None) -> None:
    """Register the connection and queue what the client is missing. Synchronous on
    purpose: no update can slip in between reading the cache and registering."""
    entry = gateway.orders.get(order_id)
    gateway.hub.watch_order(connection, order_id)
    connection.offer(Notice("subscribed", entry.seq if entry else 0, order_id=order_id))
    if not last_seq:  # no state yet (seq 0 means "nothing")
        if entry is None:
            connection.seq = NO_STATE  # the first update of any seq comes as a snapshot
            connection.offer(TrackSnapshot(order_id, 0, empty_view()))
        else:
            connection.seq = entry.seq
            connection.offer(entry.snapshot())
    elif entry is None or last_seq >= entry.seq:
        connection.seq = last_seq
    else:
        deltas = gateway.orders.deltas_since(order_id, last_seq)
        connection.seq = entry.seq
        if deltas is None:
            connection.offer(entry.snapshot())
        for delta in deltas or ():
            connection.offer(delta)


async def track_socket(websocket: WebSocket) -> None:
    gateway = gateway_of(websocket)
    if await refuse_foreign_origin(websocket, gateway, "track"):
        return
    await websocket.accept()
    connection = TrackConnection(websocket, gateway.options.track_outbox_keys, gateway.hub)

    async def subscribed(request: TrackSubscribe) -> None:
        address = client_address(websocket)
        limiter = gateway.lookup_limiter
        if not limiter.peek_allowed(address, gateway.monotonic()):
            gateway.metrics.ws_refused.inc(endpoint="track", reason="throttled")
            await websocket.send_text(error_message(429, "too_many_attempts", "too many unknown links; wait"))
            await websocket.close(TOO_MANY, "too many unknown links")
            return
        order_id = gateway.tokens.lookup(request.token, gateway.clock(), request.order_id)
        if order_id is None:
            limiter.take(address, gateway.monotonic())
            gateway.metrics.ws_refused.inc(endpoint="track", reason="not_found")
            await websocket.send_text(error_message(404, "not_found", NOT_FOUND_DETAIL))
            await websocket.close(NOT_FOUND)
            return
        subscribe(gateway, connection, order_id, request.last_seq)
        connection.start()
        await serve(websocket, connection, lambda: max(connection.seq, 0))

    await session(websocket, gateway, connection, TrackSubscribe, subscribed)
