"""How a :class:`~stream.core.delays_engine.DelaysEngine` is stored (its persistence half).

Table entries (:meth:`StoredDelays.take_dirty`, rebuilt by :meth:`StoredDelays.from_entries`):
one per SKU, one per lane histogram, ``core`` (watermarks, open flow incidents) and one per
incident detector, each written only when it changed, so an idle tick stores nothing
(issue #19: the detectors, rewritten on every tick, cost ~3 s at 200k SKUs). A full snapshot
(:meth:`StoredDelays.to_dict`) holds the detectors in ``core``, as stored entries of older
versions did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from stream.core.data_quality import FINDING_TITLES, DataQualityMonitor
from stream.core.delays import DelayTracker
from stream.core.flow_anomaly import FlowAnomalyDetector
from stream.core.incident_detector import IncidentDetector
from stream.core.lane_stats import LaneStats
from stream.core.sku_delay import DELAY_TITLES, SkuDelay
from stream.core.sla import SlaRules
from stream.core.watermarks import Watermarks

SNAPSHOT_VERSION = 1
#: The detectors' stored entries (``detector/<name>``; in a snapshot's ``core``).
DETECTORS = ("delay_incidents", "dq_incidents")


class StoredDelays:
    """The engine's persistence (a mixin of :class:`~stream.core.delays_engine.DelaysEngine`)."""

    rules: SlaRules
    replay: str | None
    replay_now: float | None
    events_processed: int
    watermarks: Watermarks
    flow: FlowAnomalyDetector | None
    delay_incidents: IncidentDetector
    dq_incidents: IncidentDetector
    tracker: DelayTracker
    quality: DataQualityMonitor
    #: Entries changed since the last :meth:`take_dirty` (``core`` and detector names).
    _dirty: set[str]

    def _core(self, detectors: bool = True) -> dict[str, Any]:
        core = {
            "version": SNAPSHOT_VERSION,
            "replay": self.replay,
            "replay_now": self.replay_now,
            "events_processed": self.events_processed,
            "watermarks": self.watermarks.to_dict(),
            "flow_incidents": self.flow.incidents.to_dict() if self.flow is not None else None,
        }
        if detectors:
            core.update((name, self._detector(name).to_dict()) for name in DETECTORS)
        return core

    def _detector(self, name: str) -> IncidentDetector:
        return self.delay_incidents if name == "delay_incidents" else self.dq_incidents

    def sku_entry(self, key: str) -> dict[str, Any] | None:
        """One SKU's stored form (``None`` once it is forgotten)."""
        s = self.tracker.get(key)
        if s is None:
            return None
        return {"delay": s.to_dict(), "fix": self.quality.fix_of(key)}

    def take_dirty(self) -> dict[str, dict[str, Any] | None]:
        """Table entries changed since the last call; ``None`` means delete the key.

        Keys: ``sku/<order_id>|<sku>`` (one per SKU), ``lane/<partition>/<histogram>``,
        ``core`` (watermarks, open flow incidents) and ``detector/<name>`` (the two incident
        detectors), each only when it changed. Together they rebuild the engine with
        :meth:`from_entries`.
        """
        entries: dict[str, dict[str, Any] | None] = {}
        for key in sorted(self.tracker.take_changed()):
            entries[f"sku/{key}"] = self.sku_entry(key)
        for partition in sorted(self.tracker.lane_stats):
            for key, hist in self.tracker.lane_stats[partition].take_dirty().items():
                entries[f"lane/{partition}/{key}"] = hist
        if "core" in self._dirty:
            entries["core"] = self._core(detectors=False)
        for name in DETECTORS:
            if name in self._dirty:
                entries[f"detector/{name}"] = self._detector(name).to_dict()
        self._dirty.clear()
        return entries

    @classmethod
    def from_entries(cls, rules: SlaRules, entries: Mapping[str, dict[str, Any]], replay: str | None = None) -> Self:
        """Rebuild from table entries written by :meth:`take_dirty` (deleted keys absent)."""
        engine = cls(rules, replay)  # type: ignore[call-arg]  # the engine's constructor
        core = entries.get("core")
        if core is not None:
            # detectors stored apart (older snapshots have them in ``core``)
            engine._load_core(
                {**core, **{name: entries[f"detector/{name}"] for name in DETECTORS if f"detector/{name}" in entries}}
            )
        for name in sorted(entries):
            value = entries[name]
            if name.startswith("lane/"):
                partition, _, key = name[len("lane/") :].partition("/")
                engine.tracker.lanes(int(partition)).restore(key, value)
        for name in sorted(entries):
            if name.startswith("sku/"):
                engine._restore_sku(name[len("sku/") :], entries[name])
        return engine

    def _load_core(self, core: dict[str, Any]) -> None:
        if core.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"delays snapshot version {core.get('version')!r}, expected {SNAPSHOT_VERSION}")
        rules = self.rules
        self.events_processed = core["events_processed"]
        self.replay_now = core.get("replay_now")
        self.watermarks = Watermarks.from_dict(
            rules.watermark.allowed_lateness.total_seconds(),
            rules.watermark.idle_after.total_seconds(),
            core["watermarks"],
        )
        if "delay_incidents" in core:
            self.delay_incidents = IncidentDetector.from_dict(
                rules.incidents, core["delay_incidents"], DELAY_TITLES, replay=self.replay
            )
        if "dq_incidents" in core:
            self.dq_incidents = IncidentDetector.from_dict(
                rules.data_quality.incidents, core["dq_incidents"], FINDING_TITLES, replay=self.replay
            )
        self.tracker.feed = self.delay_incidents
        if self.flow is not None and core.get("flow_incidents") is not None:
            # open incidents only: this entry is written after every batch, and the flow
            # baselines (thousands of keys) are learned again within minutes of live flow
            self.flow.incidents.restore(core["flow_incidents"])

    def _restore_sku(self, key: str, entry: dict[str, Any]) -> None:
        self.tracker.restore(SkuDelay.from_dict(entry["delay"]))
        if entry.get("fix") is not None:
            self.quality.restore_fix(key, entry["fix"])

    def to_dict(self) -> dict[str, Any]:
        """Full snapshot (JSON-ready)."""
        return {
            "core": self._core(),
            "lane_stats": {str(p): stats.to_dict() for p, stats in self.tracker.lane_stats.items()},
            "skus": {key: self.sku_entry(key) for key in self.tracker.keys()},  # noqa: SIM118 - a tracker, not a dict
        }

    @classmethod
    def from_dict(cls, rules: SlaRules, data: dict[str, Any]) -> Self:
        engine = cls(rules, data["core"].get("replay"))  # type: ignore[call-arg]
        engine._load_core(data["core"])
        for partition, stats in data["lane_stats"].items():
            engine.tracker.lane_stats[int(partition)] = LaneStats.from_dict(rules.prediction, stats)
        for key, entry in data["skus"].items():
            engine._restore_sku(key, entry)
        return engine
