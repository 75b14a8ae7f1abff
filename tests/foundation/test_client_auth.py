"""Every Kafka client Order Radar builds takes its SASL/SCRAM options from ``Settings``.

The embedded broker (Tansu 0.6) cannot run an authenticated end-to-end test: with
``--authentication`` it refuses every client until a SCRAM user exists, and users can only
be created over an authenticated connection (its storage is memory only). So the test
stands at the boundary it can reach: clients built from SASL settings by the product's own
constructors open a SASL handshake with the named mechanism on the wire, which the plain
embedded broker answers with UnsupportedSaslMechanism; the worker's Faust app carries the
credentials; and no constructor of a Kafka client in the product is left without them.
The InfluxDB side runs against a real ``auth-enabled`` influxd (``test_influx_auth.py``).
"""

from __future__ import annotations

import ast
import asyncio
import logging
import ssl
from pathlib import Path

import certifi
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from config.client_auth import faust_credentials, influx_auth, kafka_auth
from config.settings import Settings, SettingsError, load_settings
from dashboard.gateway.metrics import GatewayMetrics
from dashboard.gateway.update_consumer import StartAt, TopicReader
from stream.kafka.admin import ensure_topics
from stream.kafka.changelog_restore import RecoveryError, load_changelog
from stream.sinks.outbox import Outbox
from stream.topics import ORDER_EVENTS
from stream.worker import WorkerOptions, create_worker

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "kafka-pw-never-logged-7f3a"


def sasl(settings: Settings, **overrides: object) -> Settings:
    return settings.with_overrides(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="orderradar-web",
        kafka_password=PASSWORD,
        **overrides,
    )


def test_the_local_stack_is_plaintext_and_needs_no_credentials() -> None:
    settings = Settings()
    assert (kafka_auth(settings), faust_credentials(settings), influx_auth(settings)) == ({}, None, None)


@pytest.mark.parametrize(
    ("environment", "problem"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs ORDERRADAR_KAFKA_USERNAME and ORDERRADAR_KAFKA_PASSWORD"),
        ({"KAFKA_USERNAME": "web", "KAFKA_PASSWORD": "pw"}, "KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_USERNAME": "w",
                "KAFKA_PASSWORD": "p",
                "KAFKA_CA_FILE": "/no/such/ca.pem",
            },
            "is not a file",
        ),
        ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "ORDERRADAR_KAFKA_SASL_MECHANISM"),
        ({"INFLUX_USERNAME": "writer"}, "set both ORDERRADAR_INFLUX_USERNAME and ORDERRADAR_INFLUX_PASSWORD"),
    ],
)
def test_inconsistent_security_settings_stop_the_command(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], problem: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(f"ORDERRADAR_{name}", value)
    with pytest.raises(SettingsError, match=problem):
        load_settings()


def test_sasl_ssl_verifies_the_brokers_certificate() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_username="orderradar-worker",
        kafka_password=PASSWORD,
        kafka_ca_file=Path(certifi.where()),
    )  # type: ignore[arg-type]
    options = kafka_auth(settings)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    credentials = faust_credentials(settings)
    assert PASSWORD not in repr(credentials) and PASSWORD not in repr(settings)


def test_the_worker_app_and_its_clients_carry_the_credentials(stack_settings: Settings) -> None:
    settings = sasl(stack_settings)
    runtime = create_worker(settings, WorkerOptions.from_settings(settings))
    faust_side = credentials_to_aiokafka_auth(runtime.app.conf.broker_credentials)
    expected = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "orderradar-web",
        "sasl_plain_password": PASSWORD,
    }
    assert expected.items() <= faust_side.items()
    assert expected.items() <= runtime.resources.replayer.security.items()
    assert expected.items() <= runtime.resources.outbox._producer_options.items()


def _refused_for_sasl(caplog: pytest.LogCaptureFixture) -> None:
    text = caplog.text
    assert "UnsupportedSaslMechanism" in text, "the client did not open a SASL handshake"
    assert PASSWORD not in text


@pytest.mark.integration
def test_clients_built_from_sasl_settings_open_a_sasl_handshake(
    stack_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sasl(stack_settings)
    caplog.set_level(logging.INFO)
    # kafka-python: the admin client of ``orderradar topics``.
    with pytest.raises(Exception, match="Unable to bootstrap"):
        ensure_topics(settings, timeout_s=3)
    _refused_for_sasl(caplog)

    async def aiokafka_clients() -> None:
        caplog.clear()
        outbox = Outbox(settings.kafka_bootstrap, security=kafka_auth(settings))  # the worker's producer
        with pytest.raises(Exception, match="Unable to bootstrap"):
            await outbox.start()
        _refused_for_sasl(caplog)
        caplog.clear()
        with pytest.raises(RecoveryError):  # the worker's changelog reader (a group-less consumer)
            await load_changelog(
                settings.kafka_bootstrap, settings.topic(ORDER_EVENTS), [0], {}, security=kafka_auth(settings)
            )
        _refused_for_sasl(caplog)
        caplog.clear()
        reader = TopicReader(
            "sasl-probe",
            settings.kafka_bootstrap,
            [settings.topic(ORDER_EVENTS)],
            lambda record: None,
            GatewayMetrics(),
            start=StartAt.EARLIEST,
            security=kafka_auth(settings),
        )  # the web tier's readers
        task = asyncio.create_task(reader.run())
        deadline = asyncio.get_running_loop().time() + 15
        while reader.last_error is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        _refused_for_sasl(caplog)

    asyncio.run(aiokafka_clients())


# -- no Kafka client in the product without the options --------------------------------------

KAFKA_CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "KafkaAdminClient", "KafkaProducer", "KafkaConsumer"}
PRODUCT = ("stream", "dashboard", "alerting", "orderradar", "geo", "config")
#: Talks only to the loopback embedded broker it started (``orderradar up``), never to production.
LOCAL_ONLY = {"orderradar/devstack/broker.py"}


def _constructions() -> list[tuple[str, int, ast.Call]]:
    found = []
    for package in PRODUCT:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = str(path.relative_to(REPO))
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in KAFKA_CLIENTS or (
                        name == "App"
                        and getattr(node.func, "value", None) is not None
                        and getattr(node.func.value, "id", None) == "faust"
                    ):
                        found.append((relative, node.lineno, node))
    return found


def test_every_kafka_client_in_the_product_takes_the_security_options() -> None:
    constructions = [c for c in _constructions() if c[0] not in LOCAL_ONLY]
    assert len(constructions) >= 10, "the scan found too few clients: has the code moved?"
    missing = []
    for path, line, call in constructions:
        keywords = {k.arg for k in call.keywords}
        spread = [ast.unparse(k.value) for k in call.keywords if k.arg is None]
        if "broker_credentials" not in keywords and not any(
            "auth" in s or "security" in s or "options" in s for s in spread
        ):
            missing.append(f"{path}:{line}")
    assert not missing, f"Kafka clients built without config.client_auth options: {missing}"
