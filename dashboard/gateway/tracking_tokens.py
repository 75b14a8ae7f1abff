"""Customer tracking tokens: issue, revoke and look up, from the ``tracking-tokens`` records.

A token is 256 random bits (``secrets.token_urlsafe(32)``) that opens one order until it
expires or is revoked. Only its SHA-256 is ever stored or published; every web instance
replays the whole ``tracking-tokens`` topic, so a link works on all of them.

Lookups are constant-time-ish: the token is hashed, looked up in a dict, and a miss does
the same comparisons against a dummy grant, so unknown, expired, revoked and other
orders' tokens all answer ``None`` in the same time. Pure: ``now`` comes in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

TOKEN_BYTES = 32
#: Longest string hashed as a token; longer input is cut (the lookup still costs the same).
_MAX_TOKEN_CHARS = 256
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class TokenIssued(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["tracking_link_issued"] = "tracking_link_issued"
    token_sha256: Sha256Hex
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    expires_at: AwareDatetime
    issued_by: str
    at: AwareDatetime


class TokenRevoked(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["tracking_link_revoked"] = "tracking_link_revoked"
    token_sha256: Sha256Hex
    revoked_by: str
    at: AwareDatetime


TokenRecord = TokenIssued | TokenRevoked


def parse_record(obj: Any) -> TokenRecord:
    """Validate one ``tracking-tokens`` record (raises ``ValueError`` naming the problem)."""
    kind = obj.get("type") if isinstance(obj, dict) else None
    if kind == "tracking_link_issued":
        return TokenIssued.model_validate(obj)
    if kind == "tracking_link_revoked":
        return TokenRevoked.model_validate(obj)
    raise ValueError(f"unknown tracking-token record type {kind!r}")


def token_digest(token: str) -> str:
    return hashlib.sha256(token[:_MAX_TOKEN_CHARS].encode("utf-8", "surrogatepass")).hexdigest()


def token_id_of(token_or_id: str) -> str:
    """A revocation may name the token itself or its public id (the SHA-256 hex)."""
    return token_or_id if _HEX64.match(token_or_id) else token_digest(token_or_id)


@dataclass
class _Grant:
    digest: str
    order_id: str
    expires_at: datetime
    issued_by: str
    revoked: bool = False


_DUMMY = _Grant("0" * 64, "\x00", datetime.min.replace(tzinfo=UTC), "", revoked=True)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    record: TokenIssued


class TrackingTokens:
    """The grants this instance knows, by token digest."""

    def __init__(self) -> None:
        self._grants: dict[str, _Grant] = {}

    def __len__(self) -> int:
        return len(self._grants)

    def issue(self, order_id: str, ttl: timedelta, issued_by: str, now: datetime) -> IssuedToken:
        """A new token and the record to publish; the caller applies it once published."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        record = TokenIssued(
            token_sha256=token_digest(token), order_id=order_id, expires_at=now + ttl, issued_by=issued_by, at=now
        )
        return IssuedToken(token, record)

    def revocation(
        self, token_or_id: str, revoked_by: str, now: datetime, *, only_own: bool = False
    ) -> TokenRevoked | None:
        """The record revoking a known, unrevoked token (``None`` when there is none).

        ``only_own``: the caller (a source) may revoke only links it issued itself; any
        other link answers ``None`` too, so a source learns nothing about others' links.
        """
        grant = self._grants.get(token_id_of(token_or_id))
        if grant is None or grant.revoked or (only_own and grant.issued_by != revoked_by):
            return None
        return TokenRevoked(token_sha256=grant.digest, revoked_by=revoked_by, at=now)

    def apply(self, record: TokenRecord) -> None:
        """Idempotent: replaying the topic twice gives the same grants."""
        if isinstance(record, TokenIssued):
            known = self._grants.get(record.token_sha256)
            if known is None:
                # interned: a few issuers share millions of grants
                self._grants[record.token_sha256] = _Grant(
                    record.token_sha256, record.order_id, record.expires_at, sys.intern(record.issued_by)
                )
        else:
            grant = self._grants.get(record.token_sha256)
            if grant is not None:
                grant.revoked = True

    def lookup(self, token: str, now: datetime, order_id: str | None = None) -> str | None:
        """The order ``token`` opens now, or ``None`` (unknown, expired, revoked, other order)."""
        digest = token_digest(token)
        found = self._grants.get(digest)
        grant = found if found is not None else _DUMMY
        same = hmac.compare_digest(grant.digest, digest)
        wanted = order_id if order_id is not None else grant.order_id
        same_order = hmac.compare_digest(grant.order_id.encode(), wanted.encode())
        live = not grant.revoked and now < grant.expires_at
        return grant.order_id if (found is not None and same and same_order and live) else None

    def prune(self, now: datetime, keep_revoked_for: timedelta = timedelta(days=1)) -> int:
        """Forget grants that can never open anything again; returns how many."""
        dead = [d for d, g in self._grants.items() if g.expires_at + keep_revoked_for < now]
        for digest in dead:
            del self._grants[digest]
        return len(dead)
