"""docker-compose.yml (no Docker engine here): it parses, and agrees with the settings code."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.settings import ENV_PREFIX, Settings
from stream.topics import ensure_topics

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def load() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(COMPOSE.read_text())


def test_services_of_the_production_shape() -> None:
    services = load()["services"]
    assert {"kafka", "influxdb", "topics", "worker", "web"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["influxdb"]["image"].startswith("influxdb:1.")
    assert services["worker"]["command"] == ["orderradar", "worker"]
    assert services["web"]["command"] == ["orderradar", "web"]
    assert services["topics"]["command"] == ["orderradar", "topics"]
    assert ensure_topics.__module__ == "stream.topics"


def test_environment_variables_are_real_settings() -> None:
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    for service in ("topics", "worker", "web"):
        env = load()["services"][service]["environment"]
        unknown = {key for key in env if key.startswith(ENV_PREFIX)} - fields
        assert not unknown, f"{service}: {unknown} are not settings"
        assert {f"{ENV_PREFIX}KAFKA_BOOTSTRAP", f"{ENV_PREFIX}INFLUX_URL"} <= set(env)


def test_ports_agree_with_the_default_settings() -> None:
    services = load()["services"]
    defaults = Settings.model_fields
    assert f"{defaults['broker_port'].default}:9092" in services["kafka"]["ports"]
    assert f"{defaults['influx_port'].default}:8086" in services["influxdb"]["ports"]
    web_env = services["web"]["environment"]
    assert web_env[f"{ENV_PREFIX}WEB_PORT"] == str(defaults["web_port"].default)
    assert str(defaults["web_port"].default) in services["web"]["expose"]
    bootstrap = services["worker"]["environment"][f"{ENV_PREFIX}KAFKA_BOOTSTRAP"]
    assert bootstrap.endswith(":9092")
    assert services["worker"]["environment"][f"{ENV_PREFIX}INFLUX_URL"].endswith(":8086")
