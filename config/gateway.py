"""Tunables of the web gateway: the ``gateway`` part of :class:`config.settings.Settings`.

``Settings`` reads the environment once; the gateway's limits (body size, rate limits,
WebSocket buffers, cache sizes) are its nested ``gateway`` field, set by
``ORDERRADAR_GATEWAY_<FIELD>`` variables (for example ``ORDERRADAR_GATEWAY_WS_MAX_LAG_S=2``),
with safe defaults here. What the gateway shares with other commands (``public_url``,
``allowed_origins``, the session secret) it reads from ``Settings`` itself, passed in beside
these limits: each value has one field. Frozen: built once at start and passed down.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from config.settings import Settings

KIB = 1024
MIB = 1024 * KIB


class GatewaySettings(BaseModel):
    """Limits and sizes of one gateway instance. Every field has a production default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Ingest
    max_body_bytes: int = Field(default=1 * MIB, ge=1 * KIB, le=64 * MIB)
    max_events_per_batch: int = Field(default=10_000, ge=1, le=100_000)
    #: Requests per second per source (token bucket refill) and bucket size.
    ingest_rate_per_s: float = Field(default=50.0, gt=0)
    ingest_burst: int = Field(default=100, ge=1)
    #: Sources whose batches must carry a valid ``X-Signature``.
    signed_sources: frozenset[str] = frozenset()
    #: HMAC secrets per source; a source without one signs with its API key.
    signing_keys: dict[str, SecretStr] = Field(default_factory=dict)
    signature_tolerance_s: float = Field(default=300.0, gt=0)
    publish_timeout_s: float = Field(default=15.0, gt=0)

    # Staff access
    staff_file: Path | None = None
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    #: Adds ``Secure`` to the session cookie; on by default when ``Settings.public_url`` is https.
    https_only_cookies: bool | None = None
    #: Login attempts per client address (token bucket refill, bucket size).
    login_rate_per_s: float = Field(default=0.5, gt=0)
    login_burst: int = Field(default=10, ge=1)
    #: Failed logins per account name from all addresses together: at most 100 an hour
    #: after the burst (ASVS 2.2.1); a successful login gives its token back.
    login_account_rate_per_s: float = Field(default=100 / 3600, gt=0)
    login_account_burst: int = Field(default=10, ge=1)
    #: Secret of the one-click alert links (``alerting.links``); default: the session secret.
    alert_link_secret: SecretStr | None = None

    # Customer tracking links
    tracking_ttl_default_s: int = Field(default=14 * 86400, ge=1)
    tracking_ttl_max_s: int = Field(default=90 * 86400, ge=1)

    # What each instance keeps in memory
    order_cache_size: int = Field(default=20_000, ge=1)
    deltas_per_order: int = Field(default=32, ge=1, le=4096)
    warroom_history: int = Field(default=4096, ge=1)
    warroom_items_per_channel: int = Field(default=50_000, ge=1)
    #: Records read back per partition at start, to warm the caches ("a recent position").
    lookback_per_partition: int = Field(default=2000, ge=0)
    #: Per logical topic: alerts and the control topic carry many records per item (alert
    #: history, audit trail), so more of them is read back to find every open alert and zone.
    lookback_by_topic: dict[str, int] = Field(default_factory=lambda: {"alerts": 20_000, "orderradar-control": 50_000})
    fetch_max_wait_ms: int = Field(default=50, ge=1, le=5000)

    # WebSockets
    #: Pending distinct keys per connection before it counts as too slow.
    track_outbox_keys: int = Field(default=8, ge=1)
    warroom_outbox_keys: int = Field(default=20_000, ge=1)
    #: A customer connection whose oldest unsent message is older than this is disconnected.
    ws_max_lag_s: float = Field(default=5.0, gt=0)
    #: The same for staff: war-room snapshots are large and staff links may be slow.
    warroom_max_lag_s: float = Field(default=30.0, gt=0)
    ws_first_message_timeout_s: float = Field(default=10.0, gt=0)
    ws_ping_interval_s: float = Field(default=15.0, gt=0)
    ws_ping_timeout_s: float = Field(default=15.0, gt=0)
    ws_max_message_bytes: int = Field(default=4 * KIB, ge=256)
    #: Transport buffer above which a send waits (asyncio high-water mark), per connection.
    ws_write_buffer_bytes: int = Field(default=32 * KIB, ge=1 * KIB)
    #: Kernel send buffer per WebSocket (SO_SNDBUF); bounds what a stalled reader pins.
    ws_socket_send_buffer: int | None = Field(default=64 * KIB, ge=4 * KIB)
    #: Failed tracking-token lookups allowed per client address (rate, burst).
    ws_failed_lookups_per_s: float = Field(default=2.0, gt=0)
    ws_failed_lookups_burst: int = Field(default=20, ge=1)

    # Readiness
    readiness_cache_s: float = Field(default=2.0, ge=0)
    readiness_timeout_s: float = Field(default=3.0, gt=0)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GatewaySettings:
        """``settings.gateway`` with overrides (tests), revalidated."""
        return cls.model_validate({**settings.gateway.model_dump(exclude_unset=True), **overrides})

    def staff_path(self, settings: Settings) -> Path:
        return self.staff_file if self.staff_file is not None else settings.config_dir / "staff.yaml"

    def secure_cookies(self, settings: Settings) -> bool:
        if self.https_only_cookies is not None:
            return self.https_only_cookies
        return settings.public_url.startswith("https://")
