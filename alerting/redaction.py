"""Keeping secrets (webhook tokens, robot keys, SMTP passwords) out of logs and errors.

Robot webhooks (Slack, DingTalk, WeCom) carry their credential in the URL, so a whole
webhook URL is treated as secret: only scheme, host and port are ever shown, as
Alertmanager's ``RedactURL`` does. httpx logs every request URL at INFO, hence the
filter for its logger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import httpx

REDACTED = "<secret>"


def redact_url(url: str | httpx.URL) -> str:
    """``https://oapi.dingtalk.com/<redacted>``: no path, query, fragment or userinfo."""
    parts = urlsplit(str(url))
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/{REDACTED}"


#: Path segments at least this long are treated as credentials (tokens, robot keys).
_TOKEN_LIKE = 8


def url_secret_parts(url: str) -> list[str]:
    """A secret URL and the pieces of it a server might echo back on their own:
    path, query values, long path segments and the userinfo password."""
    parts = urlsplit(url)
    pieces = [url, parts.path, parts.query]
    pieces += [value for _, value in parse_qsl(parts.query)]
    pieces += [segment for segment in parts.path.split("/") if len(segment) >= _TOKEN_LIKE]
    if parts.password:
        pieces.append(parts.password)
    return [p for p in pieces if p and p != "/"]


class Redactor:
    """Replaces every known secret, plain or URL-encoded, in a text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) < 4:
                # Too short to redact without mangling ordinary text; config rejects these.
                continue
            forms.update({secret, quote(secret, safe=""), quote_plus(secret)})
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text


class HttpxUrlFilter(logging.Filter):
    """Rewrites the request URL in httpx's ``HTTP Request: ...`` log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def install_httpx_redaction() -> None:
    """Attach :class:`HttpxUrlFilter` to the ``httpx`` logger once (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, HttpxUrlFilter) for f in logger.filters):
        logger.addFilter(HttpxUrlFilter())
