"""Staff login sessions and authorisation by role.

``POST /api/v1/login`` checks the user file and stores, in Starlette's signed session cookie
(HttpOnly, SameSite=Strict, Secure behind https), the user name, a random session id, the
sign-in time and the user's fingerprint (password, role, session epoch). A session counts
only while all of these hold: it is younger than ``session_max_age_s`` (from sign-in, however
active), its id was not signed out (:mod:`dashboard.gateway.session_guard`, shared by every
instance), and the user's entry in the staff file still has the same fingerprint, so a
password change, a role change or removal, or a raised ``session_epoch`` ends it.

Logins are throttled per client address (the peer, or ``X-Forwarded-For`` from a configured
proxy only) and per account name, whatever the address.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from dashboard.gateway.publisher import PublishError
from dashboard.gateway.responses import BodyError, M, error_response, json_response, read_model
from dashboard.gateway.session_guard import STATE_KEY, SessionGuard, SessionRevoke, session_digest
from dashboard.gateway.staff import Permission, StaffMember
from stream.topics import CONTROL

if TYPE_CHECKING:
    from dashboard.gateway.runtime import Gateway

log = logging.getLogger(__name__)
audit_log = logging.getLogger("orderradar.audit")

SESSION_KEY = "staff"
COOKIE_NAME = "orderradar_session"
#: Tolerated clock difference between instances for a session's sign-in time.
CLOCK_SKEW_S = 60


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


def guard_of(connection: HTTPConnection) -> SessionGuard:
    """The instance's session guard (lifespan state, set by :mod:`dashboard.gateway.edge`)."""
    guard = getattr(connection.state, STATE_KEY, None)
    if not isinstance(guard, SessionGuard):
        raise RuntimeError("no session guard: serve the app through dashboard.gateway.server.uvicorn_config")
    return guard


def _session_data(connection: HTTPConnection) -> tuple[str, str, str, int] | None:
    data = connection.session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    user, sid, fingerprint, at = data.get("user"), data.get("sid"), data.get("fp"), data.get("at")
    if not (
        isinstance(user, str) and isinstance(sid, str) and sid and isinstance(fingerprint, str) and isinstance(at, int)
    ):
        return None  # includes cookies from before sessions had ids
    return user, sid, fingerprint, at


def staff_of(connection: HTTPConnection) -> StaffMember | None:
    """The signed-in staff member, with their current role (``None``: anonymous)."""
    session = _session_data(connection)
    if session is None:
        return None
    user, sid, fingerprint, at = session
    gateway = gateway_of(connection)
    age_s = gateway.clock().timestamp() - at
    if not -CLOCK_SKEW_S <= age_s <= gateway.options.session_max_age_s:
        return None
    if guard_of(connection).revocations.revoked(session_digest(sid)):
        return None
    member = gateway.staff.member(user)
    if member is None or not hmac.compare_digest(member.fingerprint, fingerprint):
        return None
    return member


def authorise(connection: HTTPConnection, permission: Permission) -> StaffMember | Response:
    """The staff member allowed to do ``permission``, or the 401/403 response to send."""
    member = staff_of(connection)
    if member is None:
        return error_response(401, "unauthenticated", "sign in first: POST /api/v1/login")
    if not member.can(permission):
        audit_log.info(
            "audit actor=%s action=%s subject=%s outcome=denied role=%s",
            member.username,
            permission.value,
            connection.url.path,
            member.role.value,
        )
        return error_response(403, "forbidden", f"role {member.role.value} may not {permission.value}")
    return member


async def authorised_body(request: Request, permission: Permission, model: type[M]) -> tuple[StaffMember, M] | Response:
    """The staff member allowed to do ``permission`` and the JSON body as ``model``, or the
    401/403 (checked first) or 415/422 response to send."""
    member = authorise(request, permission)
    if isinstance(member, Response):
        return member
    try:
        return member, await read_model(request, model)
    except BodyError as exc:
        return exc.response


async def login(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        credentials = await read_model(request, Credentials)
    except BodyError as exc:
        return exc.response
    guard = guard_of(request)
    address = client_address(request)
    account = credentials.username.casefold()
    now = gateway.monotonic()
    decision = gateway.login_limiter.take(address, now)
    if decision.allowed:
        decision = guard.account_limiter.take(account, now)
    if not decision.allowed:
        gateway.metrics.logins.inc(outcome="throttled")
        return error_response(
            429,
            "too_many_attempts",
            "too many login attempts; slow down",
            {"Retry-After": str(max(1, round(decision.retry_after_s)))},
        )
    member = await asyncio.to_thread(gateway.staff.authenticate, credentials.username, credentials.password)
    if member is None:
        gateway.metrics.logins.inc(outcome="denied")
        await gateway.audit.record(credentials.username, "login", outcome="denied", address=address)
        return error_response(401, "invalid_credentials", "unknown user name or wrong password")
    guard.account_limiter.refund(account)
    request.session.clear()
    request.session[SESSION_KEY] = {
        "user": member.username,
        "sid": secrets.token_urlsafe(32),
        "fp": member.fingerprint,
        "at": int(gateway.clock().timestamp()),
    }
    gateway.metrics.logins.inc(outcome="ok")
    await gateway.audit.record(member.username, "login", address=address)
    return json_response({"username": member.username, "role": member.role.value})


async def logout(request: Request) -> Response:
    """Ends the session on every instance: revoked here at once, and published for the others.

    If the revocation cannot be published the cookie is kept, so the client can retry (this
    instance already refuses it).
    """
    gateway = gateway_of(request)
    member = staff_of(request)
    session = _session_data(request)
    if session is not None:
        user, sid, _, at = session
        until = datetime.fromtimestamp(at, UTC) + timedelta(seconds=gateway.options.session_max_age_s)
        revoke = SessionRevoke(actor=user, at=gateway.clock(), session=session_digest(sid), until=until)
        guard_of(request).revocations.revoke(revoke.session, revoke.until)
        try:
            await gateway.publisher.publish_json(CONTROL, revoke.target, revoke.to_record())
        except PublishError as exc:
            log.warning("sign-out of %s not shared with the other instances: %s", user, exc)
            return error_response(
                503,
                "broker_unavailable",
                "signed out on this server only; try again to sign out everywhere",
                {"Retry-After": "5"},
            )
    request.session.clear()
    if member is not None:
        await gateway.audit.record(member.username, "logout")
    return Response(status_code=204)


async def whoami(request: Request) -> Response:
    member = staff_of(request)
    if member is None:
        return error_response(401, "unauthenticated", "not signed in")
    return json_response({"username": member.username, "role": member.role.value})
