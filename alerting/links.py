"""Signed one-click ack/resolve links.

The signature is HMAC-SHA256 over ``alert_id``, ``action`` and the expiry (Unix
seconds), keyed by a secret the shell passes in. Verification is constant-time
(``hmac.compare_digest``) and rejects expired links and links whose expiry is more than
:data:`MAX_LINK_LIFETIME` ahead of the verifier's clock (whoever holds the secret cannot mint
an everlasting link, and a leaked one dies within a week). The web tier's handler for
``/api/v1/alerts/{alert_id}/{action}?expires=..&sig=..`` calls :func:`verify_link`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import quote, urlencode

#: The longest a link may live; the verifier refuses expiries further ahead than this.
MAX_LINK_LIFETIME = timedelta(days=7)


class LinkAction(StrEnum):
    ACK = "ack"
    RESOLVE = "resolve"


def _message(alert_id: str, action: str, expires: int) -> bytes:
    # Newline-separated: neither an alert id nor an action can contain one, so fields
    # cannot slide into each other.
    return f"{alert_id}\n{action}\n{expires}".encode()


def sign_link(secret: bytes, alert_id: str, action: LinkAction | str, expires: int) -> str:
    """Hex HMAC-SHA256 signature of one link."""
    return hmac.new(secret, _message(alert_id, str(action), expires), hashlib.sha256).hexdigest()


def verify_link(secret: bytes, alert_id: str, action: str, expires: int, signature: str, now: datetime) -> bool:
    """True when ``signature`` is valid for these fields and ``now`` is within the link's
    lifetime: before ``expires``, and ``expires`` at most :data:`MAX_LINK_LIFETIME` ahead."""
    if action not in {a.value for a in LinkAction} or "\n" in alert_id:
        return False
    expected = sign_link(secret, alert_id, action, expires)
    valid = hmac.compare_digest(expected.encode(), signature.encode())
    now_s = now.timestamp()
    return valid and now_s < expires <= now_s + MAX_LINK_LIFETIME.total_seconds()


@dataclass(frozen=True)
class LinkSigner:
    """Builds signed links; the engine is given one (links are optional)."""

    secret: bytes
    base_url: str

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ValueError("link secret must be at least 32 bytes")

    def __repr__(self) -> str:
        return f"LinkSigner(base_url={self.base_url!r}, secret=<secret>)"

    def link(self, alert_id: str, action: LinkAction, expires_at: datetime) -> str:
        """The link; it works until ``expires_at`` if that is within :data:`MAX_LINK_LIFETIME`
        of when it is used (the engine's ``link_ttl`` should not exceed it)."""
        expires = int(expires_at.timestamp())
        query = urlencode({"expires": expires, "sig": sign_link(self.secret, alert_id, action, expires)})
        return f"{self.base_url.rstrip('/')}/api/v1/alerts/{quote(alert_id, safe='')}/{action.value}?{query}"
