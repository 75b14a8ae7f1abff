"""Flow checks: a key whose traffic stops (a hub, a source, a province) or surges (a channel).

The exception clustering of :mod:`stream.core.incident_detector` needs bad SKUs, which take hours of SLA
time to appear. These checks look at the event *flow* itself, so a stopped hub or a
flash sale shows within minutes.

Every event is counted per key (``hub=HZ-3``, ``region=440000``, ...) in slots of
``eval_every`` of event time. A key's baseline is an exponentially weighted mean of its
slot counts (time constant ``baseline``, bias-corrected so a key seen for a few slots
has an unbiased mean); a slot enters it only once it has left the longest window, so an
anomaly being judged is never part of its own baseline, and a key with an open incident
keeps its baseline frozen (an outage does not become the new normal). At every slot
boundary ``at`` of the flow clock (see ``stream.core.delays_engine``) and for every window
length (multiples of ``eval_every`` up to ``window``) ending at ``at``:

* **drop** (``drop_dimensions``, events of every status but ``order_statuses``): fires
  when ``observed <= drop_ratio * expected`` and ``P(X <= observed)`` under Poisson
  ``expected`` is below ``significance`` divided by the number of (key, window) tests of
  that dimension (Bonferroni);
* **surge** (``surge_dimensions``, events of ``order_statuses``): fires when
  ``observed >= surge_ratio * expected`` and ``P(X >= observed)`` is below the same bound.

A key is tested only when ``expected >= min_expected`` in that window (quiet keys never
fire) and after ``warmup`` of its own history. Drop checks of H3 cells
(``h3_resolution``) that fire next to each other form one ``area`` incident. A
``carrier_region`` drop inside a region whose drop fires without it is the region's
incident (all carriers there slowed down), and a region drop that is not significant
without one carrier's is that carrier's.

Incidents and their records: :mod:`stream.core.flow_incidents`. Pure: time and events are
passed in.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from datetime import timedelta
from typing import Any

import h3
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.durations import Duration
from geo.cells import connected_groups
from stream.contract import OrderEvent, Status
from stream.core.flow_incidents import DROP, SURGE, Finding, FlowIncident, FlowIncidents
from stream.core.incident_model import AREA, PART_SEP, IncidentChange, Signature, check_dimensions
from stream.core.root_cause import poisson_tail

FLOW_DIMENSIONS = ("hub", "source", "warehouse", "carrier_region", "carrier", "region", "channel", "area", "device_id")
#: Statuses scanned at a hub (their ``node`` is the hub).
HUB_STATUSES = frozenset({Status.LINEHAUL, Status.HUB_ARRIVAL})

Key = tuple[str, str, str]  # (check, dimension, value)
PAIR = "+"  # joint keys: (check, "hub+region", "HZ-3\x1d330000"), dimensions in sorted order
_PAIR_SEP = "\x1d"

log = logging.getLogger(__name__)


def _pair(check: str, dim: str, value: str, other: str, other_value: str) -> Key:
    if other < dim:
        dim, value, other, other_value = other, other_value, dim, value
    return check, dim + PAIR + other, value + _PAIR_SEP + other_value


class FlowSettings(BaseModel):
    """``incidents.flow:`` in ``config/sla.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eval_every: Duration = timedelta(minutes=1)
    #: the flow clock trails the newest event time of the slowest partition by this much
    lateness: Duration = timedelta(seconds=30)
    window: Duration = timedelta(minutes=3)
    baseline: Duration = timedelta(minutes=30)
    warmup: Duration = timedelta(minutes=3)
    drop_ratio: float = Field(default=0.5, gt=0.0, lt=1.0)
    surge_ratio: float = Field(default=5.0, gt=1.0)
    min_expected: float = Field(default=10.0, gt=0.0)
    significance: float = Field(default=1e-3, gt=0.0, lt=1.0)
    #: variance / mean of a key's slot counts (quasi-Poisson): counts are divided by it
    #: before the Poisson test, so lumpy traffic (trucks, waves) needs a larger deviation
    dispersion: float = Field(default=1.5, ge=1.0)
    #: a finding whose deviation is at least this share of another's shared events is
    #: explained by it (not an incident of its own)
    explain_share: float = Field(default=0.8, gt=0.5, le=1.0)
    resolve_after: Duration = timedelta(minutes=5)
    h3_resolution: int = Field(default=4, ge=0, le=15)
    drop_dimensions: list[str] = Field(default_factory=lambda: ["hub", "source", "carrier_region", "region", "area"])
    surge_dimensions: list[str] = Field(default_factory=lambda: ["channel"])
    #: statuses that place an order: counted by the surge checks, not by the drop checks
    order_statuses: list[Status] = Field(default_factory=lambda: [Status.PAID], min_length=1)

    @field_validator("drop_dimensions", "surge_dimensions")
    @classmethod
    def _dimensions(cls, value: list[str]) -> list[str]:
        return check_dimensions(value, FLOW_DIMENSIONS)

    @model_validator(mode="after")
    def _slots(self) -> FlowSettings:
        step = self.eval_every.total_seconds()
        if step <= 0:
            raise ValueError("eval_every must be positive")
        for name in ("window", "warmup"):
            value = getattr(self, name).total_seconds()
            if value < step or abs(value / step - round(value / step)) > 1e-9:
                raise ValueError(f"{name} must be a whole multiple of eval_every ({self.eval_every})")
        if self.baseline.total_seconds() < step:
            raise ValueError("baseline must be at least eval_every")
        return self


def flow_values(event: OrderEvent, resolution: int) -> dict[str, str]:
    """The keys one event counts for, per dimension."""
    values: dict[str, str] = {"source": event.source}
    if event.node and event.status in HUB_STATUSES:
        values["hub"] = event.node
    if event.warehouse:
        values["warehouse"] = event.warehouse
    if event.carrier:
        values["carrier"] = event.carrier
        if event.region:
            values["carrier_region"] = event.carrier + PART_SEP + event.region
    if event.region:
        values["region"] = event.region
    if event.channel:
        values["channel"] = event.channel
    if event.device_id:
        values["device_id"] = event.device_id
    if event.lat is not None and event.lon is not None:
        values[AREA] = h3.latlng_to_cell(event.lat, event.lon, resolution)
    return values


def poisson_cdf(n: int, expected: float) -> float:
    """P(X <= n) for X ~ Poisson(expected), summed from its largest term down (the upper
    tail is :func:`stream.core.root_cause.poisson_tail`)."""
    if n < 0:
        return 0.0
    if expected <= 0.0:
        return 1.0
    if n >= expected:
        return max(0.0, 1.0 - poisson_tail(n + 1, expected))
    term = math.exp(-expected + n * math.log(expected) - math.lgamma(n + 1))
    total = 0.0
    for k in range(n, -1, -1):  # terms shrink away from the mode
        total += term
        if term <= total * 1e-17:
            break
        term *= k / expected
    return min(1.0, total)


class FlowAnomalyDetector:
    """Drop and surge checks over the event flow; feed :meth:`observe`, drive :meth:`advance`."""

    def __init__(self, settings: FlowSettings, *, replay: str | None = None) -> None:
        self.settings = settings
        self.replay = replay
        self._step = settings.eval_every.total_seconds()
        self._span = round(settings.window.total_seconds() / self._step)
        self._warmup = round(settings.warmup.total_seconds() / self._step)
        self._decay = math.exp(-self._step / settings.baseline.total_seconds())
        self._order_statuses = frozenset(settings.order_statuses)
        self._dims = {DROP: frozenset(settings.drop_dimensions), SURGE: frozenset(settings.surge_dimensions)}
        self._slots: dict[int, Counter[Key]] = {}  # counts of slots not folded into the baseline yet
        self._moves: dict[int, set[tuple[str, str]]] = {}  # (order, status) counted per slot
        self._mean: dict[Key, float] = {}  # EWMA of a key's slot count (not bias-corrected)
        self._age: dict[Key, int] = {}  # slots folded since the key's first appearance
        self._start: int | None = None  # first slot of live flow
        self._folded = -1  # last slot folded into the baseline
        self._last_eval = -1
        self._last_seen: tuple[float, float] | None = None  # (flow clock, receipt time) last advanced
        self._since: tuple[float, float] | None = None  # (flow clock, receipt time) when history started
        self._catching_up = False  # the last evaluation restarted history (logged once)
        self.incidents = FlowIncidents(self._step, settings.resolve_after.total_seconds(), replay)
        self.late_events = 0  # events of slots already folded (not counted)
        self._late_logged = 0

    # -- input --------------------------------------------------------------------
    def observe(self, at: float, event: OrderEvent) -> None:
        """Count one event at its event time ``at``."""
        slot = int(at // self._step)
        if self._start is not None and slot <= self._folded:
            self.late_events += 1
            return
        check = SURGE if event.status in self._order_statuses else DROP
        wanted = self._dims[check]
        if not wanted:
            return
        # one count per order and status in a slot: the SKU lines of an order are scanned
        # together, and counting each would make the flow lumpier than Poisson
        moves = self._moves.setdefault(slot, set())
        move = (event.order_id, event.status.value)
        if move in moves:
            return
        moves.add(move)
        counts = self._slots.get(slot)
        if counts is None:
            counts = self._slots[slot] = Counter()
        keys = sorted(
            (dim, value) for dim, value in flow_values(event, self.settings.h3_resolution).items() if dim in wanted
        )
        for i, (dim, value) in enumerate(keys):
            counts[(check, dim, value)] += 1
            for other, other_value in keys[i + 1 :]:
                counts[_pair(check, dim, value, other, other_value)] += 1

    @property
    def open_incidents(self) -> list[FlowIncident]:
        return self.incidents.open_incidents

    def record(self, inc: FlowIncident, at: float) -> dict[str, Any]:
        return self.incidents.record(inc, at)

    # -- evaluation ---------------------------------------------------------------
    def advance(self, clock: float, received: float | None = None) -> list[IncidentChange]:
        """Evaluate at the last slot boundary at or before the flow clock (once per slot).

        ``received``: the receipt time of the newest input. When event time ran ahead of it
        by more than one slot, since the last evaluation or since history started, the feed
        was catching up (a backfill of old scans, a backlog after downtime): that is no
        baseline, so history starts again with the next slot. Live, event time keeps pace
        with receipt (the clock cannot pass the newest event), and a backfill read minute by
        minute moves the clock one slot per evaluation, never a window at once."""
        slot = int(clock // self._step)
        if slot <= self._last_eval:
            return []
        if received is not None:
            ahead = max(self._ahead(self._last_seen, clock, received), self._ahead(self._since, clock, received))
            self._last_seen = (clock, received)
            catching_up = ahead > self._step
            if catching_up and not self._catching_up:  # once per catch-up, not per slot of it
                log.info(
                    "flow checks: event time ran %.0f s ahead of receipt time (a catch-up): "
                    "baselines restart until it keeps pace",
                    ahead,
                )
            self._catching_up = catching_up
            if catching_up:
                self._start = None
                self._mean.clear()
                self._age.clear()
        if self._start is None:
            # the first clock: what came before (a backfill of old scans) is no flow to
            # learn from; history starts with the next slot, which is all live
            self._start = slot + 1
            self._folded = slot
            self._since = (clock, received) if received is not None else None
            for old in [s for s in self._slots if s <= slot]:
                del self._slots[old]
                self._moves.pop(old, None)
        self._fold_until(slot - self._span - 1)
        self._last_eval = slot
        at = slot * self._step
        if self.late_events > self._late_logged:
            log.info(
                "flow checks: %d events came after their slot was folded (%d so far)",
                self.late_events - self._late_logged,
                self.late_events,
            )
            self._late_logged = self.late_events
        return self.incidents.update(at, self._findings(slot))

    @staticmethod
    def _ahead(mark: tuple[float, float] | None, clock: float, received: float) -> float:
        """How far event time ran ahead of receipt time since ``mark`` (clock, received)."""
        return 0.0 if mark is None else (clock - mark[0]) - (received - mark[1])

    def _frozen(self) -> set[tuple[str, str]]:
        return {(inc.check, k) for inc in self.incidents.open_incidents for k in inc.keys}

    def _fold_until(self, last: int) -> None:
        """Fold slots up to ``last`` into the baselines, one slot at a time, in order."""
        if last <= self._folded:
            return
        frozen = self._frozen()
        d = self._decay
        s = self._folded + 1
        while s <= last:
            counts = self._slots.pop(s, None)
            if counts is None:  # a run of empty slots: decay in one step
                nxt = min((k for k in self._slots if s < k <= last), default=last + 1)
                gap = nxt - s
                factor = d**gap
                for key in self._mean:
                    if (key[0], f"{key[1]}={key[2]}") not in frozen:
                        self._mean[key] *= factor
                        self._age[key] += gap
                s = nxt
                continue
            for key in sorted(set(self._mean) | set(counts)):
                if (key[0], f"{key[1]}={key[2]}") in frozen:
                    continue
                self._mean[key] = self._mean.get(key, 0.0) * d + counts.get(key, 0) * (1.0 - d)
                self._age[key] = self._age.get(key, 0) + 1
            s += 1
        self._folded = last
        for old in [s for s in self._moves if s <= last]:
            del self._moves[old]
        for key in [k for k, m in self._mean.items() if m < 1e-3 and self._age[k] > self._warmup]:
            del self._mean[key], self._age[key]  # keys no longer seen (devices come and go)

    def expected_per_slot(self, key: Key) -> float | None:
        """The bias-corrected baseline of a key, or ``None`` while it is warming up."""
        age = self._age.get(key, 0)
        if age < self._warmup:
            return None
        return self._mean[key] / (1.0 - self._decay**age)

    def _findings(self, slot: int) -> list[Finding]:
        s = self.settings
        assert self._start is not None  # the clock sets it before it evaluates
        tests: list[tuple[Key, int, int, float]] = []  # key, window slots, observed, expected
        for key in sorted(self._mean):
            if PAIR in key[1]:
                continue  # joint counts only explain (see _explain)
            rate = self.expected_per_slot(key)
            if rate is None:
                continue
            observed = 0
            for w in range(1, min(self._span, slot - self._start) + 1):
                observed += self._slots.get(slot - w, Counter()).get(key, 0)
                expected = rate * w
                if expected >= s.min_expected:
                    tests.append((key, w, observed, expected))
        tested = Counter((key[0], key[1]) for key, *_ in tests)
        best: dict[Key, Finding] = {}
        for key, w, observed, expected in tests:
            check, dim, value = key
            p = self._p_value(check, observed, expected)
            if p > s.significance / tested[(check, dim)]:
                continue
            old = best.get(key)
            if old is None or p < old.p_value:
                best[key] = Finding(check, Signature(dim, (value,)), observed, expected, w, p)
        return self._explain(slot, list(best.values()))

    def _p_value(self, check: str, observed: int, expected: float) -> float:
        """Chance of a deviation this large (1.0 when the ratio test does not hold)."""
        s = self.settings
        phi = s.dispersion
        if check == DROP:
            if observed > s.drop_ratio * expected:
                return 1.0
            return poisson_cdf(math.floor(observed / phi), expected / phi)
        if observed < s.surge_ratio * expected:
            return 1.0
        return poisson_tail(math.ceil(observed / phi), expected / phi)

    def _explain(self, slot: int, findings: list[Finding]) -> list[Finding]:
        """Drop the findings another one explains, then merge neighbouring H3 cells.

        ``b`` is explained by ``a`` when the events it shares with ``a`` (joint counts, see
        :meth:`observe`) make up ``explain_share`` of its deviation from its baseline: a
        hub's carrier in its province, a warehouse's cell when its source is late. When each explains the other they are
        one anomaly, named by the dimension listed first (``hub`` before ``source``); a
        province whose carriers all slowed down explains each of them, not the reverse.
        """
        priority = {d: i for i, d in enumerate(self.settings.drop_dimensions + self.settings.surge_dimensions)}
        explained: set[int] = set()
        for i, a in enumerate(findings):
            for j, b in enumerate(findings):
                if i == j or a.check != b.check or not self._explains(slot, a, b):
                    continue
                if self._explains(slot, b, a) and priority[b.signature.dim] < priority[a.signature.dim]:
                    continue  # one anomaly: b's dimension names it
                explained.add(j)
        kept = [f for k, f in enumerate(findings) if k not in explained]
        return [f for f in kept if f.signature.dim != AREA] + self._areas([f for f in kept if f.signature.dim == AREA])

    def _explains(self, slot: int, a: Finding, b: Finding) -> bool:
        """Whether the events ``b`` shares with ``a`` make up most of ``b``'s deviation."""
        pair = _pair(a.check, a.signature.dim, a.signature.values[0], b.signature.dim, b.signature.values[0])
        rate = self.expected_per_slot(pair) if pair in self._mean else None
        if rate is None:
            return False
        shared = sum(self._slots.get(slot - w, Counter()).get(pair, 0) for w in range(1, b.window_slots + 1))
        deviation = b.expected - b.observed
        return (rate * b.window_slots - shared) / deviation >= self.settings.explain_share

    def _areas(self, cells: list[Finding]) -> list[Finding]:
        lit = {f.signature.values[0]: f for f in cells}
        out = []
        for component in connected_groups(lit):
            parts = [lit[c] for c in component]
            strongest = min(parts, key=lambda f: f.p_value)
            out.append(
                Finding(
                    strongest.check,
                    Signature(AREA, component),
                    sum(f.observed for f in parts),
                    sum(f.expected for f in parts),
                    strongest.window_slots,
                    strongest.p_value,
                )
            )
        return out

    # -- persistence --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def name(key: Key) -> str:
            return "\x1e".join(key)

        return {
            "slots": {str(s): {name(k): n for k, n in sorted(c.items())} for s, c in sorted(self._slots.items())},
            "mean": {name(k): m for k, m in sorted(self._mean.items())},
            "age": {name(k): a for k, a in sorted(self._age.items())},
            "start": self._start,
            "folded": self._folded,
            "last_eval": self._last_eval,
            "last_seen": list(self._last_seen) if self._last_seen is not None else None,
            "since": list(self._since) if self._since is not None else None,
            "open": self.incidents.to_dict(),
        }

    @classmethod
    def from_dict(
        cls, settings: FlowSettings, data: dict[str, Any], *, replay: str | None = None
    ) -> FlowAnomalyDetector:
        def key(text: str) -> Key:
            check, dim, value = text.split("\x1e", 2)
            return check, dim, value

        det = cls(settings, replay=replay)
        det._slots = {int(s): Counter({key(k): n for k, n in c.items()}) for s, c in data["slots"].items()}
        det._mean = {key(k): m for k, m in data["mean"].items()}
        det._age = {key(k): a for k, a in data["age"].items()}
        det._start, det._folded, det._last_eval = data["start"], data["folded"], data["last_eval"]
        det.incidents.restore(data["open"])
        det._last_seen = tuple(data["last_seen"]) if data.get("last_seen") else None
        det._since = tuple(data["since"]) if data.get("since") else None
        return det
