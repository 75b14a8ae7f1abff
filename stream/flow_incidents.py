"""Lifecycle and records of the flow checks' incidents (:mod:`stream.flow_anomaly`).

An incident is ``open`` when its check first fires, ``stable`` while it keeps firing,
``recovering`` when it stops and ``resolved`` after ``resolve_after`` without firing.
Records have the fields of :mod:`stream.incident_detector` records (kind ``flow``) plus ``flow``
(check, observed, expected, window). Pure: times are passed in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from stream.incident_model import AREA, IncidentChange, Signature, iso

KIND = "flow"
DROP, SURGE = "drop", "surge"


@dataclass(frozen=True, slots=True)
class Finding:
    """One key that fires in one evaluation (its most significant window)."""

    check: str
    signature: Signature
    observed: int
    expected: float
    window_slots: int
    p_value: float


@dataclass(slots=True)
class FlowIncident:
    incident_id: str
    check: str
    signature: Signature
    state: str
    opened_at: float
    last_seen: float
    observed: int
    expected: float
    window_slots: int
    p_value: float
    peak_deficit: float = 0.0
    quiet_since: float | None = None
    keys: list[str] = field(default_factory=list)  # the (dimension, value) keys it froze

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "check": self.check,
            "dim": self.signature.dim,
            "values": list(self.signature.values),
            "state": self.state,
            "opened_at": self.opened_at,
            "last_seen": self.last_seen,
            "observed": self.observed,
            "expected": self.expected,
            "window_slots": self.window_slots,
            "p_value": self.p_value,
            "peak_deficit": self.peak_deficit,
            "quiet_since": self.quiet_since,
            "keys": list(self.keys),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowIncident:
        return cls(
            data["incident_id"],
            data["check"],
            Signature(data["dim"], tuple(data["values"])),
            data["state"],
            data["opened_at"],
            data["last_seen"],
            data["observed"],
            data["expected"],
            data["window_slots"],
            data["p_value"],
            data["peak_deficit"],
            data["quiet_since"],
            list(data["keys"]),
        )


class FlowIncidents:
    """The open flow incidents of one detector."""

    def __init__(self, step: float, resolve_after: float, replay: str | None = None) -> None:
        self._step = step
        self._resolve_after = resolve_after
        self.replay = replay
        self._open: dict[str, FlowIncident] = {}

    @property
    def open_incidents(self) -> list[FlowIncident]:
        return sorted(self._open.values(), key=lambda i: (i.opened_at, i.incident_id))

    def _new_id(self, finding: Finding, at: float) -> str:
        replay = f"|replay={self.replay}" if self.replay is not None else ""
        sig = finding.signature
        text = f"{KIND}|{finding.check}|{sig.dim}|{'|'.join(sig.values)}|{at:.3f}{replay}"
        return f"inc-{hashlib.sha1(text.encode()).hexdigest()[:16]}"

    def _match(self, finding: Finding) -> FlowIncident | None:
        for inc in self._open.values():
            if inc.check != finding.check:
                continue
            if inc.signature == finding.signature:
                return inc
            if inc.signature.dim == AREA == finding.signature.dim and set(inc.signature.values) & set(
                finding.signature.values
            ):
                return inc  # the same area, grown or shrunk
        return None

    def update(self, at: float, findings: list[Finding]) -> list[IncidentChange]:
        """Open, keep, or let recover and resolve the incidents of this evaluation's findings."""
        events: list[IncidentChange] = []
        seen: set[str] = set()
        for f in sorted(findings, key=lambda f: (f.signature.dim, f.signature.values, f.check)):
            inc = self._match(f)
            opened = inc is None
            if inc is None:
                inc = FlowIncident(
                    self._new_id(f, at),
                    f.check,
                    f.signature,
                    "open",
                    at,
                    at,
                    f.observed,
                    f.expected,
                    f.window_slots,
                    f.p_value,
                )
                self._open[inc.incident_id] = inc
            before = (inc.state, inc.signature)
            inc.signature = f.signature
            inc.keys = [f"{f.signature.dim}={v}" for v in f.signature.values]
            inc.observed, inc.expected, inc.window_slots = f.observed, f.expected, f.window_slots
            inc.p_value = float(f"{f.p_value:.3g}")
            inc.peak_deficit = max(inc.peak_deficit, abs(f.expected - f.observed))
            inc.last_seen, inc.quiet_since = at, None
            if not opened:
                inc.state = "stable"
            seen.add(inc.incident_id)
            if opened or (inc.state, inc.signature) != before:
                events.append(self._event("incident.opened" if opened else "incident.updated", inc, at))
        for inc in self.open_incidents:
            if inc.incident_id in seen:
                continue
            if inc.quiet_since is None:
                inc.quiet_since = at
            if at - inc.quiet_since >= self._resolve_after:
                inc.state = "resolved"
                del self._open[inc.incident_id]
                events.append(self._event("incident.resolved", inc, at))
            elif inc.state != "recovering":
                inc.state = "recovering"
                events.append(self._event("incident.updated", inc, at))
        return events

    def _event(self, kind: str, inc: FlowIncident, at: float) -> IncidentChange:
        return IncidentChange(kind, inc.incident_id, self.record(inc, at), at)

    def record(self, inc: FlowIncident, at: float) -> dict[str, Any]:
        """The incident as an ``order-incidents`` record (the fields of ``stream.incident_detector``)."""
        sig = inc.signature
        window_s = inc.window_slots * self._step
        verb = "stopped" if inc.check == DROP and inc.observed == 0 else inc.check
        ratio = inc.observed / inc.expected if inc.expected else 0.0
        title = (
            f"{sig.text}: flow {verb}, {inc.observed} events in {window_s / 60:.0f} min (expected {inc.expected:.0f})"
        )
        location = None
        if sig.dim == AREA:
            where = sig.root_cause()
            location = {"lat": where["lat"], "lon": where["lon"], "h3": sig.values[0]}
        return {
            "v": 1,
            "incident_id": inc.incident_id,
            "kind": KIND,
            "state": inc.state,
            "dimension": sig.dim,
            "root_cause": sig.root_cause(),
            "root_cause_text": sig.text,
            "location": location,
            "title": title,
            "at": iso(at),
            "opened_at": iso(inc.opened_at),
            "first_seen": iso(inc.opened_at),
            "last_seen": iso(inc.last_seen),
            "resolved_at": iso(at) if inc.state == "resolved" else None,
            "counts": {"current": inc.observed, "peak": inc.observed, "skus": 0, "orders": 0, "by_label": {}},
            "lift": round(ratio, 3),
            "p_value": inc.p_value,
            "share": 0.0,
            "baseline_share": 0.0,
            "trend": {"direction": "flat", "delta": 0, "series": [inc.observed]},
            "sample_orders": [],
            "sample_skus": [],
            "labels": {},
            "impact": {"order_value": 0.0, "vip_orders": 0, "penalty_orders": 0, "min_minutes_to_promise": None},
            "flow": {
                "check": inc.check,
                "observed": inc.observed,
                "expected": round(inc.expected, 1),
                "window_s": window_s,
                "ratio": round(ratio, 3),
            },
            "replay": self.replay,
        }

    def to_dict(self) -> list[dict[str, Any]]:
        return [inc.to_dict() for inc in self.open_incidents]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        self._open = {raw["incident_id"]: FlowIncident.from_dict(raw) for raw in saved}
