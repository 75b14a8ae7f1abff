"""Exception clustering: one incident per root cause.

Bad items (SKUs that are late, stalled or in exception; data-quality findings) are fed in
with their root-cause attributes (warehouse, hub, carrier, device, channel, route,
carrier+region, H3 area, ...). Normal traffic is fed in as *flow* counts per attribute
value. At every evaluation step of event time (``eval_every``) the detector looks at the
bad items of the sliding ``window`` and asks, per attribute value, how over-represented
it is compared with its share of the recent flow (exponentially weighted with time
constant ``baseline``, so memory is one counter per attribute value):

    lift = (bad with value / bad with the attribute) / (flow with value / flow with it)

A value is a candidate when it has at least ``min_count`` bad items, when that many is
improbable by chance (Poisson tail ``P(X >= n | expected)`` below ``significance``
divided by the number of values of the attribute, a Bonferroni correction: with 150
scanners one of them is always unlucky) and when its lift is at least ``min_lift`` or,
for values so big that such a lift is impossible (a carrier with a third of the flow can
reach at most 3), its share of the bad items is at least halfway from its flow share to
100 %. Neighbouring H3 cells that are candidates are merged (``h3.grid_disk``) into one
area candidate.

Root-cause selection, repeated until no candidate is left: take the candidate with most
bad items; among the candidates covering at least ``explain_ratio`` of its *excess*
(items beyond what its flow share predicts), the one with the highest lift is the most
specific explanation (a slow carrier in one province beats "that carrier" and "that
province"; dimension order breaks ties, e.g. a hub beats the H3 cell it sits in). If a
broader candidate containing it is still anomalous once its items are removed, that
broader one is the cause instead (one scanner of a stopped hub does not name the hub's
incident). The chosen root cause's items are then *explained away*: every other
candidate is re-tested without them, so children and parents that were only anomalous
because of it disappear. One root cause = one incident.

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
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerting.incident import IncidentState
from config.durations import Duration
from geo.cells import connected_groups

#: Every attribute the detector can group by; the configured order is the tie-break
#: order (earlier = more specific / more actionable).
KNOWN_DIMENSIONS: tuple[str, ...] = (
    "device_id",
    "hub",
    "warehouse",
    "route",
    "carrier_region",
    "carrier",
    "area",
    "region",
    "channel",
    "stage",
    "source",
)
AREA = "area"
#: Composite dimensions: their values join the parts with ``PART_SEP``.
COMPOSITE: dict[str, tuple[str, ...]] = {"carrier_region": ("carrier", "region")}
PART_SEP = "\x1f"

Values = dict[str, tuple[str, ...]]


class IncidentSettings(BaseModel):
    """``incidents:`` (and ``data_quality.incidents:``) in ``config/sla.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eval_every: Duration = timedelta(minutes=5)
    window: Duration = timedelta(hours=2)
    baseline: Duration = timedelta(hours=24)
    min_count: int = Field(default=8, ge=1)
    min_lift: float = Field(default=3.0, gt=1.0)
    #: family-wise chance level per attribute and evaluation (Bonferroni over its values)
    significance: float = Field(default=1e-3, gt=0.0, lt=1.0)
    explain_ratio: float = Field(default=0.8, gt=0.5, le=1.0)
    resolve_after: Duration = timedelta(minutes=30)
    growth_ratio: float = Field(default=0.2, gt=0.0)
    h3_resolution: int = Field(default=7, ge=0, le=15)
    cell_min_count: int = Field(default=2, ge=1)
    dimensions: list[str] = Field(
        default_factory=lambda: [
            "device_id",
            "hub",
            "warehouse",
            "route",
            "carrier_region",
            "carrier",
            "area",
            "region",
            "channel",
            "stage",
        ],
        min_length=1,
    )
    #: findings (data quality) leave the detector when they fall out of the window and are
    #: part of its snapshot; SKU states leave when the SKU recovers and are rebuilt from
    #: the SKU states on restore
    expire_items: bool = False
    sample_size: int = Field(default=20, ge=0, le=1000)

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in KNOWN_DIMENSIONS:
                raise ValueError(f"unknown dimension {name!r} (known: {', '.join(KNOWN_DIMENSIONS)})")
        if len(set(value)) != len(value):
            raise ValueError("dimensions must not repeat")
        return value


@dataclass(slots=True)
class ClusterItem:
    """One bad thing: a SKU in a bad delay state, or a data-quality finding."""

    key: str
    order_id: str
    sku: str
    since: float
    label: str  # delay state or finding kind
    values: Values
    until: float | None = None  # when it stopped being bad (None: still is)
    # impact, for the alert tiers: the order's value, VIP, penalty-bearing SLA, promise due
    value: float = 0.0
    vip: bool = False
    penalty: bool = False
    promise: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "order_id": self.order_id,
            "sku": self.sku,
            "since": self.since,
            "label": self.label,
            "values": {d: list(v) for d, v in self.values.items()},
            "until": self.until,
            "value": self.value,
            "vip": self.vip,
            "penalty": self.penalty,
            "promise": self.promise,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterItem:
        return cls(
            key=data["key"],
            order_id=data["order_id"],
            sku=data["sku"],
            since=float(data["since"]),
            label=data["label"],
            values={d: tuple(v) for d, v in data["values"].items()},
            until=data["until"],
            value=float(data.get("value", 0.0)),
            vip=bool(data.get("vip", False)),
            penalty=bool(data.get("penalty", False)),
            promise=data.get("promise"),
        )


@dataclass(frozen=True, slots=True)
class Signature:
    """A root cause: one dimension and its value (several H3 cells for an area)."""

    dim: str
    values: tuple[str, ...]

    @property
    def text(self) -> str:
        if self.dim == AREA:
            extra = f"+{len(self.values) - 1}" if len(self.values) > 1 else ""
            return f"area={self.values[0]}{extra}"
        return ",".join(f"{k}={v}" for k, v in self.root_cause().items())

    def root_cause(self) -> dict[str, Any]:
        if self.dim == AREA:
            lat, lng = _centre(self.values)
            return {"h3_cells": list(self.values), "lat": round(lat, 5), "lon": round(lng, 5)}
        parts = COMPOSITE.get(self.dim)
        if parts is not None:
            return dict(zip(parts, self.values[0].split(PART_SEP), strict=False))
        return {self.dim: self.values[0]}


def _centre(cells: tuple[str, ...]) -> tuple[float, float]:
    points = [h3.cell_to_latlng(c) for c in cells]
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


@dataclass(frozen=True, slots=True)
class Candidate:
    signature: Signature
    keys: frozenset[str]
    lift: float
    share: float
    baseline_share: float
    p_value: float
    priority: int
    expected: float  # bad items the value would have at its flow share
    bad_total: int  # bad items that have this attribute at all
    count: int


@dataclass(slots=True)
class Incident:
    """State of one incident; ``to_dict``/``from_dict`` for the worker's table."""

    incident_id: str
    kind: str
    signature: Signature
    state: IncidentState
    opened_at: float
    first_seen: float
    last_seen: float
    current: int = 0
    peak: int = 0
    lift: float = 0.0
    share: float = 0.0
    baseline_share: float = 0.0
    p_value: float = 1.0
    cell: str | None = None  # the H3 cell most of its items were last seen in
    labels: dict[str, int] = field(default_factory=dict)
    skus: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    current_keys: set[str] = field(default_factory=set)
    series: list[int] = field(default_factory=list)
    exit_series: list[int] = field(default_factory=list)
    quiet_since: float | None = None
    resolved_at: float | None = None
    emitted_state: str = ""
    emitted_count: int = -1
    # impact: sums over its orders, each counted once when it joins (bounded: scalars)
    order_value: float = 0.0
    vip_orders: int = 0
    penalty_orders: int = 0
    min_promise: float | None = None  # earliest promise due among its current items
    #: labels its current items share (see ``LABEL_DIMENSIONS``), e.g. a hub's region
    common: dict[str, str] = field(default_factory=dict)
    #: VIP and penalty orders and order value as last published
    emitted_impact: tuple[int, int, float] = (0, 0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "kind": self.kind,
            "dim": self.signature.dim,
            "values": list(self.signature.values),
            "state": self.state.value,
            "opened_at": self.opened_at,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "current": self.current,
            "peak": self.peak,
            "lift": self.lift,
            "share": self.share,
            "baseline_share": self.baseline_share,
            "p_value": self.p_value,
            "cell": self.cell,
            "labels": dict(self.labels),
            "skus": sorted(self.skus),
            "orders": sorted(self.orders),
            "current_keys": sorted(self.current_keys),
            "series": list(self.series),
            "exit_series": list(self.exit_series),
            "quiet_since": self.quiet_since,
            "resolved_at": self.resolved_at,
            "emitted_state": self.emitted_state,
            "emitted_count": self.emitted_count,
            "order_value": self.order_value,
            "vip_orders": self.vip_orders,
            "penalty_orders": self.penalty_orders,
            "min_promise": self.min_promise,
            "common": dict(self.common),
            "emitted_impact": list(self.emitted_impact),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(
            incident_id=data["incident_id"],
            kind=data["kind"],
            signature=Signature(data["dim"], tuple(data["values"])),
            state=IncidentState(data["state"]),
            opened_at=data["opened_at"],
            first_seen=data["first_seen"],
            last_seen=data["last_seen"],
            current=data["current"],
            peak=data["peak"],
            lift=data["lift"],
            share=data["share"],
            baseline_share=data["baseline_share"],
            p_value=data["p_value"],
            cell=data["cell"],
            labels=dict(data["labels"]),
            skus=set(data["skus"]),
            orders=set(data["orders"]),
            current_keys=set(data["current_keys"]),
            series=list(data["series"]),
            exit_series=list(data["exit_series"]),
            quiet_since=data["quiet_since"],
            resolved_at=data["resolved_at"],
            emitted_state=data["emitted_state"],
            emitted_count=data["emitted_count"],
            order_value=float(data.get("order_value", 0.0)),
            vip_orders=int(data.get("vip_orders", 0)),
            penalty_orders=int(data.get("penalty_orders", 0)),
            min_promise=data.get("min_promise"),
            common=dict(data.get("common") or {}),
            emitted_impact=_impact(data.get("emitted_impact")),
        )


def _impact(saved: list[Any] | None) -> tuple[int, int, float]:
    vip, penalty, value = saved or (0, 0, 0.0)
    return int(vip), int(penalty), float(value)


def _location(cell: str | None) -> dict[str, Any] | None:
    """Where to draw an incident: the centre of the cell most of its SKUs were seen in."""
    if cell is None:
        return None
    lat, lon = h3.cell_to_latlng(cell)
    return {"lat": round(lat, 5), "lon": round(lon, 5), "h3": cell}


def _iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).isoformat().replace("+00:00", "Z")


_SERIES_LENGTH = 12
#: Attributes an incident names as labels when (nearly) all its current items share one
#: value: a hub incident's region and carrier, a carrier slowdown's hub. Inhibition and
#: routing match on them.
LABEL_DIMENSIONS: tuple[str, ...] = ("hub", "warehouse", "carrier", "region", "channel", "device_id")
_LABEL_SAMPLE = 500
_TREND_STEPS = 3


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One lifecycle event, ready for the ``order-incidents`` topic and for InfluxDB."""

    type: str  # incident.opened | incident.updated | incident.resolved
    incident_id: str
    record: dict[str, Any]
    at: float

    @property
    def kafka_key(self) -> bytes:
        return self.incident_id.encode()

    def to_record(self) -> dict[str, Any]:
        """JSON-ready value for ``order-incidents`` (key: :attr:`kafka_key`)."""
        return self.record

    def to_influx(self) -> dict[str, Any]:
        """One point: measurement, low-cardinality tags, numeric fields, time in ns."""
        rec = self.record
        return {
            "measurement": "order_incidents",
            "tags": {
                "kind": rec["kind"],
                "dimension": rec["dimension"],
                "state": rec["state"],
                **({"replay": rec["replay"]} if rec.get("replay") else {}),
            },
            "fields": {
                "incident_id": rec["incident_id"],
                "event": self.type,
                "root_cause": rec["root_cause_text"],
                "current": rec["counts"]["current"],
                "skus": rec["counts"]["skus"],
                "orders": rec["counts"]["orders"],
                "lift": float(rec["lift"]),
                "order_value": float(rec["impact"]["order_value"]),
                "vip_orders": rec["impact"]["vip_orders"],
                "penalty_orders": rec["impact"]["penalty_orders"],
            },
            "time_ns": int(round(self.at * 1_000_000)) * 1000,
        }


class _Window:
    """The bad items as of one evaluation time, on top of the detector's live memberships."""

    def __init__(
        self,
        live: dict[tuple[str, str], set[str]],
        live_dim: dict[str, set[str]],
        live_label: dict[str, set[str]],
        items: dict[str, ClusterItem],
        ahead: dict[str, ClusterItem],
        counted: dict[str, ClusterItem],
        exited: set[str],
        wanted: frozenset[str],
    ) -> None:
        self._live, self._live_dim, self._live_label = live, live_dim, live_label
        self._items, self._ahead, self._counted = items, ahead, counted
        self.exited = exited
        self.counts: Counter[tuple[str, str]] = Counter({g: len(keys) for g, keys in live.items() if keys})
        self.dim_totals: Counter[str] = Counter({d: len(keys) for d, keys in live_dim.items()})
        self._added: dict[tuple[str, str], set[str]] = {}
        self._added_dim: dict[str, set[str]] = {}
        self._added_label: dict[str, set[str]] = {}
        for item in ahead.values():  # started at or after the evaluation time: not yet
            for dim, vals in item.values.items():
                if dim in wanted:
                    self.dim_totals[dim] -= 1
                    for v in vals:
                        self.counts[(dim, v)] -= 1
        for item in counted.values():  # ended after the evaluation time: still counts
            self._added_label.setdefault(item.label, set()).add(item.key)
            for dim, vals in item.values.items():
                if dim in wanted:
                    self.dim_totals[dim] += 1
                    self._added_dim.setdefault(dim, set()).add(item.key)
                    for v in vals:
                        self.counts[(dim, v)] += 1
                        self._added.setdefault((dim, v), set()).add(item.key)
        self.labels = sorted(set(live_label) | set(self._added_label))
        self._dim_cache: dict[str, set[str]] = {}

    def _adjusted(self, keys: set[str], added: set[str] | None) -> set[str]:
        out = keys - self._ahead.keys() if self._ahead else set(keys)
        if added:
            out |= added
        return out

    def keys_of(self, group: tuple[str, str]) -> set[str]:
        return self._adjusted(self._live.get(group, set()), self._added.get(group))

    def keys_with(self, dim: str) -> set[str]:
        """Keys of the bad items that have attribute ``dim`` at all."""
        cached = self._dim_cache.get(dim)
        if cached is None:
            cached = self._dim_cache[dim] = self._adjusted(self._live_dim.get(dim, set()), self._added_dim.get(dim))
        return cached

    def keys_labelled(self, label: str) -> set[str]:
        return self._adjusted(self._live_label.get(label, set()), self._added_label.get(label))

    def item(self, key: str) -> ClusterItem:
        counted = self._counted.get(key)
        return counted if counted is not None else self._items[key]


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
        self._dims = tuple(settings.dimensions)
        self._dim_set = frozenset(self._dims)
        self._priority = {d: i for i, d in enumerate(self._dims)}
        self._eval_every = settings.eval_every.total_seconds()
        self._window = settings.window.total_seconds()
        self._tau = settings.baseline.total_seconds()
        self._items: dict[str, ClusterItem] = {}  # the open episode of each bad key
        self._closed: list[ClusterItem] = []  # ended after the last evaluation
        # Memberships of open episodes that are not older than the window, kept up to date
        # on every change so an evaluation costs O(attribute values), not O(bad items).
        self._live: dict[tuple[str, str], set[str]] = {}
        self._live_dim: dict[str, set[str]] = {}
        self._live_label: dict[str, set[str]] = {}
        self._aged: set[str] = set()  # open, but started before the window
        self._by_since: list[tuple[float, str]] = []  # heap, to age episodes out
        self._recent: list[tuple[float, str]] = []  # started since the last evaluation
        # Flow not yet evaluated: integer counts per evaluation slot (exact, order-free).
        self._pending: dict[int, Counter[tuple[str, str]]] = {}
        self._pending_dims: dict[int, Counter[str]] = {}
        # Evaluated flow decays with exp(-age / tau). Weights are stored relative to ``_t0``
        # (flow at t weighs exp((t - t0) / tau)); the common factor is applied when reading.
        self._t0: float | None = None
        self._flow: dict[tuple[str, str], float] = {}
        self._flow_dim: dict[str, float] = {}
        self._open: dict[str, Incident] = {}
        self._resolved: list[Incident] = []
        self._last_slot = -1
        self._tested: Counter[str] = Counter()  # values per attribute in the current evaluation

    # -- input --------------------------------------------------------------------
    def observe_flow(self, at: float, values: Values) -> None:
        """Count one event of normal traffic with its attribute values."""
        slot = int(at // self._eval_every)
        counts = self._pending.get(slot)
        if counts is None:
            counts = self._pending[slot] = Counter()
            self._pending_dims[slot] = Counter()
        wanted = self._dim_set
        if wanted.issuperset(values):
            self._pending_dims[slot].update(values.keys())
            counts.update([(dim, v) for dim, vals in values.items() for v in vals])
        else:
            self._pending_dims[slot].update([dim for dim in values if dim in wanted])
            counts.update([(dim, v) for dim, vals in values.items() if dim in wanted for v in vals])

    def mark_bad(self, item: ClusterItem) -> float:
        """An item is bad from ``item.since`` with these attributes; returns its episode start.

        A key already bad with the same label and attributes keeps its episode; otherwise
        the old episode ends at ``item.since`` and a new one starts there.
        """
        old = self._items.get(item.key)
        if old is not None:
            if old.label == item.label and old.values == item.values:
                return old.since
            self._end(old, item.since)
        self._open_episode(item)
        return item.since

    def clear(self, key: str, at: float) -> None:
        """The item stopped being bad at ``at``: its SKU moved on (flow resumed) or closed."""
        item = self._items.get(key)
        if item is not None:
            self._end(item, at)

    def restore_open(self, item: ClusterItem) -> None:
        """Put back an open episode rebuilt from the SKU's saved state."""
        self._open_episode(item)

    def _open_episode(self, item: ClusterItem) -> None:
        key = item.key
        self._items[key] = item
        self._membership(item, add=True)
        heapq.heappush(self._by_since, (item.since, key))
        self._recent.append((item.since, key))

    def _membership(self, item: ClusterItem, *, add: bool) -> None:
        key, wanted, live = item.key, self._dim_set, self._live
        groups = [self._live_label.setdefault(item.label, set())]
        for dim, vals in item.values.items():
            if dim in wanted:
                groups.append(self._live_dim.setdefault(dim, set()))
                for v in vals:
                    group = live.get((dim, v))
                    if group is None:
                        group = live[(dim, v)] = set()
                    groups.append(group)
        if add:
            for group in groups:
                group.add(key)
        else:
            for group in groups:
                group.discard(key)

    def _end(self, item: ClusterItem, at: float) -> None:
        del self._items[item.key]
        if item.key in self._aged:
            self._aged.discard(item.key)
        else:
            self._membership(item, add=False)
        item.until = at
        if at > self._last_slot * self._eval_every:
            self._closed.append(item)  # still counts for evaluations before ``at``

    def __contains__(self, key: str) -> bool:
        return key in self._items

    @property
    def open_incidents(self) -> list[Incident]:
        return sorted(self._open.values(), key=lambda i: (i.opened_at, i.incident_id))

    @property
    def resolved_incidents(self) -> list[Incident]:
        return list(self._resolved)

    # -- evaluation ---------------------------------------------------------------
    def advance(self, watermark: float) -> list[IncidentEvent]:
        """Evaluate once per ``eval_every`` slot of event time that the watermark enters."""
        slot = int(watermark // self._eval_every)
        if slot <= self._last_slot:
            return []
        self._last_slot = slot
        # as of the slot boundary: the same slot gives the same time (and incident ids)
        # however far into the slot the watermark happened to jump
        return self._evaluate(slot, slot * self._eval_every)

    def _fold_flow(self, slot: int) -> None:
        """Move pending flow of slots before ``slot`` into the decayed sums, in a fixed order."""
        for s in sorted(p for p in self._pending if p < slot):
            t = s * self._eval_every
            if self._t0 is None:
                self._t0 = t
            weight = math.exp((t - self._t0) / self._tau)
            for k in sorted(self._pending[s]):
                self._flow[k] = self._flow.get(k, 0.0) + self._pending[s][k] * weight
            for d in sorted(self._pending_dims[s]):
                self._flow_dim[d] = self._flow_dim.get(d, 0.0) + self._pending_dims[s][d] * weight
            del self._pending[s], self._pending_dims[s]

    def _rescale(self, at: float) -> None:
        """Re-base weights on ``at`` and drop values whose decayed count is negligible."""
        if self._t0 is None:
            return
        factor = math.exp(-(at - self._t0) / self._tau)
        self._flow = {k: w * factor for k, w in sorted(self._flow.items()) if w * factor >= 1e-3}
        self._flow_dim = {d: w * factor for d, w in sorted(self._flow_dim.items()) if w * factor >= 1e-3}
        self._t0 = at

    def _decay(self, at: float) -> float:
        return 1.0 if self._t0 is None else math.exp(-(at - self._t0) / self._tau)

    def _age(self, lo: float) -> None:
        """Episodes that started before the window stop counting (expiring ones are dropped)."""
        heap = self._by_since
        while heap and heap[0][0] < lo:
            since, key = heapq.heappop(heap)
            item = self._items.get(key)
            if item is None or item.since != since or key in self._aged:
                continue  # that episode ended or was replaced
            self._membership(item, add=False)
            if self.settings.expire_items:
                del self._items[key]  # a finding that aged out: not a sign of recovery
            else:
                self._aged.add(key)

    def _window_at(self, at: float) -> _Window:
        """The bad items as of ``at``: open and within the window, minus episodes that started
        at or after ``at``, plus episodes that ended after ``at``."""
        lo = at - self._window
        self._age(lo)
        # forget values no longer seen (devices come and go)
        self._live = {g: keys for g, keys in self._live.items() if keys}
        self._live_dim = {d: keys for d, keys in self._live_dim.items() if keys}
        self._live_label = {label: keys for label, keys in self._live_label.items() if keys}
        ahead: dict[str, ClusterItem] = {}
        recent: list[tuple[float, str]] = []
        for since, key in self._recent:
            item = self._items.get(key)
            if item is not None and item.since == since and since >= at:
                ahead[key] = item
                recent.append((since, key))
        self._recent = recent
        counted: dict[str, ClusterItem] = {}
        exited: set[str] = set()
        still: list[ClusterItem] = []
        for item in self._closed:
            if item.until is not None and item.until > at:
                still.append(item)
                if lo <= item.since < at:
                    counted[item.key] = item
            else:
                exited.add(item.key)
        self._closed = still
        return _Window(self._live, self._live_dim, self._live_label, self._items, ahead, counted, exited, self._dim_set)

    def _candidate(self, sig: Signature, keys: Iterable[str], bad_total: int, decay: float) -> Candidate:
        keyset = frozenset(keys)
        return self._scored(sig, keyset, len(keyset), bad_total, decay)

    def _probe(self, sig: Signature, count: int, bad_total: int, decay: float) -> Candidate:
        """The same statistics from a count alone (no key set is built)."""
        return self._scored(sig, frozenset(), count, bad_total, decay)

    def _scored(self, sig: Signature, keys: frozenset[str], count: int, bad_total: int, decay: float) -> Candidate:
        flow = decay * sum(self._flow.get((sig.dim, v), 0.0) for v in sig.values)
        flow_total = decay * self._flow_dim.get(sig.dim, 0.0)
        # an unseen value counts as one event, so a new device is not infinitely rare
        baseline_share = min(1.0, max(flow, 1.0) / max(flow_total, 1.0))
        share = count / bad_total if bad_total else 0.0
        expected = bad_total * baseline_share
        return Candidate(
            signature=sig,
            keys=keys,
            lift=share / baseline_share,
            share=share,
            baseline_share=baseline_share,
            p_value=poisson_tail(count, expected),
            priority=self._priority.get(sig.dim, len(self._dims)),
            expected=expected,
            bad_total=bad_total,
            count=count,
        )

    def _required_lift(self, c: Candidate) -> float:
        halfway = (1.0 + c.baseline_share) / 2.0 / c.baseline_share
        return min(self.settings.min_lift, halfway)

    def _significant(self, c: Candidate) -> bool:
        s = self.settings
        tested = max(self._tested.get(c.signature.dim, 1), 1)
        return c.count >= s.min_count and c.lift >= self._required_lift(c) and c.p_value <= s.significance / tested

    def _still_active(self, c: Candidate) -> bool:
        """Hysteresis: an open incident stays active at half the thresholds."""
        required = self._required_lift(c)
        return c.count >= max(1, self.settings.min_count // 2) and c.lift >= 1.0 + (required - 1.0) / 2.0

    def _area_candidates(self, view: _Window, decay: float) -> list[Candidate]:
        s = self.settings
        bad_total = view.dim_totals.get(AREA, 0)
        lit: dict[str, set[str]] = {}
        for (dim, cell), count in view.counts.items():
            if dim == AREA and count >= s.cell_min_count:
                probe = self._probe(Signature(AREA, (cell,)), count, bad_total, decay)
                if probe.lift >= self._required_lift(probe):
                    lit[cell] = view.keys_of((dim, cell))
        out: list[Candidate] = []
        for cells in connected_groups(lit):
            cand = self._candidate(Signature(AREA, cells), [k for c in cells for k in lit[c]], bad_total, decay)
            if self._significant(cand):
                out.append(cand)
        return out

    def _select(self, candidates: list[Candidate], view: _Window, decay: float) -> list[Candidate]:
        """Root causes, most specific first, each explaining its bad items away (see module doc)."""
        ratio = self.settings.explain_ratio

        def without(c: Candidate, explained: frozenset[str]) -> Candidate:
            gone = len(explained & view.keys_with(c.signature.dim))  # explained items with that attribute
            return self._candidate(c.signature, c.keys - explained, c.bad_total - gone, decay)

        def most_specific(cs: list[Candidate]) -> Candidate:
            return min(cs, key=lambda d: (-d.lift, d.priority, d.signature.text))

        remaining = list(candidates)
        roots: list[Candidate] = []
        while remaining:
            largest = min(remaining, key=lambda c: (-c.count, -c.lift, c.priority, c.signature.text))
            excess = max(largest.count - largest.expected, 1.0)
            explainers = [d for d in remaining if len(d.keys & largest.keys) >= ratio * excess]
            root = most_specific(explainers)
            while True:  # a broader explainer still anomalous without root's items is the cause
                parents = [
                    b
                    for b in explainers
                    if b.count > root.count
                    and len(b.keys & root.keys) >= ratio * root.count
                    and self._significant(without(b, root.keys))
                ]
                if not parents:
                    break
                root = most_specific(parents)
            roots.append(root)
            remaining = [c2 for c in remaining if c is not root and self._significant(c2 := without(c, root.keys))]
        return roots

    def _evaluate(self, slot: int, at: float) -> list[IncidentEvent]:
        self._fold_flow(slot)
        if self._t0 is not None and at - self._t0 > 8 * self._tau:
            self._rescale(at)
        decay = self._decay(at)
        view = self._window_at(at)
        self._tested = Counter(dim for (dim, _value), n in view.counts.items() if n)
        candidates = []
        for (dim, value), count in view.counts.items():
            if dim == AREA or count < self.settings.min_count:
                continue
            sig = Signature(dim, (value,))
            if self._significant(self._probe(sig, count, view.dim_totals[dim], decay)):
                candidates.append(self._candidate(sig, view.keys_of((dim, value)), view.dim_totals[dim], decay))
        if AREA in self._dim_set:
            candidates.extend(self._area_candidates(view, decay))
        roots = self._select(candidates, view, decay)
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

    def _keep_name(self, inc: Incident, root: Candidate, view: _Window, decay: float) -> Candidate:
        """Keep an incident's name while it still explains the new root cause's items.

        Two explanations of the same items (a station's H3 cell and "carrier in that
        province") may swap places from one evaluation to the next; renaming the incident
        each time would be noise. It is renamed only when the new root cause covers
        clearly more, e.g. the hub behind the first few stranded parcels.
        """
        old = self._current(inc.signature, view, decay)
        if len(old.keys & root.keys) >= self.settings.explain_ratio * root.count and self._significant(old):
            return old
        return root

    def _current(self, sig: Signature, view: _Window, decay: float) -> Candidate:
        keys: set[str] = set()
        for v in sig.values:
            keys |= view.keys_of((sig.dim, v))
        return self._candidate(sig, keys, view.dim_totals.get(sig.dim, 0), decay)

    def _new_id(self, sig: Signature, at: float) -> str:
        replay = f"|replay={self.replay}" if self.replay is not None else ""
        digest = hashlib.sha1(f"{self.kind}|{sig.dim}|{'|'.join(sig.values)}|{at:.3f}{replay}".encode())
        return f"inc-{digest.hexdigest()[:16]}"

    def _update(
        self,
        at: float,
        roots: list[Candidate],
        view: _Window,
        decay: float,
    ) -> list[IncidentEvent]:
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

        events: list[IncidentEvent] = []
        for inc in self.open_incidents:
            matched_root = matched.get(inc.incident_id)
            if matched_root is None:
                cand = self._current(inc.signature, view, decay)
                active = self._still_active(cand)
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

    def _absorb(self, inc: Incident, cand: Candidate, view: _Window, *, locate: bool) -> None:
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

    def _event_for(self, inc: Incident, at: float, opened: bool, refined: bool) -> IncidentEvent | None:
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
        return IncidentEvent(kind, inc.incident_id, self.record(inc, at), at)

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
            "at": _iso(at),
            "opened_at": _iso(inc.opened_at),
            "first_seen": _iso(inc.first_seen),
            "last_seen": _iso(inc.last_seen),
            "resolved_at": _iso(at) if inc.state is IncidentState.RESOLVED else None,
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
    def to_dict(self) -> dict[str, Any]:
        """Snapshot. Open SKU episodes are left out unless items expire by themselves
        (``expire_items``): the tracker rebuilds them from the SKU states
        (:meth:`restore_open`), which keeps this snapshot small."""
        return {
            "kind": self.kind,
            "last_slot": self._last_slot,
            "t0": self._t0,
            "flow": {f"{d}={v}": w for (d, v), w in self._flow.items()},
            "flow_dims": dict(self._flow_dim),
            "pending": {
                str(slot): {
                    "values": {f"{d}={v}": n for (d, v), n in counts.items()},
                    "dims": dict(self._pending_dims[slot]),
                }
                for slot, counts in self._pending.items()
            },
            "items": [it.to_dict() for it in self._items.values()] if self.settings.expire_items else [],
            "closed": [it.to_dict() for it in self._closed],
            "open": [inc.to_dict() for inc in self._open.values()],
            "resolved": [inc.to_dict() for inc in self._resolved],
        }

    @classmethod
    def from_dict(
        cls,
        settings: IncidentSettings,
        data: dict[str, Any],
        titles: dict[str, str] | None = None,
        *,
        replay: str | None = None,
    ) -> IncidentDetector:
        det = cls(data["kind"], settings, titles, replay=replay)
        det._last_slot = data["last_slot"]
        det._t0 = data["t0"]
        det._flow = {_split(name): weight for name, weight in data["flow"].items()}
        det._flow_dim = dict(data["flow_dims"])
        for slot_text, entry in data["pending"].items():
            slot = int(slot_text)
            det._pending[slot] = Counter({_split(name): n for name, n in entry["values"].items()})
            det._pending_dims[slot] = Counter(entry["dims"])
        for raw in data["items"]:
            det._open_episode(ClusterItem.from_dict(raw))
        det._closed = [ClusterItem.from_dict(raw) for raw in data["closed"]]
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


def poisson_tail(n: int, expected: float) -> float:
    """P(X >= n) for X ~ Poisson(expected): how surprising n bad items are by chance."""
    if n <= expected:
        return 1.0  # not over-represented at all
    if expected <= 0.0:
        return 0.0
    term = math.exp(-expected + n * math.log(expected) - math.lgamma(n + 1))
    total, k = term, n
    while term > total * 1e-12 and k < n + 100_000:
        k += 1
        term *= expected / k
        total += term
    return min(1.0, total)


def _split(name: str) -> tuple[str, str]:
    dim, _, value = name.partition("=")
    return dim, value
