"""Session fixtures: the real embedded broker and a real influxd on free loopback ports.

They fail (never skip) when a service cannot start, so a missing install step shows up
in CI. Each test gets its own topic prefix and InfluxDB database via ``stack_settings``.
"""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def broker(services_dir: Path) -> Iterator[EmbeddedBroker]:
    service = EmbeddedBroker(free_port(), services_dir).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def influx(services_dir: Path) -> Iterator[LocalInflux]:
    service = LocalInflux(free_port(), services_dir).start()
    yield service
    service.stop()


def make_settings(broker: EmbeddedBroker, influx: LocalInflux, **overrides: object) -> Settings:
    """Settings for an isolated test: a unique topic set and database."""
    return isolated_settings(broker.bootstrap, influx.url, influx.root.parent, **overrides)


@pytest.fixture
def stack_settings(broker: EmbeddedBroker, influx: LocalInflux) -> Settings:
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
hypothesis_settings.register_profile(
    "orderradar", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("orderradar")
