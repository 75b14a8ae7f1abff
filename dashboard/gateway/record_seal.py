"""Records that only the web tier may write, sealed with an HMAC the web tier alone can make.

A ``tracking-tokens`` record grants access to an order, so anyone able to produce to that
topic could otherwise mint working tracking links. The broker's ACLs allow only the web
principal to write it (``docker-compose.yml``); the seal is the second lock, for a broker
without ACLs or a leaked worker credential: every record carries ``seal``, an HMAC-SHA256
over its canonical JSON (sorted keys, without ``seal``) with a key derived from the
session secret and the topic, which only the web tier holds. A record without a valid seal
raises :class:`UnsealedRecord` (a ``ValueError``: the reader counts and logs it, never
applies it).

Rotating the session secret therefore also ends every outstanding tracking link.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
from pydantic import SecretStr

SEAL_FIELD = "seal"
_LABEL = b"orderradar record seal v1\x00"


class UnsealedRecord(ValueError):
    """The record's seal is missing or wrong: it was not written by the web tier."""


def _canonical(record: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in record.items() if k != SEAL_FIELD}, option=orjson.OPT_SORT_KEYS)


class RecordSeal:
    """Seals and opens the records of one topic."""

    def __init__(self, secret: SecretStr, topic: str) -> None:
        # A key per topic: a seal from one topic never opens a record of another.
        self._key = hmac.new(secret.get_secret_value().encode(), _LABEL + topic.encode(), hashlib.sha256).digest()

    def _mac(self, record: dict[str, Any]) -> str:
        return hmac.new(self._key, _canonical(record), hashlib.sha256).hexdigest()

    def seal(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` with its ``seal`` field."""
        return {**record, SEAL_FIELD: self._mac(record)}

    def open(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` without its seal, once the seal is verified; raises :class:`UnsealedRecord`."""
        seal = record.get(SEAL_FIELD)
        if not isinstance(seal, str):
            raise UnsealedRecord("record has no seal (not written by the web tier)")
        if not hmac.compare_digest(seal.encode(), self._mac(record).encode()):
            raise UnsealedRecord("record seal does not verify (not written by the web tier, or another secret)")
        return {k: v for k, v in record.items() if k != SEAL_FIELD}
