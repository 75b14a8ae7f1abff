"""``/ws/warroom``: live heatmap cells, KPIs, incidents, alerts, silences and disruption
zones for signed-in staff (the session cookie from ``POST /api/v1/login``).

Refused before the upgrade: foreign ``Origin`` (403), no session (401). Closed after it:
4429 when the address holds too many open WebSockets; 4401 within about a second of the
session ending (signed out on any instance, password or role changed, user removed,
session lifetime over: the hub's sweeper re-checks it). Client -> server (first message)::

    {"type": "subscribe", "epoch": "3f2a9c1b7d4e", "last_seq": 1200}   # both optional

Server -> client (``seq`` is this instance's war-room sequence; ``epoch`` names the
instance run it belongs to, so a resume on another instance or after a restart gets a
snapshot)::

    {"type": "subscribed", "seq": 1234, "epoch": "...", "user": "alice", "role": "manager"}
    {"type": "snapshot", "epoch": "...", "seq": 1234,
     "channels": {"kpis": {<key>: {...}}, "heatmap": {<cell>: {...}},
                  "incident": {<incident_id>: {...}}, "alert": {<alert_id>: {...}},
                  "silence": {<silence_id>: {...}}, "disruption": {<disruption_id>: {...}}}}
    {"type": "update", "epoch": "...", "seq": 1235, "channel": "heatmap", "key": "<cell>",
     "data": {...} | null}                                    # null: the item is gone
    {"type": "pong", "seq": 1235}

Channels ``kpis``/``heatmap``/...: the worker's ``warroom-updates`` records (``type`` is the
channel, ``key`` the item); ``incident``: ``order-incidents`` records as published;
``alert``: one summary per alert (``alert_id, status, tier, labels, incident_ids,
first_at, updated_at, acked_by, resolved_by, last_event``); ``silence``; ``disruption``
(zone, ``created_by``). Updates to one item are merged while unsent (latest wins), so a
slow client sees the latest state; it is closed with 4008 when it falls too far behind.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.websockets import WebSocket

from dashboard.gateway.hub import Connection
from dashboard.gateway.messages import Notice
from dashboard.gateway.responses import error_response
from dashboard.gateway.sessions import gateway_of, staff_of
from dashboard.gateway.staff import Permission
from dashboard.gateway.ws_endpoint import refuse_foreign_origin, serve, session


class WarroomSubscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["subscribe"]
    epoch: Annotated[str, StringConstraints(max_length=64)] | None = None
    last_seq: int | None = Field(default=None, ge=0)


def _may_view(websocket: WebSocket) -> bool:
    member = staff_of(websocket)
    return member is not None and member.can(Permission.VIEW)


async def warroom_socket(websocket: WebSocket) -> None:
    gateway = gateway_of(websocket)
    if await refuse_foreign_origin(websocket, gateway, "warroom"):
        return
    member = staff_of(websocket)
    if member is None or not member.can(Permission.VIEW):
        gateway.metrics.ws_refused.inc(endpoint="warroom", reason="unauthenticated")
        await websocket.send_denial_response(error_response(401, "unauthenticated", "sign in first"))
        return
    await websocket.accept()
    connection = Connection(
        websocket,
        "warroom",
        gateway.options.warroom_outbox_keys,
        gateway.hub,
        gateway.options.warroom_max_lag_s,
        session_valid=lambda: _may_view(websocket),
    )

    async def subscribed(request: WarroomSubscribe) -> None:
        state = gateway.warroom
        missed = state.since(request.epoch, request.last_seq)
        gateway.hub.join_warroom(connection)
        connection.offer(
            Notice("subscribed", state.seq, epoch=state.epoch, user=member.username, role=member.role.value)
        )
        if missed is None:
            connection.offer(state.snapshot())
        for update in missed or ():
            connection.offer(update)
        connection.start()
        await serve(websocket, connection, lambda: state.seq)

    await session(websocket, gateway, connection, WarroomSubscribe, subscribed)
