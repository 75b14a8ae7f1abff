"""How every Kafka and InfluxDB client Order Radar builds authenticates, from :class:`Settings`.

One place for the security options: each client constructor takes the mapping made here
(``AIOKafkaProducer(bootstrap_servers=..., **kafka_auth(settings))``) instead of reading the
settings itself, so a new client cannot forget SASL or TLS. The local loopback stack is
PLAINTEXT and every mapping is then empty; production runs SASL/SCRAM (``docs/security.md``).
Passwords stay ``SecretStr`` until this point and are never logged.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import httpx

from config.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


def _tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol == "SASL_SSL"


def _password(settings: Settings) -> str:
    assert settings.kafka_password is not None  # the settings validator requires it with SASL
    return settings.kafka_password.get_secret_value()


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS to the brokers (``SASL_SSL``): verified against ``kafka_ca_file`` or the system CAs."""
    if not _tls(settings):
        return None
    cafile = str(settings.kafka_ca_file) if settings.kafka_ca_file else None
    return ssl.create_default_context(cafile=cafile)


def kafka_auth(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for every Kafka client: aiokafka's producers and consumers and
    kafka-python's (the admin client of ``orderradar topics``) take the same names. Empty
    for PLAINTEXT."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {
        "security_protocol": settings.kafka_security_protocol,
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_username,
        "sasl_plain_password": _password(settings),
    }
    if _tls(settings):
        options["ssl_context"] = kafka_ssl_context(settings)
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` (it hands them to its aiokafka clients)."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    from faust.auth import SASLCredentials  # the worker's dependency, not the web tier's

    return SASLCredentials(
        username=settings.kafka_username,
        password=_password(settings),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=kafka_ssl_context(settings),
    )


def influx_auth(settings: Settings) -> httpx.BasicAuth | None:
    """HTTP basic auth for InfluxDB's 1.x API; a header, never the ``u``/``p`` URL parameters,
    so the password cannot reach an access log or an httpx request line."""
    if settings.influx_username is None or settings.influx_password is None:
        return None
    return httpx.BasicAuth(settings.influx_username, settings.influx_password.get_secret_value())
