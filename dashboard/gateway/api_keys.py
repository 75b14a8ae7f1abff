"""Per-source API keys (``Settings.ingest_keys``): who is calling, checked in constant time.

A source sends ``X-Source: <name>`` and its key as ``Authorization: Bearer <key>`` or
``X-Api-Key: <key>``. An unknown source costs the same comparison as a known one.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from pydantic import SecretStr
from starlette.datastructures import Headers

_DUMMY_KEY = b"\x00" * 32


def presented_key(headers: Headers) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def authenticated_source(headers: Headers, keys: Mapping[str, SecretStr]) -> str | None:
    """The ``X-Source`` name when its key matches, else ``None``."""
    source = headers.get("x-source", "").strip()
    key = presented_key(headers)
    expected = keys.get(source)
    secret = expected.get_secret_value().encode() if expected is not None else _DUMMY_KEY
    matches = hmac.compare_digest(secret, (key or "").encode())
    return source if expected is not None and key is not None and matches else None


def has_credentials(headers: Headers) -> bool:
    return presented_key(headers) is not None
