"""The real stack around the tracking page: a web server we can kill, the bus, tokens.

``WebServer`` runs :mod:`tests.tracking.web_process` as a child on a fixed loopback port
(so a restarted server is where the browser left it). ``OrderUpdates`` publishes
``order-updates`` records in the worker's format (``dashboard.gateway.order_snapshot``).
"""

from __future__ import annotations

import os
import secrets
import signal
import struct
import sys
import threading
import zlib
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
from kafka import KafkaProducer

from config.settings import Settings
from dashboard.gateway.record_seal import RecordSeal
from orderradar.devstack.process import ManagedProcess, free_port
from orderradar.devstack.waiting import wait_until
from stream.topics import ORDER_UPDATES, TRACKING_TOKENS

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().parent / "web_process.py"
SOURCE = "oms"


class WebServer:
    """One gateway process with the tracking routes; ``kill`` and ``start`` again at will."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        port: int | None = None,
        tiles: str | None = None,
        tiles_crs: str = "wgs84",
    ) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.api_key = secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "ORDERRADAR_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "ORDERRADAR_TOPIC_PREFIX": settings.topic_prefix,
            "ORDERRADAR_INFLUX_URL": settings.influx_url,
            "ORDERRADAR_INFLUX_DB": settings.influx_db,
            "ORDERRADAR_DATA_DIR": str(settings.data_dir),
            "ORDERRADAR_WEB_HOST": "127.0.0.1",
            "ORDERRADAR_WEB_PORT": str(self.port),
            "ORDERRADAR_INGEST_KEYS": f"{SOURCE}={self.api_key}",
            # The same secret as the Bus, which seals the token records it publishes.
            "ORDERRADAR_SESSION_SECRET": settings.session_secret.get_secret_value(),
        }
        for name in ("ORDERRADAR_MAP_TILE_URL", "ORDERRADAR_MAP_TILE_ATTRIBUTION", "ORDERRADAR_MAP_TILE_CRS"):
            env.pop(name, None)
        if tiles:
            env.update(
                {
                    "ORDERRADAR_MAP_TILE_URL": tiles,
                    "ORDERRADAR_MAP_TILE_ATTRIBUTION": "Test tiles",
                    "ORDERRADAR_MAP_TILE_CRS": tiles_crs,
                }
            )
        argv = [sys.executable, str(LAUNCHER)]
        self.process = ManagedProcess("web", argv, log_dir / f"web-{self.port}.log", env=env, cwd=REPO)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout_s: float = 60.0) -> WebServer:
        self.process.start()
        self.process.wait_ready(self._ready, timeout_s)
        return self

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye to the clients."""
        self.process.kill9()

    def stop(self) -> None:
        self.process.stop()

    def terminate(self) -> None:
        self.process.signal(signal.SIGTERM)

    def issue_link(self, order_id: str, ttl_s: int | None = None, wait_s: float = 20.0) -> str:
        """A fresh tracking token for ``order_id`` (as an OMS would get one), once the web
        tier has read the order's update (links are only issued for known orders)."""
        body: dict[str, Any] = {"order_id": order_id}
        if ttl_s is not None:
            body["ttl"] = ttl_s

        def post() -> httpx.Response | None:
            response = httpx.post(
                f"{self.url}/api/v1/tracking-links",
                json=body,
                timeout=10,
                headers={"X-Source": SOURCE, "Authorization": f"Bearer {self.api_key}"},
            )
            return response if response.status_code != 404 else None

        response = wait_until(post, wait_s, what=f"tracking link for {order_id}")
        assert isinstance(response, httpx.Response) and response.status_code == 201, response
        return str(response.json()["token"])

    def revoke_link(self, token: str) -> None:
        response = httpx.delete(
            f"{self.url}/api/v1/tracking-links/{token}",
            timeout=10,
            headers={"X-Source": SOURCE, "Authorization": f"Bearer {self.api_key}"},
        )
        assert response.status_code == 204, response.text


def png(width: int, height: int, pixel: Any) -> bytes:
    """A real RGB PNG; ``pixel(x, y)`` gives each pixel's (r, g, b)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class TileServer:
    """A raster tile server on loopback: a small generated PNG per ``z/x/y`` (a checkerboard of
    two light colours with a darker "street" across each tile), and a log of requests."""

    PNG = png(16, 16, lambda x, y: (200, 200, 200))

    @staticmethod
    def tile(z: int, x: int, y: int) -> bytes:
        base = (238, 232, 214) if (x + y) % 2 else (222, 236, 222)
        return png(16, 16, lambda px, py: (150, 150, 170) if py in (7, 8) or px in (7, 8) else base)

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Referer")))
                parts = self.path.removesuffix(".png").strip("/").split("/")
                if len(parts) != 3 or not all(p.isdigit() for p in parts):
                    self.send_error(404)
                    return
                body = owner.tile(*(int(p) for p in parts))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="tiles", daemon=True)

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"

    def __enter__(self) -> TileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def timeline(*steps: tuple[str, str]) -> list[dict[str, str]]:
    """Timeline entries as the worker keeps them: the OMS reported the payment (so it may
    issue links for the order), the transport system everything after."""
    return [
        {"status": status, "event_time": at, "node": "SH-HUB-07", "source": SOURCE if status == "paid" else "tms"}
        for status, at in steps
    ]


class Bus:
    """Publishes what the worker would: ``order-updates`` snapshots (and raw token records)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
        #: Seals token records as a web instance would (``dashboard.gateway.record_seal``).
        self.token_seal = RecordSeal(settings.session_secret, settings.topic(TRACKING_TOKENS))

    def order_update(
        self,
        order_id: str,
        seq: int,
        skus: dict[str, dict[str, Any]],
        rollup: dict[str, Any] | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        record = {
            "order_id": order_id,
            "seq": seq,
            "rollup": rollup or {},
            "updated_at": (updated_at or datetime.now(UTC)).isoformat(),
            "skus": skus,
        }
        self.producer.send(self.settings.topic(ORDER_UPDATES), key=order_id.encode(), value=orjson.dumps(record))
        self.producer.flush(timeout=10)

    def expired_grant(self, token_sha256: str, order_id: str, now: datetime) -> None:
        """A grant that expired a minute ago, as the gateway would have published it."""
        record = {
            "type": "tracking_link_issued",
            "token_sha256": token_sha256,
            "order_id": order_id,
            "expires_at": (now - timedelta(minutes=1)).isoformat(),
            "issued_by": "source:oms",
            "at": (now - timedelta(days=1)).isoformat(),
        }
        self.producer.send(
            self.settings.topic(TRACKING_TOKENS),
            key=token_sha256.encode(),
            value=orjson.dumps(self.token_seal.seal(record)),
        )
        self.producer.flush(timeout=10)

    def close(self) -> None:
        self.producer.close(timeout=5)


def wait_for(condition: Any, timeout_s: float, what: str) -> Any:
    return wait_until(condition, timeout_s, what=what)
