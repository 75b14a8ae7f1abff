"""Session fixtures: the real embedded broker and a real influxd on free loopback ports.

They fail (never skip) when a service cannot start, so a missing install step shows up
in CI. Each test gets its own topic prefix and InfluxDB database via ``stack_settings``.

To run the same tests against other servers (Apache Kafka and InfluxDB from
``docker compose up -d kafka influxdb``), set ``ORDERRADAR_TEST_KAFKA_BOOTSTRAP=host:port``
and/or ``ORDERRADAR_TEST_INFLUX_URL=http://host:port``: the fixtures then use them instead
of starting their own. (Tests that stop their own influxd keep a private instance.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from config.settings import Settings
from orderradar.devstack.broker import EmbeddedBroker
from orderradar.devstack.influx import LocalInflux
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import free_port

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@dataclass(frozen=True)
class ExternalBroker:
    """A Kafka-protocol broker the fixtures did not start (``ORDERRADAR_TEST_KAFKA_BOOTSTRAP``)."""

    bootstrap: str


@dataclass(frozen=True)
class ExternalInflux:
    """An InfluxDB 1.x API the fixtures did not start (``ORDERRADAR_TEST_INFLUX_URL``)."""

    url: str
    #: Stands in for a local influxd's data folder: its parent is the session's data dir.
    root: Path


@pytest.fixture(scope="session")
def broker(services_dir: Path) -> Iterator[EmbeddedBroker | ExternalBroker]:
    external = os.environ.get("ORDERRADAR_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield ExternalBroker(external)
        return
    service = EmbeddedBroker(free_port(), services_dir).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def influx(services_dir: Path) -> Iterator[LocalInflux | ExternalInflux]:
    external = os.environ.get("ORDERRADAR_TEST_INFLUX_URL")
    if external:
        yield ExternalInflux(external.rstrip("/"), services_dir / "influx-external")
        return
    service = LocalInflux(free_port(), services_dir).start()
    yield service
    service.stop()


def make_settings(
    broker: EmbeddedBroker | ExternalBroker, influx: LocalInflux | ExternalInflux, **overrides: object
) -> Settings:
    """Settings for an isolated test: a unique topic set and database."""
    return isolated_settings(broker.bootstrap, influx.url, influx.root.parent, **overrides)


@pytest.fixture
def stack_settings(broker: EmbeddedBroker | ExternalBroker, influx: LocalInflux | ExternalInflux) -> Settings:
    return make_settings(broker, influx)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA} (it sits beside the repository)")
    return SHARED_DATA


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    path = ARTIFACTS / request.node.name.replace("/", "_")
    path.mkdir(parents=True, exist_ok=True)
    return path


# Property tests share a slow, busy 2-core machine with brokers and browsers: judge
# them on the examples they run, never on how long generating the examples took.
hypothesis_settings.register_profile("orderradar", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("orderradar")
