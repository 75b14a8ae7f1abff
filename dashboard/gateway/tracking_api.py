"""Issuing and revoking customer tracking links.

``POST /api/v1/tracking-links`` ``{"order_id": "...", "ttl": <seconds, optional>}`` ->
``201 {"token", "url", "token_id", "order_id", "expires_at"}``. ``DELETE
/api/v1/tracking-links/{token or token_id}`` -> ``204`` (``404`` when unknown or already
revoked). Allowed for staff managers and on-call, or a source with its API key (an OMS
issuing links for its order e-mails). The grant is published on ``tracking-tokens``
(SHA-256 only) and applied locally before answering, so it works here at once and on the
other instances as soon as they read it.

Scope: a link is only issued for an order in this instance's order cache, i.e. with a
recent ``order-updates`` record, which every instance reads in full (``404 unknown_order``
otherwise, also right after its first event, until the worker's update arrives). A source
may issue links only for orders whose timeline has its events, and revoke only links it
issued; staff may revoke any link. A source is told ``404`` for an order it may not use,
exactly as for one that does not exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import Response

from dashboard.gateway.api_keys import authenticated_source, has_credentials
from dashboard.gateway.publisher import PublishError
from dashboard.gateway.responses import BodyError, error_response, json_response, read_model
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.sessions import authorise, gateway_of
from dashboard.gateway.staff import Permission
from dashboard.gateway.tracking_tokens import TokenRecord
from stream.topics import TRACKING_TOKENS


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/-]+$")]
    ttl: int | None = Field(default=None, ge=60, description="seconds; capped at tracking_ttl_max_s")


@dataclass(frozen=True)
class Actor:
    #: Recorded as ``issued_by``/``revoked_by``: ``source:<name>`` or the staff user name.
    name: str
    #: The source's name when the caller authenticated with an API key.
    source: str | None = None


def _actor(request: Request) -> Actor | Response:
    """The calling source (API key) or staff member, or the error response."""
    gateway = gateway_of(request)
    if has_credentials(request.headers):
        source = authenticated_source(request.headers, gateway.settings.ingest_keys)
        if source is None:
            return error_response(401, "unauthenticated", "unknown source or wrong API key")
        decision = gateway.ingest_limiter.take(source, gateway.monotonic())
        if not decision.allowed:
            return error_response(
                429,
                "rate_limited",
                f"source {source} is over its request rate",
                {"Retry-After": str(max(1, math.ceil(decision.retry_after_s)))},
            )
        return Actor(f"source:{source}", source)
    member = authorise(request, Permission.ISSUE_TRACKING_LINKS)
    return member if isinstance(member, Response) else Actor(member.username)


def public_base(request: Request) -> str:
    configured = gateway_of(request).settings.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


async def _publish_token_change(gateway: Gateway, change: TokenRecord) -> Response | None:
    """Publish a token grant or revocation (sealed) so every instance applies it, then apply
    it here; a 503 response when the broker does not take it (nothing is applied then)."""
    try:
        await gateway.publisher.publish_json(
            TRACKING_TOKENS, change.token_sha256, gateway.token_seal.seal(change.model_dump(mode="json"))
        )
    except PublishError as exc:
        return error_response(503, "broker_unavailable", str(exc), {"Retry-After": "5"})
    gateway.tokens.apply(change)
    return None


async def issue_link(request: Request) -> Response:
    gateway = gateway_of(request)
    actor = _actor(request)
    if isinstance(actor, Response):
        return actor
    try:
        body = await read_model(request, LinkRequest)
    except BodyError as exc:
        return exc.response
    order = gateway.orders.get(body.order_id)
    if order is None or (actor.source is not None and actor.source not in order.sources()):
        whose = f" with events from source {actor.source!r}" if actor.source is not None else ""
        return error_response(
            404,
            "unknown_order",
            f"no order {body.order_id!r}{whose} among the orders with "
            f"recent updates (a new order counts once the worker has processed its first event)",
        )
    issued = gateway.tokens.issue(body.order_id, gateway.tracking_ttl(body.ttl), actor.name, gateway.clock())
    record = issued.record
    failed = await _publish_token_change(gateway, record)
    if failed is not None:
        return failed
    await gateway.audit.record(
        actor.name,
        "tracking_link_issue",
        body.order_id,
        token_id=record.token_sha256,
        expires_at=record.expires_at.isoformat(),
    )
    return json_response(
        {
            "token": issued.token,
            "url": f"{public_base(request)}/t/{issued.token}",
            "token_id": record.token_sha256,
            "order_id": record.order_id,
            "expires_at": record.expires_at.isoformat(),
        },
        201,
    )


async def revoke_link(request: Request) -> Response:
    gateway = gateway_of(request)
    actor = _actor(request)
    if isinstance(actor, Response):
        return actor
    revocation = gateway.tokens.revocation(
        request.path_params["token"], actor.name, gateway.clock(), only_own=actor.source is not None
    )
    if revocation is None:
        return error_response(404, "not_found", "no such active tracking link")
    failed = await _publish_token_change(gateway, revocation)
    if failed is not None:
        return failed
    await gateway.audit.record(actor.name, "tracking_link_revoke", revocation.token_sha256)
    return Response(status_code=204)
