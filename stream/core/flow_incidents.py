"""Lifecycle and records of the flow checks' incidents (:mod:`stream.core.flow_anomaly`).

An incident is ``open`` when its check first fires, ``stable`` while it keeps firing,
``recovering`` when it stops and ``resolved`` after ``resolve_after`` without firing.
Records have the fields of :mod:`stream.core.incident_detector` records (kind ``flow``) plus ``flow``
(check, observed, expected, window, and the impact estimate). Pure: times are passed in.

Impact estimate (what the alert tiers and the notification read). A flow check counts
events, not orders, so a flow incident's size is estimated, and labelled so:

* ``shortfall`` (a drop): parcel scans missing since the drop began, from the check's own
  baseline: the window's ``expected - observed`` when it opens, then the window's deficit
  per slot for every slot it keeps firing (a stopped hub of 20 scans a minute is ~60
  behind when a 3-minute window opens it, ~120 three minutes later). ``excess`` (a surge):
  orders above normal, the same way.
* in flight (:func:`in_flight`): the open orders the worker tracks at the key (a hub: the
  orders whose next or last node is it, as the delay incidents group them), their value,
  VIP and penalty orders and their earliest promise still ahead.
* affected orders of a drop: the shortfall, at most the orders in flight there (parcels
  behind are parcels that are there); their value, VIP and penalty orders are that share of
  the in-flight ones. A surge holds nothing up: its affected orders are 0, its excess is
  told.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import h3

from geo.regions import region_for
from stream.core.incident_model import AREA, PART_SEP, IncidentChange, Signature, iso
from stream.core.sku_delay import SkuDelay

KIND = "flow"
DROP, SURGE = "drop", "surge"
#: Dimensions whose in-flight orders the delay tracker knows (a source's it does not).
#: A SKU's value of each: its :func:`stream.core.sku_delay.cluster_values` read straight off the
#: record (the scan walks every tracked SKU: building each one's value map cost 6 us a SKU,
#: 1.2 s at 200k; tests/delays/test_flow_impact.py holds the two to the same answers).
_VALUE_OF: dict[str, Callable[[SkuDelay], str | None]] = {
    "hub": lambda s: s.next_node or s.node,
    "warehouse": lambda s: s.warehouse,
    "carrier": lambda s: s.carrier,
    "carrier_region": lambda s: s.carrier + PART_SEP + s.region if s.carrier and s.region else None,
    "region": lambda s: s.region,
    "channel": lambda s: s.channel,
    "device_id": lambda s: s.device_id,
    AREA: lambda s: s.cell if not s.next_node else None,
}
#: An open incident is published again when its affected-order estimate moved by this share.
_REPORT_STEP = 0.1


@dataclass(frozen=True, slots=True)
class InFlight:
    """The open orders at a flow incident's key (a hub's parcels inside and on their way)."""

    orders: int
    order_value: float
    vip_orders: int
    penalty_orders: int
    #: the earliest promise still ahead (epoch s); promises already broken are the late
    #: orders' incidents, not this stop's
    next_promise: float | None
    #: the province most of them are going to, and how many provinces they go to
    region: str | None
    regions: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InFlight:
        return cls(**data)


#: How the detector learns a key's in-flight orders (wired to the delay tracker by the engine).
InFlightOf = Callable[[Signature, float], "InFlight | None"]


def in_flight(skus: Iterable[SkuDelay], sig: Signature, at: float, h3_resolution: int) -> InFlight | None:
    """The open orders whose root-cause attribute (:func:`stream.core.sku_delay.cluster_values`) holds
    ``sig``'s value; an area's cells are matched at the flow checks' ``h3_resolution``.
    ``None`` for a dimension the tracker does not know (``source``)."""
    value_of = _VALUE_OF.get(sig.dim)
    if value_of is None:
        return None
    wanted = set(sig.values)
    if sig.dim == AREA:  # the tracker's cells are finer: a cell is in when its parent is
        value_of = functools.partial(_parent, value_of, h3_resolution, {})
    orders: dict[str, SkuDelay] = {}
    for s in skus:
        if s.closed_at is None and value_of(s) in wanted and s.order_id not in orders:
            orders[s.order_id] = s
    promises = [s.promise_due for s in orders.values() if s.promise_due is not None and s.promise_due >= at]
    regions = Counter(s.region for s in orders.values() if s.region)
    return InFlight(
        orders=len(orders),
        order_value=round(sum(s.order_value or 0.0 for s in orders.values()), 2),
        vip_orders=sum(s.vip for s in orders.values()),
        penalty_orders=sum(s.penalty for s in orders.values()),
        next_promise=min(promises) if promises else None,
        region=min(regions, key=lambda r: (-regions[r], r)) if regions else None,
        regions=len(regions),
    )


def _parent(
    cell_of: Callable[[SkuDelay], str | None], resolution: int, seen: dict[str, str | None], s: SkuDelay
) -> str | None:
    cell = cell_of(s)
    if cell is None:
        return None
    if cell not in seen:
        seen[cell] = h3.cell_to_parent(cell, resolution) if h3.get_resolution(cell) >= resolution else None
    return seen[cell]


def affected(check: str, deviation: float, there: InFlight | None) -> int:
    """Orders a flow incident holds up (see the module doc): a drop's shortfall, at most
    the orders in flight there; a surge's 0."""
    if check != DROP:
        return 0
    estimate = round(max(0.0, deviation))
    return estimate if there is None else min(estimate, there.orders)


def _share(n: float, part: int, there: InFlight) -> float:
    return n * part / there.orders if there.orders else 0.0


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
    #: when the drop (surge) began: its first window's start
    since: float | None = None
    #: scans missing (a drop) or orders above normal (a surge) since ``since``
    deviation: float = 0.0
    there: InFlight | None = None  # its in-flight orders as last published
    reported: int = 0  # affected orders as last published

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "check": self.check,
            **self.signature.to_dict(),
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
            "since": self.since,
            "deviation": self.deviation,
            "there": asdict(self.there) if self.there is not None else None,
            "reported": self.reported,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowIncident:
        return cls(
            data["incident_id"],
            data["check"],
            Signature.from_dict(data),
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
            data.get("since"),  # saved before the impact estimate: unknown
            float(data.get("deviation", 0.0)),
            InFlight.from_dict(data["there"]) if data.get("there") else None,
            int(data.get("reported", 0)),
        )


class FlowIncidents:
    """The open flow incidents of one detector."""

    def __init__(self, step: float, resolve_after: float, replay: str | None = None) -> None:
        self._step = step
        self._resolve_after = resolve_after
        self.replay = replay
        self._open: dict[str, FlowIncident] = {}
        #: the in-flight orders at a key; ``None``: not known (the estimate is the shortfall)
        self.in_flight_of: InFlightOf | None = None

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
            deficit = max(0.0, f.expected - f.observed if f.check == DROP else f.observed - f.expected)
            if opened:
                inc.since, inc.deviation = at - f.window_slots * self._step, deficit
            else:  # the window's deficit per slot, for every slot since the last one it fired in
                slots = 1 if inc.quiet_since is not None else max(1, round((at - inc.last_seen) / self._step))
                inc.deviation += deficit / f.window_slots * slots
            inc.signature = f.signature
            inc.keys = [f"{f.signature.dim}={v}" for v in f.signature.values]
            inc.observed, inc.expected, inc.window_slots = f.observed, f.expected, f.window_slots
            inc.p_value = float(f"{f.p_value:.3g}")
            inc.peak_deficit = max(inc.peak_deficit, abs(f.expected - f.observed))
            inc.last_seen, inc.quiet_since = at, None
            if not opened:
                inc.state = "stable"
            seen.add(inc.incident_id)
            grown = abs(affected(inc.check, inc.deviation, inc.there) - inc.reported) >= max(
                1.0, _REPORT_STEP * inc.reported
            )
            if opened or (inc.state, inc.signature) != before or grown:
                self._measure(inc, at)
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

    def _measure(self, inc: FlowIncident, at: float) -> None:
        """Count its in-flight orders (once per published change: it walks the tracked SKUs)."""
        if self.in_flight_of is not None:
            inc.there = self.in_flight_of(inc.signature, at)
        inc.reported = affected(inc.check, inc.deviation, inc.there)

    def _region(self, inc: FlowIncident) -> str | None:
        """The province an incident is in: a region's own, an area's centre (else where most
        of its orders go), or the one all its in-flight orders go to."""
        sig = inc.signature
        if sig.dim == "region":
            return sig.values[0]
        if sig.dim == "carrier_region":
            return sig.values[0].split(PART_SEP)[-1]
        there = inc.there.region if inc.there is not None and inc.there.orders else None
        if sig.dim == AREA:
            where = sig.root_cause()
            found = region_for(where["lon"], where["lat"])
            return found.adcode if found is not None and found.adcode else there
        # a hub's parcels go to many provinces: its region only when they all go to one
        return there if inc.there is not None and inc.there.regions == 1 else None

    def _event(self, kind: str, inc: FlowIncident, at: float) -> IncidentChange:
        return IncidentChange(kind, inc.incident_id, self.record(inc, at), at)

    def record(self, inc: FlowIncident, at: float) -> dict[str, Any]:
        """The incident as an ``order-incidents`` record (the fields of ``stream.core.incident_detector``)."""
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
        there, orders = inc.there, affected(inc.check, inc.deviation, inc.there)
        region = self._region(inc)
        impact: dict[str, Any] = {
            "order_value": round(_share(there.order_value, orders, there), 2) if there else 0.0,
            "vip_orders": round(_share(there.vip_orders, orders, there)) if there else 0,
            "penalty_orders": round(_share(there.penalty_orders, orders, there)) if there else 0,
            "min_minutes_to_promise": (
                round((there.next_promise - at) / 60.0, 1) if there and there.next_promise is not None else None
            ),
            "estimate": True,
        }
        since = inc.since if inc.since is not None else inc.opened_at
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
            "counts": {"current": inc.observed, "peak": inc.observed, "skus": 0, "orders": orders, "by_label": {}},
            "lift": round(ratio, 3),
            "p_value": inc.p_value,
            "share": 0.0,
            "baseline_share": 0.0,
            "trend": {"direction": "flat", "delta": 0, "series": [inc.observed]},
            "sample_orders": [],
            "sample_skus": [],
            "labels": {"region": region} if region else {},
            "impact": impact,
            "flow": {
                "check": inc.check,
                "observed": inc.observed,
                "expected": round(inc.expected, 1),
                "window_s": window_s,
                "ratio": round(ratio, 3),
                "since": iso(since),
                "duration_s": round(inc.last_seen - since, 1),
                "shortfall": round(inc.deviation) if inc.check == DROP else 0,
                "excess": round(inc.deviation) if inc.check == SURGE else 0,
                "in_flight": there.orders if there is not None else None,
                "estimate": True,
            },
            "replay": self.replay,
        }

    def to_dict(self) -> list[dict[str, Any]]:
        return [inc.to_dict() for inc in self.open_incidents]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        self._open = {raw["incident_id"]: FlowIncident.from_dict(raw) for raw in saved}
