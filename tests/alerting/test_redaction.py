"""The redaction rules (pure) and what the installed log redaction does to real log records."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerting.redaction import (
    REDACTED,
    LogRedaction,
    configured_secrets,
    install_log_redaction,
    redact,
    uninstall_log_redaction,
)
from config.settings import Settings
from orderradar.devstack.process import ManagedProcess

TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_xyzw"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f'1.2.3.4:5 - "WebSocket /ws/track?token={TOKEN}" [accepted]',
            '1.2.3.4:5 - "WebSocket /ws/track?token=<redacted>" [accepted]',
        ),
        (f"GET /t/{TOKEN}?lang=en HTTP/1.1", "GET /t/<redacted>?lang=en HTTP/1.1"),
        (f"DELETE /api/v1/tracking-links/{TOKEN} HTTP/1.1", "DELETE /api/v1/tracking-links/<redacted> HTTP/1.1"),
        (
            "GET /api/v1/alerts/a-1/ack?expires=1700000000&sig=9f86d081884c7d65 HTTP/1.1",
            "GET /api/v1/alerts/a-1/ack?expires=1700000000&sig=<redacted> HTTP/1.1",
        ),
        ("< cookie: orderradar_session=eyJzdGFmZiI6.Zx9; theme=dark", "< cookie: <redacted>"),
        ("< authorization: Bearer oms-123456789", "< authorization: <redacted>"),
        ("< X-Api-Key: oms-123456789", "< X-Api-Key: <redacted>"),
        ("headers=[(b'cookie', b'orderradar_session=abc123')]", "headers=[(b'cookie', b'<redacted>')]"),
        ("{'Authorization': 'Bearer abcdefgh'}", "{'Authorization': '<redacted>'}"),
        (
            '< TEXT \'{"type":"subscribe","token":"' + TOKEN + "\"}' [74 bytes]",
            """< TEXT '{"type":"subscribe","token":"<redacted>"}' [74 bytes]""",
        ),
        (
            "POST http://influx:8086/write?db=o&u=admin&p=hunter2hunter2",
            "POST http://influx:8086/write?db=o&u=admin&p=<redacted>",
        ),
        ("smtp://alerts:pa55w0rd@mail.example.com:587", "smtp://alerts:<redacted>@mail.example.com:587"),
        (
            "tiles https://api.maptiler.com/{z}/{x}/{y}.png?key=k3yk3yk3y",
            "tiles https://api.maptiler.com/{z}/{x}/{y}.png?key=<redacted>",
        ),
    ],
)
def test_request_borne_secrets_are_recognised_by_shape(line: str, expected: str) -> None:
    assert redact(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "GET /t/assets/3f2a9c/tracking.js HTTP/1.1",
        "GET /api/v1/orders/o-1 HTTP/1.1",
        "X-Signature and X-Signature-Timestamp headers are required for this source",
        "http://127.0.0.1:8080/healthz",
        "closing slow websocket endpoint=track reason=outbox full",
    ],
)
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert redact(line) == line


def test_configured_secrets_come_from_settings_and_secret_named_variables() -> None:
    settings = Settings(session_secret="s" * 40, ingest_keys="oms=oms-key-1234567,wms=wms-key-7654321")
    environ = {
        "ORDERRADAR_ALERT_SECRET_OPS": "https://hooks.example/services/T0/B0/XXXXXXXXXX",
        "ORDERRADAR_GATEWAY_SIGNING_KEYS": "oms=sign-key-123456789",
        "ORDERRADAR_WEB_PORT": "8080",
        "ORDERRADAR_GATEWAY_WS_MAX_LAG_S": "2",
        "HOME": "/root",
    }
    found = configured_secrets(settings.model_dump(), environ)
    assert {
        "s" * 40,
        "oms-key-1234567",
        "wms-key-7654321",
        "sign-key-123456789",
        "https://hooks.example/services/T0/B0/XXXXXXXXXX",
    } <= set(found)
    assert "8080" not in found and "/root" not in found
    redaction = LogRedaction(found)
    # A webhook's token segment alone, or URL-encoded, is hidden too.
    assert "XXXXXXXXXX" not in redaction("no such hook /services/T0/B0/XXXXXXXXXX")
    assert redaction("key=oms-key-1234567") == f"key={REDACTED}"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A plain handler on a fresh logger, as Faust or basicConfig would attach one."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield stream
    finally:
        uninstall_log_redaction()
        logger.removeHandler(handler)


def test_installed_redaction_covers_arguments_split_secrets_and_tracebacks(captured: io.StringIO) -> None:
    install_log_redaction(["webhook-secret-0123456789"])
    log = logging.getLogger("test.redaction")
    log.info("< %s: %s", "x-api-key", "oms-123456789")  # header name and value are separate arguments
    log.info("status %d for %s", 404, "/t/" + TOKEN)
    try:
        raise RuntimeError("POST https://hooks.example/webhook-secret-0123456789 failed")
    except RuntimeError:
        log.exception("delivery crashed")
    text = captured.getvalue()
    assert "oms-123456789" not in text and TOKEN not in text and "webhook-secret-0123456789" not in text
    assert "x-api-key: <redacted>" in text and "status 404 for /t/<redacted>" in text
    assert "Traceback" in text and "RuntimeError: POST https://hooks.example/<redacted> failed" in text


def test_a_crashed_childs_log_tail_is_printed_redacted(tmp_path: Path) -> None:
    """``orderradar up`` prints the last lines of a child that exited; influxd or the broker
    redact nothing themselves."""
    log_path = tmp_path / "child.log"
    log_path.write_text(f"starting\nGET /t/{TOKEN} HTTP/1.1\nAuthorization: Bearer abcdefgh123\n")
    tail = ManagedProcess("child", ["true"], log_path).log_tail()
    assert TOKEN not in tail and "abcdefgh123" not in tail and tail.startswith("starting")
