"""Staff actions: alert ack/resolve, silences, disruption zones (commands to the worker).

Each action is authorised by role, published on ``orderradar-control`` (acks=all) and
written to the audit trail; the answer is ``202 {"command_id", ...}`` because the worker
applies it asynchronously (its effect shows up on the ``alerts`` topic and ``/ws/warroom``).

* ``POST /api/v1/alerts/{alert_id}/ack`` and ``.../resolve``: managers and on-call, or a
  signed one-click link (``?expires=..&sig=..`` from ``alerting.links``). ``GET`` on a
  signed link shows a confirmation page that POSTs, so link scanners in mail and chat
  clients never act.
* ``POST /api/v1/silences`` ``{matchers, ends_at | duration_s | until_resolved, comment}``;
  ``DELETE /api/v1/silences/{silence_id}``.
* ``POST /api/v1/disruptions`` (a :class:`ZoneDeclaration`) -> ``{"disruption_id"}``;
  ``DELETE /api/v1/disruptions/{disruption_id}``.

Names, labels, reasons and comments people type are plain text: a control or invisible
character (zero-width space, bidi override, ...) is a ``422`` naming the field.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, field_validator
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from alerting.links import LinkAction, verify_link
from dashboard.gateway.publisher import PublishError
from dashboard.gateway.responses import error_response, is_json, json_response
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.sessions import authorise, authorised_body, gateway_of
from dashboard.gateway.staff import Permission
from stream.contract import plain_multiline, plain_text
from stream.core.control_commands import (
    AlertAck,
    AlertResolve,
    Command,
    DisruptionCreate,
    DisruptionDelete,
    SilenceCreate,
    SilenceExpire,
    SilenceSpec,
    ZoneDeclaration,
)
from stream.topics import CONTROL

_Body = TypeVar("_Body", bound=BaseModel)

#: Actor recorded for actions taken through a signed link (the link names no person).
LINK_ACTOR = "signed-link"


def _plain_texts(value: Any) -> Any:
    """:func:`plain_text` applied to a string or to each string of a list or tuple."""
    if isinstance(value, list | tuple):
        return tuple(_plain_texts(item) for item in value)
    return plain_text(value) if isinstance(value, str) else value


class SilenceBody(SilenceSpec):
    """A silence as staff send it: matchers (label names and values) and comment in plain text."""

    _plain = field_validator("matchers", mode="before")(_plain_texts)
    _plain_lines = field_validator("comment")(plain_multiline)


class ZoneBody(ZoneDeclaration):
    """A disruption zone as staff send it: name, reason and regions plain text, note may span lines."""

    _plain = field_validator("name", "reason", "regions")(_plain_texts)
    _plain_lines = field_validator("note")(plain_multiline)


async def _submit(gateway: Gateway, command: Command, **extra: str) -> Response:
    try:
        await gateway.publisher.publish_json(CONTROL, command.target, command.to_record())
    except PublishError as exc:
        await gateway.audit.record(command.actor, command.type, command.target, outcome="failed", error=str(exc))
        return error_response(503, "broker_unavailable", str(exc), {"Retry-After": "5"})
    await gateway.audit.record(command.actor, command.type, command.target, command_id=command.command_id)
    return json_response({"status": "accepted", "command_id": command.command_id, **extra}, 202)


def _link_secret(gateway: Gateway) -> bytes:
    secret = gateway.options.alert_link_secret or gateway.settings.session_secret
    return secret.get_secret_value().encode()


def _signed_link_valid(request: Request, alert_id: str, action: str) -> bool:
    gateway = gateway_of(request)
    expires, signature = request.query_params.get("expires"), request.query_params.get("sig")
    if not expires or not signature or not expires.isdigit():
        return False
    return verify_link(_link_secret(gateway), alert_id, action, int(expires), signature, gateway.clock())


async def alert_action(request: Request) -> Response:
    gateway = gateway_of(request)
    alert_id, action = request.path_params["alert_id"], request.path_params["action"]
    if action not in (LinkAction.ACK.value, LinkAction.RESOLVE.value):
        return error_response(404, "not_found", "unknown alert action")
    if request.query_params.get("sig"):
        if not _signed_link_valid(request, alert_id, action):
            return error_response(403, "bad_link", "this link is invalid or has expired")
        actor = LINK_ACTOR
    else:
        member = authorise(request, Permission.ACT_ON_ALERTS)
        if isinstance(member, Response):
            return member
        if not is_json(request):  # session actions take JSON only: no cross-site form posts
            return error_response(415, "unsupported_media_type", "send Content-Type: application/json")
        actor = member.username
    if gateway.warroom.get("alert", alert_id) is None:
        return error_response(404, "not_found", f"no alert {alert_id!r} seen by this instance")
    command_type = AlertAck if action == LinkAction.ACK.value else AlertResolve
    return await _submit(
        gateway, command_type(actor=actor, at=gateway.clock(), alert_id=alert_id), alert_id=alert_id, action=action
    )


async def alert_link_page(request: Request) -> Response:
    """``GET`` of a signed link: a confirmation form (a GET never changes anything)."""
    alert_id, action = request.path_params["alert_id"], request.path_params["action"]
    if action not in (LinkAction.ACK.value, LinkAction.RESOLVE.value) or not _signed_link_valid(
        request, alert_id, action
    ):
        return HTMLResponse(
            "<!doctype html><title>Link expired</title><p>This link is invalid or has expired.</p>",
            status_code=404,
            headers={"Referrer-Policy": "no-referrer"},
        )
    target = f"/api/v1/alerts/{quote(alert_id, safe='')}/{action}?{request.url.query}"
    verb = "Acknowledge" if action == LinkAction.ACK.value else "Resolve"
    page = (
        "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{verb} alert</title><h1>{verb} alert {html.escape(alert_id)}?</h1>"
        f"<form method=post action='{html.escape(target, quote=True)}'><button type=submit>{verb}</button></form>"
    )
    return HTMLResponse(
        page, headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    )


def _creator(
    permission: Permission, body: type[_Body], create: Callable[[str, datetime, _Body], tuple[Command, dict[str, str]]]
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint that publishes the command ``create`` makes of the actor, the time and the
    JSON body (as ``body``), answering with the ids it returns besides the command's."""

    async def endpoint(request: Request) -> Response:
        gateway = gateway_of(request)
        authorised = await authorised_body(request, permission, body)
        if isinstance(authorised, Response):
            return authorised
        member, value = authorised
        command, echo = create(member.username, gateway.clock(), value)
        return await _submit(gateway, command, **echo)

    return endpoint


def _new_silence(actor: str, at: datetime, spec: SilenceBody) -> tuple[Command, dict[str, str]]:
    return SilenceCreate(actor=actor, at=at, **spec.model_dump()), {}


def _new_disruption(actor: str, at: datetime, zone: ZoneBody) -> tuple[Command, dict[str, str]]:
    disruption_id = f"dz-{uuid.uuid4().hex[:16]}"
    return DisruptionCreate(actor=actor, at=at, disruption_id=disruption_id, zone=zone), {
        "disruption_id": disruption_id
    }


create_silence = _creator(Permission.ACT_ON_ALERTS, SilenceBody, _new_silence)
create_disruption = _creator(Permission.MANAGE_DISRUPTIONS, ZoneBody, _new_disruption)


def _ender(
    permission: Permission, kind: str, unknown: str, end: Callable[..., Command], echo_id: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint that publishes ``end`` for the ``kind`` item named by the path's
    ``<kind>_id`` when this instance knows it; 404 with ``unknown`` (formatted with the id) when not."""

    async def endpoint(request: Request) -> Response:
        gateway = gateway_of(request)
        member = authorise(request, permission)
        if isinstance(member, Response):
            return member
        ids = {f"{kind}_id": request.path_params[f"{kind}_id"]}
        if gateway.warroom.get(kind, ids[f"{kind}_id"]) is None:
            return error_response(404, "not_found", unknown.format(repr(ids[f"{kind}_id"])))
        command = end(actor=member.username, at=gateway.clock(), **ids)
        return await _submit(gateway, command, **(ids if echo_id else {}))

    return endpoint


expire_silence = _ender(Permission.ACT_ON_ALERTS, "silence", "no silence {} seen by this instance", SilenceExpire)


delete_disruption = _ender(
    Permission.MANAGE_DISRUPTIONS, "disruption", "no active disruption {}", DisruptionDelete, echo_id=True
)
