"""Posting JSON to a webhook and classifying the answer, shared by the HTTP channels.

Retryable: network errors, timeouts, 408, 429 and 5xx (honouring ``Retry-After``).
Not retryable: other 3xx/4xx. Error texts carry the status and a redacted, truncated
body, never the URL.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from alerting.backoff import parse_retry_after
from alerting.channels.base import Channel, Delivery, ReceiverBase, require_secret
from alerting.decisions import Notification
from alerting.redaction import Redactor, install_httpx_redaction, url_secret_parts

logger = logging.getLogger(__name__)

_BODY_EXCERPT = 200


def make_client(*, timeout: float = 10.0, trust_env: bool = True) -> httpx.AsyncClient:
    """The shared client for all HTTP channels: explicit timeouts, no redirects."""
    install_httpx_redaction()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=False,
        trust_env=trust_env,
    )


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float,
    redact: Redactor,
    headers: Mapping[str, str] | None = None,
    sign: Callable[[bytes], Mapping[str, str]] | None = None,
) -> tuple[Delivery, httpx.Response | None]:
    """POST ``payload``; return the classified delivery and the response (if any).
    ``sign``: headers computed from the exact body bytes (a receiver verifies them)."""
    install_httpx_redaction()
    body = json.dumps(dict(payload), ensure_ascii=False, separators=(",", ":")).encode()
    sent = {"Content-Type": "application/json", **dict(headers or {}), **(sign(body) if sign else {})}
    try:
        response = await client.post(url, content=body, headers=sent, timeout=httpx.Timeout(timeout))
    except httpx.TimeoutException as exc:
        return Delivery(ok=False, retryable=True, error=f"timeout after {timeout:g}s ({type(exc).__name__})"), None
    except httpx.TransportError as exc:
        return Delivery(ok=False, retryable=True, error=redact(f"{type(exc).__name__}: {exc}")), None
    return classify(response, redact), response


def classify(response: httpx.Response, redact: Redactor) -> Delivery:
    status = response.status_code
    if 200 <= status < 300:
        return Delivery(ok=True, status=status)
    excerpt = redact(response.text[:_BODY_EXCERPT].strip())
    error = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    if status == 429 or status == 408 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"), _response_time(response))
        return Delivery(ok=False, retryable=True, status=status, error=error, retry_after=retry_after)
    return Delivery(ok=False, retryable=False, status=status, error=error)


def _response_time(response: httpx.Response) -> datetime:
    """Reference time for an HTTP-date Retry-After: the server's Date, else our clock."""
    date = response.headers.get("date")
    if date:
        try:
            parsed = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return datetime.now(UTC)


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object in a response body, or ``None`` when it is not one."""
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def robot_errcode(
    response: httpx.Response, delivery: Delivery, retryable: frozenset[int], redact: Redactor
) -> Delivery:
    """Chat robots (DingTalk, WeCom) answer HTTP 200 and report failure in ``errcode``."""
    body = json_body(response)
    if body is None:
        return Delivery(ok=False, retryable=True, status=delivery.status, error="unexpected response body (not JSON)")
    code = body.get("errcode", 0)
    if code == 0:
        return delivery
    message = redact(str(body.get("errmsg", ""))[:_BODY_EXCERPT])
    return Delivery(ok=False, retryable=code in retryable, status=delivery.status, error=f"errcode {code}: {message}")


class UrlSecretConfig(ReceiverBase):
    """A receiver whose only credential is its URL (the chat robots' incoming webhooks)."""

    #: Secret holding the webhook URL (its path or query is the credential).
    url_secret: str

    #: The channel class of this robot type.
    channel_class: ClassVar[type[UrlSecretChannel]]

    def secret_refs(self) -> tuple[str, ...]:
        return (self.url_secret,)

    def channel(self, name: str, secrets: dict[str, str], client: httpx.AsyncClient) -> Channel:
        return self.channel_class(name, self, secrets, client)


class UrlSecretChannel(ABC):
    """Posts JSON to the secret URL of a :class:`UrlSecretConfig`, redacting that URL
    from every error; a subclass builds the payload and reads the answer in ``send``."""

    def __init__(self, name: str, config: UrlSecretConfig, secrets: dict[str, str], client: httpx.AsyncClient) -> None:
        self._name = name
        self._url = require_secret(name, secrets, config.url_secret)
        self._timeout = config.timeout.total_seconds()
        self._client = client
        self._redact = Redactor([*url_secret_parts(self._url)])

    @property
    def name(self) -> str:
        return self._name

    @abstractmethod
    async def send(self, notification: Notification) -> Delivery: ...

    async def _post(self, payload: Mapping[str, Any]) -> tuple[Delivery, httpx.Response | None]:
        return await post_json(self._client, self._url, payload, timeout=self._timeout, redact=self._redact)
