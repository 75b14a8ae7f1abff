"""One gateway instance: its caches, readers, producer, hub and background tasks.

:class:`Gateway` wires the pure parts (caches, token grants, war-room state) to Kafka and
to the WebSocket hub. The app factory builds one and starts it in the ASGI lifespan;
request handlers reach it as ``request.state.gateway`` (lifespan state). Pages mounted by other parts
(the tracking page, the war-room) may call :meth:`Gateway.tracking_token_valid` and
:meth:`Gateway.customer_order`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from config.client_auth import kafka_auth
from config.gateway import GatewaySettings
from config.settings import Settings
from dashboard.gateway.alert_board import fold_alert_record
from dashboard.gateway.audit import AuditTrail
from dashboard.gateway.background import cancel_all
from dashboard.gateway.hub import Hub
from dashboard.gateway.messages import TrackSnapshot
from dashboard.gateway.metrics import GatewayMetrics, sync_lag_samples
from dashboard.gateway.order_cache import OrderCache
from dashboard.gateway.order_snapshot import OrderSnapshot
from dashboard.gateway.projection import empty_view
from dashboard.gateway.publisher import BusPublisher
from dashboard.gateway.rate_limit import KeyedRateLimiter
from dashboard.gateway.record_seal import RecordSeal
from dashboard.gateway.staff import StaffDirectory
from dashboard.gateway.tracking_tokens import TrackingTokens, parse_record
from dashboard.gateway.update_consumer import StartAt, TopicReader
from dashboard.gateway.warroom_state import WarroomState, item_of_warroom_record
from stream.core.control_commands import disruption_change
from stream.topics import ALERTS, CONTROL, ORDER_INCIDENTS, ORDER_UPDATES, TRACKING_TOKENS, WARROOM_UPDATES

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def load_staff(path: Path) -> StaffDirectory:
    """The staff file, or nobody when it does not exist (logged: nobody can log in).

    A file that exists but is invalid raises ``RuleFileError`` naming field and problem.
    """
    if not path.exists():
        log.warning("no staff file at %s: staff login is disabled (see config/staff.example.yaml)", path)
        return StaffDirectory.empty()
    return StaffDirectory.load(path)


def _json_object(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    if record.value is None:
        raise ValueError("record has no value")
    obj = orjson.loads(record.value)
    if not isinstance(obj, dict):
        raise ValueError("record value is not a JSON object")
    return obj


class Gateway:
    def __init__(
        self,
        settings: Settings,
        options: GatewaySettings,
        *,
        staff: StaffDirectory | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.options = options
        self.clock = clock
        self.monotonic = monotonic
        self.metrics = GatewayMetrics()
        self.publisher = BusPublisher(settings, options.publish_timeout_s)
        self.audit = AuditTrail(self.publisher, self.metrics, clock)
        self.staff = staff if staff is not None else load_staff(options.staff_path(settings))
        self.orders = OrderCache(options.order_cache_size, options.deltas_per_order)
        self.warroom = WarroomState(options.warroom_history, options.warroom_items_per_channel)
        self.tokens = TrackingTokens()
        #: Only records sealed by a web instance become grants (``record_seal``).
        self.token_seal = RecordSeal(settings.session_secret, settings.topic(TRACKING_TOKENS))
        self.hub = Hub(self.metrics, options.ws_max_lag_s, monotonic)
        self.ingest_limiter = KeyedRateLimiter(options.ingest_rate_per_s, options.ingest_burst)
        self.login_limiter = KeyedRateLimiter(options.login_rate_per_s, options.login_burst)
        self.lookup_limiter = KeyedRateLimiter(options.ws_failed_lookups_per_s, options.ws_failed_lookups_burst)
        self.updates = TopicReader(
            "updates",
            settings.kafka_bootstrap,
            [settings.topic(t) for t in (ORDER_UPDATES, WARROOM_UPDATES, ORDER_INCIDENTS, ALERTS, CONTROL)],
            self._on_update,
            self.metrics,
            start=StartAt.RECENT,
            lookback=options.lookback_per_partition,
            lookback_by_topic={settings.topic(t): n for t, n in options.lookback_by_topic.items()},
            fetch_max_wait_ms=options.fetch_max_wait_ms,
            security=kafka_auth(settings),
        )
        self.grants = TopicReader(
            "tracking-tokens",
            settings.kafka_bootstrap,
            [settings.topic(TRACKING_TOKENS)],
            self._on_token_record,
            self.metrics,
            start=StartAt.EARLIEST,
            fetch_max_wait_ms=options.fetch_max_wait_ms,
            security=kafka_auth(settings),
        )
        self._handlers: dict[str, Callable[[ConsumerRecord[bytes, bytes]], None]] = {
            settings.topic(ORDER_UPDATES): self._on_order_update,
            settings.topic(WARROOM_UPDATES): self._on_warroom_update,
            settings.topic(ORDER_INCIDENTS): self._on_incident,
            settings.topic(ALERTS): self._on_alert,
            settings.topic(CONTROL): self._on_control,
        }
        self._tasks: list[asyncio.Task[None]] = []
        #: Background tasks that ended on an error (reported by /readyz).
        self.failed_tasks: list[str] = []
        self._attach_gauges()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        def spawn(name: str, coro: Coroutine[Any, Any, None]) -> None:
            task = asyncio.create_task(coro, name=f"gateway-{name}")
            task.add_done_callback(self._task_ended)
            self._tasks.append(task)

        spawn("publisher", self.publisher.run())
        spawn("updates", self.updates.run())
        spawn("grants", self.grants.run())
        spawn("sweeper", self.hub.run_sweeper())
        spawn("pruner", self._prune_forever())

    async def stop(self) -> None:
        await self.hub.close_all()
        await cancel_all(self._tasks)
        await self.publisher.stop()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """Background tasks run forever; one that ends on an error is logged and reported
        by /readyz (the instance needs a restart)."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.failed_tasks.append(f"{task.get_name()}: {type(error).__name__}: {error}")
            log.error("background task %s died", task.get_name(), exc_info=error)

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(60)
            self.tokens.prune(self.clock())

    # -- what consumers feed in --------------------------------------------------------

    def _on_update(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self._handlers[record.topic](record)

    def _on_order_update(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:
            raise ValueError("record has no value")
        snapshot = OrderSnapshot.model_validate_json(record.value)
        change = self.orders.apply(snapshot, record.value)
        if change is not None:
            self.hub.order_changed(change)

    def _publish_item(self, channel: str, key: str, data: Any) -> None:
        self.hub.warroom_changed(self.warroom.apply(channel, key, data))

    def _on_warroom_update(self, record: ConsumerRecord[bytes, bytes]) -> None:
        obj = _json_object(record)
        channel, key = item_of_warroom_record(record.key, obj)
        self._publish_item(channel, key, obj)

    def _on_incident(self, record: ConsumerRecord[bytes, bytes]) -> None:
        obj = _json_object(record)
        incident_id = obj.get("incident_id")
        if not isinstance(incident_id, str) or not incident_id:
            raise ValueError("incident record has no 'incident_id'")
        self._publish_item("incident", incident_id, obj)

    def _on_alert(self, record: ConsumerRecord[bytes, bytes]) -> None:
        channel, key, item = fold_alert_record(_json_object(record), self.warroom.get)
        self._publish_item(channel, key, item)

    def _on_control(self, record: ConsumerRecord[bytes, bytes]) -> None:
        change = disruption_change(_json_object(record), self.clock())
        if change is not None:
            disruption_id, zone = change
            if zone is not None or self.warroom.get("disruption", disruption_id) is not None:
                self._publish_item("disruption", disruption_id, zone)

    def _on_token_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.tokens.apply(parse_record(self.token_seal.open(_json_object(record))))

    # -- for request handlers and mounted pages -----------------------------------------

    def tracking_token_valid(self, token: str) -> bool:
        """Whether ``token`` opens an order right now (the tracking page's ``TokenCheck``)."""
        return self.tokens.lookup(token, self.clock()) is not None

    def customer_order(self, token: str) -> dict[str, Any] | None:
        """The customer-visible snapshot message for ``token`` (``None``: the 404 case)."""
        order_id = self.tokens.lookup(token, self.clock())
        if order_id is None:
            return None
        entry = self.orders.get(order_id)
        snapshot = entry.snapshot() if entry is not None else TrackSnapshot(order_id, 0, empty_view())
        return dict(orjson.loads(snapshot.text()))

    def tracking_ttl(self, requested_s: int | None) -> timedelta:
        seconds = requested_s if requested_s is not None else self.options.tracking_ttl_default_s
        return timedelta(seconds=min(seconds, self.options.tracking_ttl_max_s))

    def _attach_gauges(self) -> None:
        m = self.metrics
        m.ws_clients.collect = lambda: [({"endpoint": e}, float(self.hub.count(e))) for e in ("track", "warroom")]
        m.consumer_lag.collect = lambda: [
            ({"topic": topic}, float(lag))
            for reader in (self.updates, self.grants)
            for topic, lag in reader.lag().items()
        ]
        m.cached_orders.collect = lambda: [({}, float(len(self.orders)))]
        m.tracking_tokens.collect = lambda: [({}, float(len(self.tokens)))]
        m.publisher_up.collect = lambda: [({}, 1.0 if self.publisher.connected else 0.0)]
        m.sync_lag.collect = lambda: sync_lag_samples(self.warroom.items("sync_lag"))
