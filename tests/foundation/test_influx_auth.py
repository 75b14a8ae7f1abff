"""InfluxDB with authentication on, as production runs it: a real ``influxd`` with
``auth-enabled = true``, an admin, a writer (the worker) and a reader (the web tier).

The worker's writer and the war-room's history client are built from ``Settings`` exactly as
the processes build them; anonymous requests and wrong passwords are refused, and refused
credentials never turn points into non-replayable dead letters.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from config.client_auth import influx_auth
from config.settings import Settings
from dashboard.warroom.history import InfluxHistory
from orderradar.devstack.influx import LocalInflux, create_database, create_user
from orderradar.devstack.process import free_port
from stream.core.dlq import InfluxFailure
from stream.sinks.influx import INFLUX_RETRY
from stream.worker import WorkerOptions, WorkerResources

pytestmark = pytest.mark.integration

DB = "orderradar_auth"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalInflux, dict[str, str]]]:
    passwords = {name: secrets.token_urlsafe(18) for name in ("admin", "writer", "reader")}
    influx = LocalInflux(
        free_port(), tmp_path_factory.mktemp("influx-auth"), admin=("admin", passwords["admin"])
    ).start()
    try:
        admin = influx.admin_auth
        assert admin is not None
        create_database(influx.url, DB, auth=admin)
        create_user(influx.url, admin, "writer", passwords["writer"], DB, "WRITE")
        create_user(influx.url, admin, "reader", passwords["reader"], DB, "READ")
        yield influx, passwords
    finally:
        influx.stop()


def _settings(influx: LocalInflux, tmp_path: Path, user: str, password: str) -> Settings:
    return Settings(
        influx_url=influx.url,
        influx_db=DB,
        influx_username=user,
        influx_password=password,  # type: ignore[arg-type]
        data_dir=tmp_path,
    )


def _write_as_worker(settings: Settings, lines: list[str]) -> object:
    async def write() -> object:
        options = WorkerOptions.from_settings(settings, influx_policy=replace(INFLUX_RETRY, attempts=1))
        resources = WorkerResources(settings, options)
        try:
            return await resources.influx.write(lines)
        finally:
            await resources.influx.aclose()
            await resources.replayer.writer.aclose()

    return asyncio.run(write())


def test_anonymous_requests_are_refused(secured: tuple[LocalInflux, dict[str, str]]) -> None:
    influx, _ = secured
    write = httpx.post(f"{influx.url}/write", params={"db": DB}, content=b"probe v=1i 1")
    query = httpx.get(f"{influx.url}/query", params={"db": DB, "q": "SHOW MEASUREMENTS"})
    assert (write.status_code, query.status_code) == (401, 401)


def test_the_worker_writes_and_the_web_tier_reads_with_their_own_users(
    secured: tuple[LocalInflux, dict[str, str]], tmp_path: Path
) -> None:
    influx, passwords = secured
    writer = _settings(influx, tmp_path, "writer", passwords["writer"])
    report = _write_as_worker(writer, ["auth_probe,stage=test value=7i 1700000000000000000"])
    assert report.ok, report.failed  # type: ignore[attr-defined]

    reader = _settings(influx, tmp_path, "reader", passwords["reader"])
    with InfluxHistory.from_settings(reader) as history:
        frame = history.query('SELECT "value" FROM "auth_probe"')
    assert list(frame["value"]) == [7]
    # The reader cannot write: least privilege per component.
    denied = httpx.post(
        f"{influx.url}/write", params={"db": DB}, content=b"auth_probe value=8i 2", auth=influx_auth(reader)
    )
    assert denied.status_code == 403


def test_refused_credentials_keep_the_points_replayable(
    secured: tuple[LocalInflux, dict[str, str]], tmp_path: Path
) -> None:
    influx, _ = secured
    wrong = _settings(influx, tmp_path, "writer", "not-the-password")
    report = _write_as_worker(wrong, ["auth_probe value=9i 3"])
    [failure] = report.failed  # type: ignore[attr-defined]
    assert failure.reason is InfluxFailure.RETRIES_EXHAUSTED and failure.reason.replayable
    assert "refused the credentials" in failure.error
    assert "not-the-password" not in failure.error
