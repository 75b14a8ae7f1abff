"""Keeping secrets out of logs and error texts, in every process (web, worker, ``orderradar up``).

Two kinds of secret reach text:

* **Configured secrets** (webhook URLs and tokens, robot keys, SMTP and InfluxDB passwords,
  API keys, the session secret): their values are known, so a :class:`Redactor` replaces
  each one, plain or URL-encoded. Robot webhooks carry their credential in the URL, so a
  whole webhook URL is treated as secret: :func:`redact_url` shows only scheme, host and
  port, as Alertmanager's ``RedactURL`` does.
* **Secrets that arrive with requests** (tracking tokens in ``/t/TOKEN`` or ``?token=``,
  alert-link signatures, session cookies, ``Authorization``/``X-Api-Key`` headers, URL
  passwords): unknown in advance, so :func:`redact` recognises them by shape.

:func:`install_log_redaction` applies both to every log record the process creates,
whatever logger or handler it goes through (uvicorn's access and error loggers, the
``websockets`` debug lines, Faust's own handlers, exception tracebacks), and to uncaught
exceptions printed by the interpreter. ``orderradar`` calls it once per command.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import httpx

REDACTED = "<redacted>"

#: Query parameters, JSON keys and headers whose values are credentials.
_SECRET_PARAMS = (
    "token",
    "access_token",
    "refresh_token",
    "sig",
    "signature",
    "key",
    "api_key",
    "apikey",
    "p",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
)
_SECRET_FIELDS = (
    "token",
    "access_token",
    "refresh_token",
    "sig",
    "signature",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "smtp_password",
    "session_secret",
)
_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-signature")

#: (pattern, replacement) pairs, applied in order; each keeps the name and hides the value.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Tracking links: /t/TOKEN (but not the page's /t/assets/...) and the revoke path.
    (re.compile(r"(/t/(?!assets/)|/api/v1/tracking-links/)[^/?#\s\"'<>]+"), rf"\1{REDACTED}"),
    # ?token=..., &sig=..., ?key=... (tile and InfluxDB credentials too).
    (re.compile(rf"(?i)([?&](?:{'|'.join(_SECRET_PARAMS)})=)[^&#\s\"'<>]+"), rf"\1{REDACTED}"),
    # "token": "..." in JSON and dict reprs (a subscribe message in a frame log).
    (re.compile(rf"(?i)([\"'](?:{'|'.join(_SECRET_FIELDS)})[\"']\s*:\s*b?[\"'])[^\"']+"), rf"\1{REDACTED}"),
    # Header lines ("Cookie: a=b") and header tuples/dicts ("('cookie', 'a=b')").
    (
        re.compile(rf"(?i)\b((?:{'|'.join(_SECRET_HEADERS)})(?::[ \t]*|[\"']\s*[:,]\s*b?[\"']))[^\"'\r\n]+"),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {REDACTED}"),
    (re.compile(r"(orderradar_session=)[^;,\s\"'<>]+"), rf"\1{REDACTED}"),
    # scheme://user:password@host
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@\"']*:)[^@/\s\"']+(@)"), rf"\1{REDACTED}\2"),
)


def redact(text: str) -> str:
    """``text`` with every request-borne secret (by shape) replaced by ``<redacted>``."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


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


def secret_forms(secret: str) -> list[str]:
    """What to hide for one configured secret: the value, URL pieces when it is a URL."""
    return url_secret_parts(secret) if "://" in secret else [secret]


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


class LogRedaction:
    """The redaction every log record of this process goes through: known secrets, then shapes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(form for secret in secrets for form in secret_forms(secret))
        self._known = Redactor(self.secrets)

    def __call__(self, text: str) -> str:
        return redact(self._known(text))

    def scrub(self, record: logging.LogRecord) -> None:
        """Rewrite ``record`` in place so no handler or formatter can show a secret.

        The message is redacted as a whole (a header name and its value may be separate
        arguments); it is replaced only when something was hidden, so formatters that
        read ``record.args`` keep working for ordinary lines. Tracebacks are formatted
        here, redacted and kept as ``exc_text`` (exception messages carry URLs).
        """
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # bad format arguments: logging reports those itself
            message = None
        if message is not None:
            clean = self(message)
            if clean != message:
                record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = self("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self(record.exc_text)
        if record.stack_info:
            record.stack_info = self(record.stack_info)


@dataclass
class _Installed:
    redaction: LogRedaction
    #: What install replaced, put back by uninstall.
    factory: Callable[..., logging.LogRecord]
    excepthook: Callable[..., Any]
    thread_excepthook: Callable[..., Any]


_installed: _Installed | None = None


def install_log_redaction(secrets: Iterable[str] = ()) -> LogRedaction:
    """Redact every log record and uncaught exception of this process from now on.

    A log-record factory rather than a handler filter: Faust replaces the root handlers
    when its worker starts, and filters on a logger do not see its children's records.
    Warnings go through logging too. Calling it again adds ``secrets`` to the known ones.
    """
    global _installed
    if _installed is not None:
        _installed.redaction = LogRedaction((*_installed.redaction.secrets, *secrets))
        return _installed.redaction
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _installed is not None:
            _installed.redaction.scrub(record)
        return record

    _installed = _Installed(LogRedaction(secrets), previous, sys.excepthook, threading.excepthook)
    logging.setLogRecordFactory(factory)
    logging.captureWarnings(True)
    sys.excepthook = _redacting_excepthook
    threading.excepthook = _redacting_thread_excepthook
    install_httpx_redaction()
    return _installed.redaction


def uninstall_log_redaction() -> None:
    """Undo :func:`install_log_redaction` (tests that install it in their own process)."""
    global _installed
    if _installed is None:
        return
    logging.setLogRecordFactory(_installed.factory)
    logging.captureWarnings(False)
    sys.excepthook = _installed.excepthook
    threading.excepthook = _installed.thread_excepthook
    _installed = None


def scrub_text(text: str) -> str:
    """``text`` as a log line of this process would be redacted (for log excerpts that are
    printed rather than logged, such as a crashed child's last lines)."""
    return _installed.redaction(text) if _installed is not None else redact(text)


def _redacting_excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(scrub_text("".join(traceback.format_exception(exc_type, exc, tb))))


def _redacting_thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(f"Exception in thread {name}:\n" + scrub_text(text))


#: Names of ``ORDERRADAR_*`` variables holding secrets, and the shortest value taken as one
#: (shorter values are numbers and flags; real secrets are validated to be longer).
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEYS?\b|_KEYS?_|SIGNING")
_MIN_ENV_SECRET = 8


def configured_secrets(values: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Secret values of a settings dump (``SecretStr`` fields, nested too) and of the
    ``ORDERRADAR_*`` variables whose names say they hold one (alert channel secrets,
    gateway signing keys, passwords)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if hasattr(value, "get_secret_value"):
            found.append(str(value.get_secret_value()))
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)

    for value in values.values():
        walk(value)
    for name, value in environ.items():
        if name.startswith("ORDERRADAR_") and _SECRET_NAME.search(name) and len(value) >= _MIN_ENV_SECRET:
            found.append(value)
            # ``source=key`` lists (ingest and signing keys): each key on its own.
            found += [pair.partition("=")[2] for pair in value.split(",") if "=" in pair and "://" not in pair]
    return [s for s in found if s]


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
