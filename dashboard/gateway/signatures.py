"""HMAC-SHA256 request signatures over ``timestamp.body`` (Stripe / Standard Webhooks style).

A source signs ``f"{timestamp}.".encode() + body`` with its secret and sends
``X-Signature-Timestamp: <unix seconds>`` and ``X-Signature: sha256=<hex>`` (several
comma-separated signatures are accepted, for key rotation). Pure: ``now`` comes in.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

SCHEME = "sha256"


class SignatureVerdict(StrEnum):
    VALID = "valid"
    MISSING = "missing"
    MALFORMED = "malformed"
    STALE = "stale"
    MISMATCH = "mismatch"

    @property
    def detail(self) -> str:
        return _DETAILS[self]


_DETAILS = {
    SignatureVerdict.VALID: "signature is valid",
    SignatureVerdict.MISSING: "X-Signature and X-Signature-Timestamp headers are required for this source",
    SignatureVerdict.MALFORMED: "X-Signature must be sha256=<hex> and X-Signature-Timestamp Unix seconds",
    SignatureVerdict.STALE: "X-Signature-Timestamp is too far from the server's clock",
    SignatureVerdict.MISMATCH: "signature does not match the body",
}


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(
    secret: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    tolerance_s: float,
) -> SignatureVerdict:
    """Check one request. ``now`` is Unix seconds; staleness is checked both ways."""
    if not timestamp_header or not signature_header:
        return SignatureVerdict.MISSING
    try:
        timestamp = int(timestamp_header.strip())
    except ValueError:
        return SignatureVerdict.MALFORMED
    candidates = []
    for part in signature_header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme == SCHEME and value:
            candidates.append(value.strip().lower())
    if not candidates:
        return SignatureVerdict.MALFORMED
    if abs(now - timestamp) > tolerance_s:
        return SignatureVerdict.STALE
    expected = sign(secret, timestamp, body).partition("=")[2].encode()
    # Compare against every candidate (no early exit) so timing does not tell which matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.encode())
    return SignatureVerdict.VALID if matched else SignatureVerdict.MISMATCH
