"""Exception clustering: one incident per root cause, with its lifecycle and records.

Bad items (SKUs that are late, stalled or in exception; data-quality findings) are fed in
with their root-cause attributes (:mod:`stream.core.incident_items`), normal traffic as flow
counts per attribute value; at every evaluation step of event time (``eval_every``) the
root causes of the window's bad items are found (:mod:`stream.core.root_cause`) and each one
is matched to an open incident or opens one.

Incidents have a lifecycle: ``open`` -> ``growing`` / ``stable`` -> ``recovering`` (bad
items leaving, i.e. flow resumed, or no longer significant) -> ``resolved`` after
``resolve_after`` without significance. Ids are a hash of kind, root cause and opening
time. Nothing here reads a clock.

Evaluation is *as of* the slot boundary ``at``: an item counts when it was bad at ``at``
(``since < at < until``) and flow counts when its time is before ``at`` (flow is held per
slot as integer counts until its slot is evaluated, then folded in a fixed order). Inputs
from partitions that are further ahead therefore change nothing, so the result does not
depend on how the partitions' records were interleaved, only on each partition's own
order (late data beyond the allowed lateness excepted). Memberships of bad items in each
attribute value are maintained as they change, so an evaluation costs about the number
of attribute values and new items, not the number of bad SKUs.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Iterable
from typing import Any

import h3

from alerting.incident import IncidentState
from stream.core.incident_items import BadItems, ItemWindow
from stream.core.incident_model import (
    AREA,
    ClusterItem,
    Incident,
    IncidentChange,
    IncidentSettings,
    Signature,
    Values,
    iso,
)
from stream.core.root_cause import Candidate, FlowBaseline, RootCauses

_SERIES_LENGTH = 12
#: Attributes an incident names as labels when (nearly) all its current items share one
#: value: a hub incident's region and carrier, a carrier slowdown's hub. Inhibition and
#: routing match on them.
LABEL_DIMENSIONS: tuple[str, ...] = ("hub", "warehouse", "carrier", "region", "channel", "device_id")
_LABEL_SAMPLE = 500
_TREND_STEPS = 3


class IncidentDetector:
    """Sliding-window exception clustering for one kind of incident.

    Feed it with :meth:`observe_flow` (every event), :meth:`mark_bad` / :meth:`clear`
    (items entering / changing / leaving the bad set, with their times) and drive it with
    :meth:`advance` (the global watermark).
    """

    def __init__(
        self, kind: str, settings: IncidentSettings, titles: dict[str, str] | None = None, *, replay: str | None = None
    ) -> None:
        self.kind = kind
        #: The replay whose incidents these are (``None``: live); in ids and records.
        self.replay = replay
        self.settings = settings
        self._titles = titles or {}
        self._eval_every = settings.eval_every.total_seconds()
        self._window = settings.window.total_seconds()
        wanted = frozenset(settings.dimensions)
        self._items = BadItems(wanted, expire=settings.expire_items)
        self._flow = FlowBaseline(self._eval_every, settings.baseline.total_seconds(), wanted)
        self._causes = RootCauses(settings, self._flow)
        self._open: dict[str, Incident] = {}
        self._resolved: list[Incident] = []
        self._last_slot = -1

    # -- input --------------------------------------------------------------------
    def observe_flow(self, at: float, values: Values) -> None:
        """Count one event of normal traffic with its attribute values."""
        self._flow.observe(at, values)

    def mark_bad(self, item: ClusterItem) -> float:
        """An item is bad from ``item.since`` with these attributes; returns its episode start.

        A key already bad with the same label and attributes keeps its episode; otherwise
        the old episode ends at ``item.since`` and a new one starts there.
        """
        return self._items.mark_bad(item, self._evaluated())

    def clear(self, key: str, at: float) -> None:
        """The item stopped being bad at ``at``: its SKU moved on (flow resumed) or closed."""
        self._items.clear(key, at, self._evaluated())

    def restore_open(self, item: ClusterItem) -> None:
        """Put back an open episode rebuilt from the SKU's saved state."""
        self._items.open_episode(item)

    def _evaluated(self) -> float:
        """The time of the last evaluation: episodes ending after it still count for the next."""
        return self._last_slot * self._eval_every

    def __contains__(self, key: str) -> bool:
        return key in self._items

    @property
    def open_incidents(self) -> list[Incident]:
        return sorted(self._open.values(), key=lambda i: (i.opened_at, i.incident_id))

    @property
    def resolved_incidents(self) -> list[Incident]:
        return list(self._resolved)

    # -- evaluation ---------------------------------------------------------------
    def advance(self, watermark: float) -> list[IncidentChange]:
        """Evaluate once per ``eval_every`` slot of event time that the watermark enters."""
        slot = int(watermark // self._eval_every)
        if slot <= self._last_slot:
            return []
        self._last_slot = slot
        # as of the slot boundary: the same slot gives the same time (and incident ids)
        # however far into the slot the watermark happened to jump
        return self._evaluate(slot, slot * self._eval_every)

    def _evaluate(self, slot: int, at: float) -> list[IncidentChange]:
        decay = self._flow.fold(slot, at)
        view = self._items.window_at(at, at - self._window)
        roots = self._causes.find(view, decay)
        return self._update(at, roots, view, decay)

    def _match_open(self, root: Candidate, taken: set[str]) -> Incident | None:
        """The open incident this root cause belongs to: same signature, or mostly the same items."""
        ratio = self.settings.explain_ratio
        for inc in self.open_incidents:
            if inc.incident_id not in taken and inc.signature == root.signature:
                return inc
        for inc in self.open_incidents:
            if inc.incident_id in taken or not inc.current_keys:
                continue
            overlap = len(root.keys & inc.current_keys)
            if overlap and overlap >= ratio * min(root.count, len(inc.current_keys)):
                return inc
        return None

    def _keep_name(self, inc: Incident, root: Candidate, view: ItemWindow, decay: float) -> Candidate:
        """Keep an incident's name while it still explains the new root cause's items.

        Two explanations of the same items (a station's H3 cell and "carrier in that
        province") may swap places from one evaluation to the next; renaming the incident
        each time would be noise. It is renamed only when the new root cause covers
        clearly more, e.g. the hub behind the first few stranded parcels.
        """
        old = self._causes.current(inc.signature, view, decay)
        if len(old.keys & root.keys) >= self.settings.explain_ratio * root.count and self._causes.significant(old):
            return old
        return root

    def _new_id(self, sig: Signature, at: float) -> str:
        replay = f"|replay={self.replay}" if self.replay is not None else ""
        digest = hashlib.sha1(f"{self.kind}|{sig.dim}|{'|'.join(sig.values)}|{at:.3f}{replay}".encode())
        return f"inc-{digest.hexdigest()[:16]}"

    def _update(
        self,
        at: float,
        roots: list[Candidate],
        view: ItemWindow,
        decay: float,
    ) -> list[IncidentChange]:
        s = self.settings
        matched: dict[str, Candidate] = {}
        opened: set[str] = set()
        refined: set[str] = set()
        for root in roots:
            inc = self._match_open(root, set(matched))
            if inc is None:
                inc = Incident(
                    incident_id=self._new_id(root.signature, at),
                    kind=self.kind,
                    signature=root.signature,
                    state=IncidentState.OPEN,
                    opened_at=at,
                    first_seen=at,
                    last_seen=at,
                )
                self._open[inc.incident_id] = inc
                opened.add(inc.incident_id)
            elif inc.signature != root.signature:
                root = self._keep_name(inc, root, view, decay)
                if root.signature != inc.signature:
                    inc.signature = root.signature
                    refined.add(inc.incident_id)
            matched[inc.incident_id] = root

        events: list[IncidentChange] = []
        for inc in self.open_incidents:
            matched_root = matched.get(inc.incident_id)
            if matched_root is None:
                cand = self._causes.current(inc.signature, view, decay)
                active = self._causes.still_active(cand)
            else:
                cand, active = matched_root, True
            # trend against the count _TREND_STEPS evaluations ago, so one noisy step
            # does not flip the state back and forth
            reference = (
                inc.series[-_TREND_STEPS] if len(inc.series) >= _TREND_STEPS else (inc.series[0] if inc.series else 0)
            )
            inc.exit_series = (inc.exit_series + [len(view.exited & inc.current_keys)])[-_TREND_STEPS:]
            self._absorb(inc, cand, view, locate=inc.incident_id in opened or inc.incident_id in refined)
            if inc.incident_id in opened:
                state = IncidentState.OPEN
            elif active:
                inc.quiet_since = None
                if inc.current > reference * (1 + s.growth_ratio) and inc.current - reference >= 2:
                    state = IncidentState.GROWING
                elif inc.current < reference and sum(inc.exit_series) > 0:
                    state = IncidentState.RECOVERING  # SKUs are moving again
                else:
                    state = IncidentState.STABLE
            else:
                if inc.quiet_since is None:
                    inc.quiet_since = at
                if at - inc.quiet_since >= s.resolve_after.total_seconds():
                    state = IncidentState.RESOLVED
                else:
                    state = IncidentState.RECOVERING
            if active:
                inc.last_seen = at
            inc.state = state
            event = self._event_for(inc, at, inc.incident_id in opened, inc.incident_id in refined)
            if event is not None:
                events.append(event)
            if state is IncidentState.RESOLVED:
                inc.resolved_at = at
                del self._open[inc.incident_id]
                self._resolved.append(inc)
                del self._resolved[:-50]  # a short history for the API; InfluxDB keeps the rest
        return events

    def _absorb(self, inc: Incident, cand: Candidate, view: ItemWindow, *, locate: bool) -> None:
        """Take the candidate's current items into the incident (work ~ new items only)."""
        for key in cand.keys - inc.current_keys:
            item = view.item(key)
            inc.skus.add(f"{item.order_id}|{item.sku}")
            if item.order_id not in inc.orders:
                inc.orders.add(item.order_id)
                inc.order_value += item.value
                inc.vip_orders += item.vip
                inc.penalty_orders += item.penalty
            inc.first_seen = min(inc.first_seen, item.since)
        promises = [p for k in cand.keys if (p := view.item(k).promise) is not None]
        inc.min_promise = min(promises) if promises else None
        inc.current = cand.count
        inc.peak = max(inc.peak, cand.count)
        inc.current_keys = set(cand.keys)
        inc.lift, inc.share, inc.baseline_share = cand.lift, cand.share, cand.baseline_share
        inc.p_value = float(f"{cand.p_value:.3g}")
        labels = {label: len(cand.keys & view.keys_labelled(label)) for label in view.labels}
        inc.labels = {label: n for label, n in labels.items() if n}
        sample = [view.item(k) for k in heapq.nsmallest(_LABEL_SAMPLE, cand.keys)]
        if locate or inc.cell is None:
            # where most of its SKUs were last seen, from a fixed sample of them
            cells = Counter(c for item in sample for c in item.values.get(AREA, ()))
            if cells:
                inc.cell = min(cells, key=lambda c: (-cells[c], c))
        inc.common = _common_values(sample, self.settings.explain_ratio)
        inc.series = (inc.series + [cand.count])[-_SERIES_LENGTH:]

    def _event_for(self, inc: Incident, at: float, opened: bool, refined: bool) -> IncidentChange | None:
        changed_count = abs(inc.current - inc.emitted_count) >= max(2, inc.emitted_count // 10)
        # every VIP or penalty order counts for the alert tiers (their thresholds are small)
        vip, penalty, value = inc.emitted_impact
        changed_impact = (inc.vip_orders, inc.penalty_orders) != (vip, penalty) or inc.order_value > value * 1.1
        if not (opened or refined or inc.state.value != inc.emitted_state or changed_count or changed_impact):
            return None
        kind = (
            "incident.opened"
            if opened
            else "incident.resolved"
            if inc.state is IncidentState.RESOLVED
            else "incident.updated"
        )
        inc.emitted_state, inc.emitted_count = inc.state.value, inc.current
        inc.emitted_impact = (inc.vip_orders, inc.penalty_orders, inc.order_value)
        return IncidentChange(kind, inc.incident_id, self.record(inc, at), at)

    def record(self, inc: Incident, at: float) -> dict[str, Any]:
        """The incident as the JSON object published on ``order-incidents``."""
        series = inc.series
        delta = series[-1] - series[-2] if len(series) > 1 else series[-1] if series else 0
        labels = ", ".join(f"{n} {self._titles.get(k, k)}" for k, n in inc.labels.items())
        sample = self.settings.sample_size
        return {
            "v": 1,
            "incident_id": inc.incident_id,
            "kind": inc.kind,
            "state": inc.state.value,
            "dimension": inc.signature.dim,
            "root_cause": inc.signature.root_cause(),
            "root_cause_text": inc.signature.text,
            "location": _location(inc.cell),
            "title": f"{inc.signature.text}: {labels or 'no current items'}",
            "at": iso(at),
            "opened_at": iso(inc.opened_at),
            "first_seen": iso(inc.first_seen),
            "last_seen": iso(inc.last_seen),
            "resolved_at": iso(at) if inc.state is IncidentState.RESOLVED else None,
            "counts": {
                "current": inc.current,
                "peak": inc.peak,
                "skus": len(inc.skus),
                "orders": len(inc.orders),
                "by_label": dict(inc.labels),
            },
            "lift": round(inc.lift, 3),
            "p_value": inc.p_value,
            "share": round(inc.share, 4),
            "baseline_share": round(inc.baseline_share, 4),
            "trend": {
                "direction": "up" if delta > 0 else "down" if delta < 0 else "flat",
                "delta": delta,
                "series": list(series),
            },
            "sample_orders": heapq.nsmallest(sample, inc.orders),
            "sample_skus": heapq.nsmallest(sample, inc.skus),
            "labels": dict(inc.common),
            "impact": {
                "order_value": round(inc.order_value, 2),
                "vip_orders": inc.vip_orders,
                "penalty_orders": inc.penalty_orders,
                "min_minutes_to_promise": (
                    None if inc.min_promise is None else round((inc.min_promise - at) / 60.0, 1)
                ),
            },
            "replay": self.replay,
        }

    # -- persistence --------------------------------------------------------------
    def to_dict(self, items: bool = True) -> dict[str, Any]:
        """Snapshot. Open SKU episodes are left out unless items expire by themselves
        (``expire_items``): the tracker rebuilds them from the SKU states
        (:meth:`restore_open`), which keeps this snapshot small. ``items=False`` leaves out
        the ``items`` list too, for a store that keeps them apart, one entry per item
        (:meth:`take_changed_items`; :meth:`from_dict` takes them back as ``items``)."""
        data: dict[str, Any] = {"kind": self.kind, "last_slot": self._last_slot, **self._flow.to_dict()}
        if items:
            kept = self._items.items.values() if self.settings.expire_items else ()
            data["items"] = [it.to_dict() for it in kept]
        data["closed"] = [it.to_dict() for it in self._items.closed]
        data["open"] = [inc.to_dict() for inc in self._open.values()]
        data["resolved"] = [inc.to_dict() for inc in self._resolved]
        return data

    def take_changed_items(self) -> dict[str, dict[str, Any] | None]:
        """The snapshot's items that changed since the last call, by key: opened or replaced
        (the item's ``to_dict``) or gone (``None``: cleared, ended or aged out of the window).
        Always empty unless items expire (``expire_items``): other items are not snapshotted."""
        return {key: None if item is None else item.to_dict() for key, item in self._items.take_changed().items()}

    @classmethod
    def from_dict(
        cls,
        settings: IncidentSettings,
        data: dict[str, Any],
        titles: dict[str, str] | None = None,
        *,
        replay: str | None = None,
        items: Iterable[dict[str, Any]] | None = None,
    ) -> IncidentDetector:
        """The detector of a :meth:`to_dict` snapshot; ``items``: its items kept apart (in
        any order), instead of the snapshot's ``items`` list."""
        det = cls(data["kind"], settings, titles, replay=replay)
        det._last_slot = data["last_slot"]
        det._flow.restore(data)
        for raw in data.get("items", []) if items is None else items:
            det._items.open_episode(ClusterItem.from_dict(raw))
        det._items.take_changed()  # restored as stored: nothing changed yet
        det._items.closed = [ClusterItem.from_dict(raw) for raw in data["closed"]]
        for raw in data["open"]:
            inc = Incident.from_dict(raw)
            det._open[inc.incident_id] = inc
        det._resolved = [Incident.from_dict(raw) for raw in data["resolved"]]
        return det


def _common_values(items: list[ClusterItem], ratio: float) -> dict[str, str]:
    """Per label dimension, the value at least ``ratio`` of the items share (if any)."""
    out: dict[str, str] = {}
    if not items:
        return out
    for dim in LABEL_DIMENSIONS:
        counts = Counter(v for item in items for v in item.values.get(dim, ())[:1])
        if counts:
            value, n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if n >= ratio * len(items):
                out[dim] = value
    return out


def _location(cell: str | None) -> dict[str, Any] | None:
    """Where to draw an incident: the centre of the cell most of its SKUs were seen in."""
    if cell is None:
        return None
    lat, lon = h3.cell_to_latlng(cell)
    return {"lat": round(lat, 5), "lon": round(lon, 5), "h3": cell}
