"""docker-compose.yml (no Docker engine here): it parses, and agrees with the settings code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from config.client_auth import influx_auth, kafka_auth
from config.settings import ENV_PREFIX, Settings
from stream.kafka.admin import ensure_topics
from stream.topics import CONTROL, ORDER_EVENTS, TRACKING_TOKENS, all_topics

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
    assert ensure_topics.__module__ == "stream.kafka.admin"


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
    web_env = services["web"]["environment"]
    assert web_env[f"{ENV_PREFIX}WEB_PORT"] == str(defaults["web_port"].default)
    assert str(defaults["web_port"].default) in services["web"]["expose"]
    bootstrap = services["worker"]["environment"][f"{ENV_PREFIX}KAFKA_BOOTSTRAP"]
    assert bootstrap.endswith(":9092")
    assert services["worker"]["environment"][f"{ENV_PREFIX}INFLUX_URL"].endswith(":8086")


# -- trust boundaries (docs/security.md) ----------------------------------------------------

SECRET_VARIABLES = {
    "ORDERRADAR_SESSION_SECRET",
    "KAFKA_ADMIN_PASSWORD",
    "KAFKA_WEB_PASSWORD",
    "KAFKA_WORKER_PASSWORD",
    "INFLUX_ADMIN_PASSWORD",
    "INFLUX_WRITER_PASSWORD",
    "INFLUX_READER_PASSWORD",
}


def init_script() -> str:
    return str(load()["services"]["kafka-init"]["command"][0])


def granted(principal: str, operation: str) -> set[str]:
    """Topics the kafka-init script grants ``operation`` on to ``principal``."""
    topics: set[str] = set()
    script = init_script().replace("\\\n", " ")  # join continued lines
    for loop in re.finditer(r"for t in ([^;]+); do(.*?)done", script, re.DOTALL):
        if f"allow {principal} {operation} " in loop.group(2):
            topics.update(loop.group(1).split())
    return topics


def test_only_the_web_port_is_published() -> None:
    services = load()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"web"}
    assert services["web"]["ports"] == ["8080"]
    # /metrics is served on its own port, which is not the published one.
    metrics_port = services["web"]["environment"][f"{ENV_PREFIX}METRICS_PORT"]
    assert metrics_port != services["web"]["environment"][f"{ENV_PREFIX}WEB_PORT"]
    assert not any(metrics_port in str(port) for port in services["web"]["ports"])


def test_secrets_have_no_default_and_stop_compose_when_unset() -> None:
    text = COMPOSE.read_text()
    used = dict(re.findall(r"\$\{([A-Z0-9_]+)(:\?|:-|-|\?|\})", text))
    assert set(used) >= SECRET_VARIABLES, SECRET_VARIABLES - set(used)
    for name in SECRET_VARIABLES:
        forms = set(re.findall(r"\$\{" + name + r"(:\?|:-|-|\?|\})", text))
        assert forms == {":?"}, f"{name} must be ${{{name}:?message}} everywhere, found {forms}"
    # No literal secret anywhere: every password or secret variable of every service is interpolated.
    for name, service in load()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET")):
                assert str(value).startswith("${") and ":?" in str(value), f"{name}.{key} = {value!r}"
    # Ingest keys may be empty (then no source can post events): the safe default.
    assert load()["services"]["web"]["environment"][f"{ENV_PREFIX}INGEST_KEYS"] == "${ORDERRADAR_INGEST_KEYS:-}"


def test_kafka_takes_only_authenticated_clients_with_acls() -> None:
    env = load()["services"]["kafka"]["environment"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no listener may take unauthenticated clients"
    assert set(protocols) == {name.split(":")[0] for name in env["KAFKA_LISTENERS"].split(",")}
    assert env["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert "ScramLoginModule" in env["KAFKA_LISTENER_NAME_CLIENT_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_SUPER_USERS"] == "User:admin"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"


def test_web_and_worker_are_separate_least_privilege_principals() -> None:
    services = load()["services"]
    users = {name: services[name]["environment"][f"{ENV_PREFIX}KAFKA_USERNAME"] for name in ("web", "worker", "topics")}
    assert users == {"web": "orderradar-web", "worker": "orderradar-worker", "topics": "admin"}
    script = init_script()
    for user in users.values():
        assert f"user {user} " in script, f"no SCRAM credential for {user}"

    settings = Settings()
    every_topic = {spec.name for spec in all_topics(settings)}
    web_writes, web_reads = granted("orderradar-web", "Write"), granted("orderradar-web", "Read")
    worker_writes, worker_reads = granted("orderradar-worker", "Write"), granted("orderradar-worker", "Read")
    # Only the web tier can write tracking-token grants (the records are also sealed).
    assert TRACKING_TOKENS in web_writes and TRACKING_TOKENS not in worker_writes | worker_reads
    # Nobody but the web tier writes commands or ingests events; the worker reads them.
    assert {ORDER_EVENTS, CONTROL} <= web_writes and not {ORDER_EVENTS, CONTROL} & worker_writes
    assert {ORDER_EVENTS, CONTROL} <= worker_reads
    # Every topic the code creates is granted to someone, and no grant names an unknown topic.
    assert web_writes | web_reads | worker_writes | worker_reads == every_topic
    # `orderradar worker` checks every topic at start: it may see them all (Describe), no more.
    assert granted("orderradar-worker", "Describe") == every_topic
    assert "--group orderradar --resource-pattern-type prefixed" in script
    assert settings.faust_app_id == "orderradar"


REQUIRED_EXAMPLES = {f"{ENV_PREFIX}TRUSTED_PROXIES": "10.0.0.0/24"}


def test_application_services_configure_valid_authenticated_clients() -> None:
    services = load()["services"]
    for name in ("topics", "worker", "web"):
        # What compose would substitute: a secret for each required variable (a network for
        # the proxies); optional ones stay unset.
        env = {
            key: (REQUIRED_EXAMPLES.get(key, "x" * 40) if ":?" in str(value) else value)
            for key, value in services[name]["environment"].items()
            if ":-" not in str(value)
        }
        fields = {key.removeprefix(ENV_PREFIX).lower(): value for key, value in env.items()}
        settings = Settings(**fields)
        options = kafka_auth(settings)
        assert options["security_protocol"] == "SASL_PLAINTEXT" and options["sasl_mechanism"] == "SCRAM-SHA-512"
        if name != "topics":
            assert influx_auth(settings) is not None, f"{name} talks to InfluxDB anonymously"
    assert f"{ENV_PREFIX}SESSION_SECRET" not in services["worker"]["environment"], "only the web tier seals records"


def test_influxdb_requires_authentication_with_a_user_per_component() -> None:
    services = load()["services"]
    env = services["influxdb"]["environment"]
    assert env["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert env["INFLUXDB_WRITE_USER"] == services["worker"]["environment"][f"{ENV_PREFIX}INFLUX_USERNAME"]
    assert env["INFLUXDB_READ_USER"] == services["web"]["environment"][f"{ENV_PREFIX}INFLUX_USERNAME"]
    assert env["INFLUXDB_ADMIN_USER"] not in {env["INFLUXDB_WRITE_USER"], env["INFLUXDB_READ_USER"]}


def test_the_web_tier_must_be_told_its_load_balancer() -> None:
    """X-Forwarded-For is believed only from ORDERRADAR_TRUSTED_PROXIES: compose requires it
    (no default network that might trust more than the balancer) and the example it gives
    is a valid setting."""
    value = load()["services"]["web"]["environment"][f"{ENV_PREFIX}TRUSTED_PROXIES"]
    match = re.fullmatch(r"\$\{ORDERRADAR_TRUSTED_PROXIES:\?(.+)\}", value)
    assert match, f"ORDERRADAR_TRUSTED_PROXIES must be required (${{VAR:?message}}), found {value!r}"
    example = re.search(r"e\.g\. ([0-9./,]+)", match.group(1))
    assert example and Settings(trusted_proxies=example.group(1)).trusted_proxies
    for service in ("worker", "topics"):  # only the web tier reads forwarded headers
        assert f"{ENV_PREFIX}TRUSTED_PROXIES" not in load()["services"][service]["environment"]
