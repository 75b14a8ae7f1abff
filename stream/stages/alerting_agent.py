"""The alerting agent: the single owner of :class:`alerting.engine.AlertEngine`.

It consumes two one-partition topics, ``alert-inputs`` (incident lifecycle events the
delays stage forwards) and ``orderradar-control`` (ack / resolve / silence commands of the
gateway), and ticks the engine every ``tick_interval_s`` of wall-clock time. Because both
topics have one partition, exactly one worker of the group owns the engine; the timer
does nothing on the others.

Incidents of a replay of history (``"replay": <id>``, see :mod:`stream.core.replay`) carry the
label ``replay``: the engine records their alerts, marked so, and sends no notification.

Per input (the alerting recipe): engine call -> new notifications into the alerting
outbox -> save ``{"engine", "outbox"}`` (changelog acknowledged) -> publish the
``AlertEvent`` records (``alerts`` topic, ``alert_events`` points) -> deliver what is due
-> save again and publish the delivery records. A crash between save and delivery
re-delivers from the saved outbox; notifications carry stable ids for deduplication.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from alerting.channels import configured_channels
from alerting.decisions import AlertEvent, Decision, HistoryTimes, Notification
from alerting.delivery import DeliveryStage
from alerting.engine import REPLAY_LABEL, AlertEngine, UnknownAlertError, UnknownSilenceError
from alerting.incident import FlowCounts, IncidentEvent
from alerting.outbox import NotificationOutbox
from alerting.policy import AlertPolicy
from stream.sinks.influx import InfluxWriter
from stream.sinks.line_protocol import alert_event_line
from stream.sinks.outbox import Outbox, OutRecord

log = logging.getLogger(__name__)

STATE_KEY = "state"
#: Root-cause dimensions of ``stream.core.incident_detector`` and the alert labels they become.
_LABELS = {
    "hub": "node",
    "node": "node",
    "warehouse": "warehouse",
    "carrier": "carrier",
    "region": "region",
    "channel": "channel",
    "device_id": "device_id",
    "source": "source",
}
#: Alert kinds of delay incidents by root-cause dimension.
_KINDS = {
    "hub": "hub_stall",
    "carrier": "carrier_slowdown",
    "carrier_region": "carrier_slowdown",
    "region": "region_disruption",
    "area": "region_disruption",
}
#: Incident kinds that are alert kinds as they are: a flow check's incident (``stream.core.flow_incidents``)
#: counts events, not orders, and is titled by its counts, not as delays at its place.
_OWN_KINDS = ("data_quality", "flow")


def incident_from_record(record: Mapping[str, Any]) -> IncidentEvent:
    """An ``order-incidents`` record (:mod:`stream.core.incident_detector`) as the engine's input."""
    root = record.get("root_cause") or {}
    shared = record.get("labels") or {}  # what all its items share (a hub's region, ...)
    labels = {_LABELS[k]: str(v) for k, v in shared.items() if k in _LABELS}
    labels.update({_LABELS[k]: str(v) for k, v in root.items() if k in _LABELS})
    labels["dimension"] = str(record.get("dimension") or "")
    if record.get("replay"):
        labels[REPLAY_LABEL] = str(record["replay"])  # recorded, never paged (alerting.engine)
    kind = record["kind"] if record["kind"] in _OWN_KINDS else _KINDS.get(str(record.get("dimension")), "order_late")
    flow = record.get("flow") if kind == "flow" else None
    counts = record.get("counts") or {}
    impact = record.get("impact") or {}
    minutes = impact.get("min_minutes_to_promise")
    return IncidentEvent(
        incident_id=record["incident_id"],
        kind=kind,
        state=record["state"],
        labels=labels,
        affected_orders=int(counts.get("orders", 0)),
        affected_skus=int(counts.get("skus", 0)),
        order_value=float(impact.get("order_value") or 0.0),
        vip_orders=int(impact.get("vip_orders") or 0),
        penalty_orders=int(impact.get("penalty_orders") or 0),
        min_minutes_to_promise=None if minutes is None else float(minutes),
        first_seen=record.get("first_seen") or record["at"],
        updated_at=record["at"],
        title=str(record.get("title") or record.get("root_cause_text") or record["incident_id"])[:300],
        flow=FlowCounts.model_validate({k: v for k, v in flow.items() if k in FlowCounts.model_fields})
        if flow
        else None,
    )


def build_delivery(policy: AlertPolicy, secrets: Mapping[str, str], client: httpx.AsyncClient) -> DeliveryStage:
    """Channels of every receiver whose secrets are configured; the others are logged and
    left out (their notifications are recorded as undeliverable, never crash the worker)."""
    channels = configured_channels(policy.receivers, secrets, client, "alert receiver")
    return DeliveryStage(channels, secrets=secrets.values())


@dataclass(eq=False, repr=False)  # the table and the policy are no one's log line
class AlertingAgent:
    """Drives the engine; see the module doc. Not thread-safe: callers serialise calls."""

    policy: AlertPolicy
    delivery: DeliveryStage
    producer: Outbox
    influx: InfluxWriter
    #: The agent's Faust table: ``{"engine", "outbox"}`` under :data:`STATE_KEY`.
    store: MutableMapping[str, Any]
    _: KW_ONLY
    alerts_topic: str
    changelog_topic: str
    _engine: AlertEngine | None = field(default=None, init=False)
    _outbox: NotificationOutbox = field(default_factory=NotificationOutbox, init=False)
    #: Distinct times for the alert_events points (their tags often repeat).
    _history: HistoryTimes = field(default_factory=HistoryTimes, init=False)

    @property
    def engine(self) -> AlertEngine:
        if self._engine is None:  # first use: after Faust recovered the table
            saved = self.store.get(STATE_KEY) or {}
            self._engine = AlertEngine.from_dict(self.policy, saved.get("engine") or {})
            self._outbox = (
                NotificationOutbox.from_dict(saved["outbox"]) if saved.get("outbox") else NotificationOutbox()
            )
        return self._engine

    async def on_incident(self, record: Mapping[str, Any], now: datetime) -> None:
        await self._run(self.engine.observe_incident(incident_from_record(record), now), now)

    async def on_command(self, command: Mapping[str, Any], now: datetime) -> None:
        kind, actor = command.get("type"), str(command.get("actor") or "unknown")
        engine = self.engine
        try:
            if kind == "alert_ack":
                decisions = engine.ack(command["alert_id"], actor, now)
            elif kind == "alert_resolve":
                decisions = engine.resolve(command["alert_id"], actor, now)
            elif kind == "silence_create":
                ends_at = datetime.fromisoformat(command["ends_at"]) if command.get("ends_at") else None
                duration = None
                if command.get("duration_s"):
                    duration = timedelta(seconds=int(command["duration_s"]))
                decisions = engine.silence(
                    command["matchers"],
                    actor,
                    now,
                    ends_at=ends_at,
                    duration=duration,
                    until_resolved=bool(command.get("until_resolved")),
                    comment=str(command.get("comment") or ""),
                )
            elif kind == "silence_expire":
                decisions = engine.expire_silence(command["silence_id"], actor, now)
            else:
                return  # disruption zones and audit records are not the engine's
        except (UnknownAlertError, UnknownSilenceError) as exc:
            log.warning("control command %s ignored: %s", command.get("command_id"), exc)
            return
        await self._run(decisions, now)

    async def tick(self, now: datetime) -> None:
        await self._run(self.engine.tick(now), now)

    async def _run(self, decisions: Sequence[Decision], now: datetime) -> None:
        self._outbox.add_all((d for d in decisions if isinstance(d, Notification)), now)
        await self._save()
        await self._publish([d for d in decisions if isinstance(d, AlertEvent)])
        if self._outbox.due(now):
            records = await self.delivery.deliver_due(self._outbox, now)
            await self._save()
            await self._publish(records)

    async def _save(self) -> None:
        state = {"engine": self.engine.to_dict(), "outbox": self._outbox.to_dict()}
        await self.producer.send(
            [OutRecord(self.changelog_topic, orjson.dumps(state), STATE_KEY.encode(), 0)], exact_end_offsets=True
        )
        self.store[STATE_KEY] = state

    async def _publish(self, records: Sequence[AlertEvent]) -> None:
        if not records:
            return
        times = self._history.times(records)
        await self.influx.write([alert_event_line(r, t) for r, t in zip(records, times, strict=True)])
        await self.producer.send(
            [
                OutRecord(
                    self.alerts_topic, orjson.dumps(r.to_dict()), (r.alert_id or r.silence_id or r.record_id).encode()
                )
                for r in records
            ]
        )


__all__ = ["AlertingAgent", "build_delivery", "incident_from_record"]
