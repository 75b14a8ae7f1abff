"""Typed settings: environment parsing, clear errors, secrets never printed."""

from __future__ import annotations

import pytest

from config.settings import SettingsError, load_settings, to_env


def test_defaults_are_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("ORDERRADAR_"):
            monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert (settings.web_port, settings.broker_port, settings.influx_port) == (8080, 9092, 8086)
    assert settings.influx_db == "orderradar"
    assert settings.topic("order-events") == "order-events"


def test_environment_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERRADAR_PARTITIONS", "16")
    monkeypatch.setenv("ORDERRADAR_TOPIC_PREFIX", "staging-")
    monkeypatch.setenv("ORDERRADAR_ALLOWED_ORIGINS", "https://radar.example.com, https://ops.example.com")
    monkeypatch.setenv("ORDERRADAR_INGEST_KEYS", "wms-hz=k1secret,carrier-sf=k2secret")
    settings = load_settings()
    assert settings.partitions == 16
    assert settings.topic("alerts") == "staging-alerts"
    assert settings.allowed_origins == ("https://radar.example.com", "https://ops.example.com")
    assert settings.ingest_keys["carrier-sf"].get_secret_value() == "k2secret"


def test_secrets_never_appear_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERRADAR_INGEST_KEYS", "wms=topsecretkey")
    monkeypatch.setenv("ORDERRADAR_INFLUX_USERNAME", "orderradar")
    monkeypatch.setenv("ORDERRADAR_INFLUX_PASSWORD", "hunter2hunter2")
    monkeypatch.setenv("ORDERRADAR_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("ORDERRADAR_KAFKA_USERNAME", "orderradar-web")
    monkeypatch.setenv("ORDERRADAR_KAFKA_PASSWORD", "kafkasecret99")
    text = repr(load_settings()) + str(load_settings())
    assert "topsecretkey" not in text and "hunter2hunter2" not in text and "kafkasecret99" not in text


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("ORDERRADAR_PARTITIONS", "zero", "ORDERRADAR_PARTITIONS: Input should be a valid integer"),
        ("ORDERRADAR_PARTITIONS", "0", "ORDERRADAR_PARTITIONS: Input should be greater than or equal to 1"),
        ("ORDERRADAR_WEB_PORT", "70000", "ORDERRADAR_WEB_PORT: Input should be less than or equal to 65535"),
        ("ORDERRADAR_TOPIC_PREFIX", "bad prefix!", "ORDERRADAR_TOPIC_PREFIX: String should match pattern"),
        ("ORDERRADAR_INGEST_KEYS", "no-equals-sign", "ORDERRADAR_INGEST_KEYS: Value error, expected source=key"),
        ("ORDERRADAR_SESSION_SECRET", "short", "ORDERRADAR_SESSION_SECRET: Value error, must be at least 32"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert problem in str(caught.value)
    if "SECRET" in variable or "KEYS" in variable:
        assert value not in str(caught.value).replace(problem, "")


def test_gateway_and_receiver_secrets_come_from_the_one_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERRADAR_GATEWAY_WS_MAX_LAG_S", "2")
    monkeypatch.setenv("ORDERRADAR_GATEWAY_STAFF_FILE", "/etc/orderradar/staff.yaml")
    monkeypatch.setenv("ORDERRADAR_ALERT_SECRET_OPS_WEBHOOK", "https://hooks.example/T0/B0/xyz")
    settings = load_settings()
    assert settings.gateway.ws_max_lag_s == 2.0
    assert str(settings.gateway.staff_file) == "/etc/orderradar/staff.yaml"
    assert settings.receiver_secrets()["ops_webhook"] == "https://hooks.example/T0/B0/xyz"
    assert "xyz" not in repr(settings)


def test_a_bad_gateway_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERRADAR_GATEWAY_WS_MAX_LAG_S", "-1")
    with pytest.raises(SettingsError, match="ORDERRADAR_GATEWAY_WS_MAX_LAG_S"):
        load_settings()


def test_to_env_reproduces_the_settings_in_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        ingest_keys={"oms": "k1secretkey"},
        allowed_origins=("https://a.example",),
        alert_secret={"ops": "https://hooks.example/1"},
        gateway={"ws_max_lag_s": 3, "signing_keys": {"oms": "signsecret123"}},
        retention={"closed": "2h"},
    )
    for key in list(__import__("os").environ):
        if key.startswith("ORDERRADAR_"):
            monkeypatch.delenv(key)
    for key, value in to_env(settings).items():
        monkeypatch.setenv(key, value)
    assert load_settings() == settings
