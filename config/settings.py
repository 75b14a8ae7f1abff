"""Typed settings from the environment: endpoints, ports and secrets.

Everything is read once, in ``Settings()``, at the start of a command and passed down;
no module reads ``os.environ`` on its own. Every variable is ``ORDERRADAR_<FIELD>``
(for example ``ORDERRADAR_KAFKA_BOOTSTRAP``). Secrets are ``SecretStr`` so they never
appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config import PACKAGE_CONFIG_DIR
from config.gateway import GatewaySettings
from stream.contract import plain_text
from stream.core.retention import RetentionSettings

ENV_PREFIX = "ORDERRADAR_"

#: Where ``make run`` keeps broker logs and the local influxd's data.
DEFAULT_DATA_DIR = Path(".orderradar")


#: The built-in session secret. It is public (it is in this file), so it never signs
#: anything: a loopback development stack swaps it for a random secret kept in the data
#: directory (:mod:`orderradar.devstack.session_secret`), and ``orderradar web`` refuses to
#: start with it anywhere else.
DEV_SESSION_SECRET = "dev-only-change-me-" + "0" * 24


class SettingsError(ValueError):
    """The environment holds a bad value; the message names the variable."""


class Settings(BaseSettings):
    """Endpoints, ports and secrets. Defaults are the local stack of ``orderradar up``."""

    # ``ORDERRADAR_GATEWAY_<FIELD>`` sets ``gateway.<field>``: split once, after the prefix.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_nested_delimiter="_", env_nested_max_split=1
    )

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,64}$")
    partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=5)
    app_id: str = Field(default="orderradar", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    #: PLAINTEXT only for the loopback development stack; production uses SASL (docs/security.md).
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    #: CA bundle that signed the brokers' certificates (SASL_SSL); default: the system's.
    kafka_ca_file: Path | None = None

    # InfluxDB 1.x HTTP API (also served by 1.8+, 2.x v1-compat and 3.x)
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = Field(default="orderradar", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_timeout_s: float = Field(default=10.0, gt=0, le=300)

    # Web tier
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    #: Extra names the web tier answers to besides ``public_url``'s host (with a public URL
    #: set, any other ``Host`` header is refused with 400).
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    #: Reverse proxies (IP addresses or networks) whose ``X-Forwarded-For``/``-Proto`` are
    #: believed; empty: the headers are ignored and the peer address is the client.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    #: When set, ``/metrics`` is served only on this port (at ``metrics_host``), not on ``web_port``.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    #: ``source=key`` pairs, comma separated: the per-source ingest API keys.
    ingest_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    #: Open WebSockets (tracking and war-room together) per client address; more are
    #: closed with 4429. Raise it when many customers share one address (carrier NAT).
    ws_max_connections_per_client: int = Field(default=128, ge=1, le=1_000_000)
    #: Seconds a client has to send a complete request head (line and headers) after
    #: connecting, or after the first byte of a later request; then it is disconnected.
    web_header_timeout_s: float = Field(default=10.0, gt=0, le=300)

    # Maps: a raster tile URL template ({z}/{x}/{y}); without one, maps draw the shipped boundaries.
    map_tile_url: str | None = None
    map_tile_attribution: str = ""
    #: The tiles' datum: ``gcj02`` for Chinese providers (AMap, Tencent), whose tiles are offset.
    map_tile_crs: Literal["wgs84", "gcj02"] = "wgs84"

    # Local stack (``orderradar up``)
    data_dir: Path = DEFAULT_DATA_DIR
    broker_port: int = Field(default=9092, ge=0, le=65535)
    influx_port: int = Field(default=8086, ge=0, le=65535)
    config_dir: Path = PACKAGE_CONFIG_DIR

    # Worker
    worker_batch_size: int = Field(default=2000, ge=1, le=100_000)
    worker_batch_window_s: float = Field(default=0.2, gt=0, le=60)
    #: Radius of a SKU's customer area around its destination (geofences: "courier is nearby").
    geofence_customer_area_m: float = Field(default=500.0, gt=0, le=20_000)
    #: Customer delay notices (``stream/sinks/customer_notices.py``): receivers and language;
    #: ``None`` = ``<config_dir>/customer_notices.yaml``. Receiver secrets (webhook URL and
    #: signing secret, SMTP password) come from ``ORDERRADAR_ALERT_SECRET_<NAME>``; none by default.
    customer_notices_file: Path | None = None

    #: Alert and customer-notice receiver secrets (webhook URLs, signing secrets, SMTP
    #: passwords): ``ORDERRADAR_ALERT_SECRET_<NAME>`` sets ``alert_secret["<name>"]``.
    alert_secret: dict[str, SecretStr] = Field(default_factory=dict)

    # Web gateway limits (``config/gateway.py``): ``ORDERRADAR_GATEWAY_<FIELD>``
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    # Worker hot-state retention in event time (``stream/core/retention.py``): ``ORDERRADAR_RETENTION_<FIELD>``
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("allowed_origins", "allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("ingest_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        keys: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in value.split(","))):
            source, sep, key = pair.partition("=")
            if not sep or not source or not key:
                raise ValueError("expected source=key pairs separated by commas")
            keys[source.strip()] = key.strip()
        return keys

    @field_validator("ingest_keys")
    @classmethod
    def _plain_source_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        # The names events carry as ``source`` and staff see: the event contract's rule.
        for source in value:
            try:
                plain_text(source)
            except ValueError as exc:
                shown = source.encode("unicode_escape").decode()
                raise ValueError(f"source name '{shown}' {exc}") from None
            if len(source) > 64:
                raise ValueError(f"source name {source[:20]!r}... is longer than 64 characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (no host names, no '*')") from None
        return value

    @field_validator("session_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _kafka_credentials(self) -> Settings:
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and not (self.kafka_username and self.kafka_password):
            raise ValueError(
                f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                f"{ENV_PREFIX}KAFKA_USERNAME and {ENV_PREFIX}KAFKA_PASSWORD"
            )
        if not sasl and (self.kafka_username or self.kafka_password):
            raise ValueError(
                f"Kafka credentials are set but {ENV_PREFIX}KAFKA_SECURITY_PROTOCOL is PLAINTEXT "
                "(they would not be used)"
            )
        if self.kafka_ca_file is not None and not self.kafka_ca_file.is_file():
            raise ValueError(f"{ENV_PREFIX}KAFKA_CA_FILE {self.kafka_ca_file} is not a file")
        if (self.influx_username is None) != (self.influx_password is None):
            raise ValueError(f"set both {ENV_PREFIX}INFLUX_USERNAME and {ENV_PREFIX}INFLUX_PASSWORD, or neither")
        return self

    def receiver_secrets(self) -> dict[str, str]:
        """The receivers' secrets by lower-case name (``alerting.channels.build_channel``)."""
        return {
            name.lower(): value.get_secret_value()
            for name, value in self.alert_secret.items()
            if value.get_secret_value()
        }

    @property
    def uses_dev_secret(self) -> bool:
        """Whether the session secret is the public built-in one."""
        return self.session_secret.get_secret_value() == DEV_SESSION_SECRET

    def topic(self, name: str) -> str:
        """The real topic name of a logical topic (``order-events`` ...)."""
        return f"{self.topic_prefix}{name}"

    @property
    def faust_app_id(self) -> str:
        return f"{self.topic_prefix}{self.app_id}"

    def with_overrides(self, **changes: object) -> Settings:
        """A revalidated copy (settings are frozen)."""
        return type(self).model_validate({**self.model_dump(), **changes})


def to_env(settings: Settings) -> dict[str, str]:
    """``ORDERRADAR_*`` variables that reproduce ``settings`` in a child process, each in the
    form its field parses: ``source=key`` pairs and comma lists for the ``NoDecode`` fields,
    one ``ORDERRADAR_ALERT_SECRET_<NAME>`` per receiver secret, JSON for nested models."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, (set, frozenset, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, timedelta):
            return f"{value.total_seconds():g}s"
        return str(value) if isinstance(value, Path) else value

    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        key = f"{ENV_PREFIX}{name.upper()}"
        if value is None or value == {}:
            continue
        if name == "alert_secret":
            env.update({f"{key}_{k.upper()}": v.get_secret_value() for k, v in value.items()})
        elif name == "ingest_keys":
            env[key] = ",".join(f"{k}={v.get_secret_value()}" for k, v in value.items())
        elif isinstance(value, BaseModel):  # nested settings (``gateway``, ``retention``)
            env[key] = json.dumps(plain(value.model_dump(exclude_unset=True)))
        elif isinstance(value, tuple):
            env[key] = ",".join(value)
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        else:
            env[key] = str(plain(value))
    return env


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, translating errors to name the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = "_".join(str(p) for p in err["loc"])
            # Checks across fields have no location; their message names the variables.
            problems.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}" if field else err["msg"])
        raise SettingsError("bad environment settings:\n  " + "\n  ".join(problems)) from None
