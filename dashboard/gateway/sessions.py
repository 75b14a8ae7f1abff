"""Staff login sessions and authorisation by role.

``POST /api/v1/login`` checks the user file and stores the user name in Starlette's signed
session cookie (HttpOnly, SameSite=Strict, Secure behind https). Every request re-reads the
user's role from the user file, so removing a user or changing a role takes effect at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from dashboard.gateway.responses import BodyError, error_response, json_response, read_model
from dashboard.gateway.staff import Permission, StaffMember

if TYPE_CHECKING:
    from dashboard.gateway.runtime import Gateway

audit_log = logging.getLogger("orderradar.audit")

SESSION_KEY = "staff"
COOKIE_NAME = "orderradar_session"


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def gateway_of(connection: HTTPConnection) -> Gateway:
    """The gateway serving this request (lifespan state, so mounted apps see it too)."""
    gateway: Gateway = connection.state.gateway
    return gateway


def client_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client is not None else "unknown"


def staff_of(connection: HTTPConnection) -> StaffMember | None:
    """The signed-in staff member, with their current role (``None``: anonymous)."""
    data = connection.session.get(SESSION_KEY)
    if not isinstance(data, dict) or not isinstance(data.get("user"), str):
        return None
    return gateway_of(connection).staff.member(data["user"])


def authorise(connection: HTTPConnection, permission: Permission) -> StaffMember | Response:
    """The staff member allowed to do ``permission``, or the 401/403 response to send."""
    member = staff_of(connection)
    if member is None:
        return error_response(401, "unauthenticated", "sign in first: POST /api/v1/login")
    if not member.can(permission):
        audit_log.info("audit actor=%s action=%s subject=%s outcome=denied role=%s",
                       member.username, permission.value, connection.url.path, member.role.value)
        return error_response(403, "forbidden", f"role {member.role.value} may not {permission.value}")
    return member


async def login(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        credentials = await read_model(request, Credentials)
    except BodyError as exc:
        return exc.response
    address = client_address(request)
    decision = gateway.login_limiter.take(address, gateway.monotonic())
    if not decision.allowed:
        gateway.metrics.logins.inc(outcome="throttled")
        return error_response(429, "too_many_attempts", "too many login attempts; slow down",
                              {"Retry-After": str(max(1, round(decision.retry_after_s)))})
    member = await asyncio.to_thread(gateway.staff.authenticate, credentials.username, credentials.password)
    if member is None:
        gateway.metrics.logins.inc(outcome="denied")
        await gateway.audit.record(credentials.username, "login", outcome="denied", address=address)
        return error_response(401, "invalid_credentials", "unknown user name or wrong password")
    request.session.clear()
    request.session[SESSION_KEY] = {"user": member.username, "at": gateway.clock().isoformat()}
    gateway.metrics.logins.inc(outcome="ok")
    await gateway.audit.record(member.username, "login", address=address)
    return json_response({"username": member.username, "role": member.role.value})


async def logout(request: Request) -> Response:
    member = staff_of(request)
    request.session.clear()
    if member is not None:
        await gateway_of(request).audit.record(member.username, "logout")
    return Response(status_code=204)


async def whoami(request: Request) -> Response:
    member = staff_of(request)
    if member is None:
        return error_response(401, "unauthenticated", "not signed in")
    return json_response({"username": member.username, "role": member.role.value})
