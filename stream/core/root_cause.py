"""Root causes: which attribute value explains the bad items of an evaluation.

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

Flow is held per evaluation slot as integer counts until its slot is evaluated, then
folded into the decayed sums in a fixed order (:class:`FlowBaseline`), so the result does
not depend on how the partitions' records were interleaved.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from geo.cells import connected_groups
from stream.core.incident_items import ItemWindow
from stream.core.incident_model import AREA, IncidentSettings, Signature, Values


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


class FlowBaseline:
    """Normal traffic per attribute value: pending integer counts per evaluation slot, and
    the evaluated flow decayed with ``exp(-age / tau)``."""

    def __init__(self, eval_every: float, tau: float, wanted: frozenset[str]) -> None:
        self._eval_every = eval_every
        self._tau = tau
        self._dim_set = wanted
        # Flow not yet evaluated: integer counts per evaluation slot (exact, order-free).
        self._pending: dict[int, Counter[tuple[str, str]]] = {}
        self._pending_dims: dict[int, Counter[str]] = {}
        # Evaluated flow decays with exp(-age / tau). Weights are stored relative to ``_t0``
        # (flow at t weighs exp((t - t0) / tau)); the common factor is applied when reading.
        self._t0: float | None = None
        self._flow: dict[tuple[str, str], float] = {}
        self._flow_dim: dict[str, float] = {}

    def observe(self, at: float, values: Values) -> None:
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

    def fold(self, slot: int, at: float) -> float:
        """Fold the flow of slots before ``slot`` in for an evaluation at ``at``; the decay
        factor to apply to the stored weights at ``at``."""
        self._fold_flow(slot)
        if self._t0 is not None and at - self._t0 > 8 * self._tau:
            self._rescale(at)
        return self._decay(at)

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

    def weights(self, sig: Signature) -> tuple[float, float]:
        """Stored flow of the signature's values and of its dimension (before decay)."""
        flow = sum(self._flow.get((sig.dim, v), 0.0) for v in sig.values)
        return flow, self._flow_dim.get(sig.dim, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
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
        }

    def restore(self, data: dict[str, Any]) -> None:
        self._t0 = data["t0"]
        self._flow = {_split(name): weight for name, weight in data["flow"].items()}
        self._flow_dim = dict(data["flow_dims"])
        for slot_text, entry in data["pending"].items():
            slot = int(slot_text)
            self._pending[slot] = Counter({_split(name): n for name, n in entry["values"].items()})
            self._pending_dims[slot] = Counter(entry["dims"])


class RootCauses:
    """Candidates of one evaluation and the root causes among them (see the module doc)."""

    def __init__(self, settings: IncidentSettings, baseline: FlowBaseline) -> None:
        self.settings = settings
        self._baseline = baseline
        self._dims = tuple(settings.dimensions)
        self._priority = {d: i for i, d in enumerate(self._dims)}
        self._tested: Counter[str] = Counter()  # values per attribute in the current evaluation

    def find(self, view: ItemWindow, decay: float) -> list[Candidate]:
        """The root causes of the bad items in ``view``, most specific first."""
        self._tested = Counter(dim for (dim, _value), n in view.counts.items() if n)
        candidates = []
        for (dim, value), count in view.counts.items():
            if dim == AREA or count < self.settings.min_count:
                continue
            sig = Signature(dim, (value,))
            if self.significant(self._probe(sig, count, view.dim_totals[dim], decay)):
                candidates.append(self.candidate(sig, view.keys_of((dim, value)), view.dim_totals[dim], decay))
        if AREA in self._dims:
            candidates.extend(self._area_candidates(view, decay))
        return self._select(candidates, view, decay)

    def current(self, sig: Signature, view: ItemWindow, decay: float) -> Candidate:
        """The candidate a signature makes in ``view`` (an open incident's, significant or not)."""
        keys: set[str] = set()
        for v in sig.values:
            keys |= view.keys_of((sig.dim, v))
        return self.candidate(sig, keys, view.dim_totals.get(sig.dim, 0), decay)

    def candidate(self, sig: Signature, keys: Iterable[str], bad_total: int, decay: float) -> Candidate:
        keyset = frozenset(keys)
        return self._scored(sig, keyset, len(keyset), bad_total, decay)

    def _probe(self, sig: Signature, count: int, bad_total: int, decay: float) -> Candidate:
        """The same statistics from a count alone (no key set is built)."""
        return self._scored(sig, frozenset(), count, bad_total, decay)

    def _scored(self, sig: Signature, keys: frozenset[str], count: int, bad_total: int, decay: float) -> Candidate:
        flow, flow_total = self._baseline.weights(sig)
        flow, flow_total = decay * flow, decay * flow_total
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

    def significant(self, c: Candidate) -> bool:
        s = self.settings
        tested = max(self._tested.get(c.signature.dim, 1), 1)
        return c.count >= s.min_count and c.lift >= self._required_lift(c) and c.p_value <= s.significance / tested

    def still_active(self, c: Candidate) -> bool:
        """Hysteresis: an open incident stays active at half the thresholds."""
        required = self._required_lift(c)
        return c.count >= max(1, self.settings.min_count // 2) and c.lift >= 1.0 + (required - 1.0) / 2.0

    def _area_candidates(self, view: ItemWindow, decay: float) -> list[Candidate]:
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
            cand = self.candidate(Signature(AREA, cells), [k for c in cells for k in lit[c]], bad_total, decay)
            if self.significant(cand):
                out.append(cand)
        return out

    def _select(self, candidates: list[Candidate], view: ItemWindow, decay: float) -> list[Candidate]:
        """Root causes, most specific first, each explaining its bad items away (see module doc)."""
        ratio = self.settings.explain_ratio

        def without(c: Candidate, explained: frozenset[str]) -> Candidate:
            gone = len(explained & view.keys_with(c.signature.dim))  # explained items with that attribute
            return self.candidate(c.signature, c.keys - explained, c.bad_total - gone, decay)

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
                    and self.significant(without(b, root.keys))
                ]
                if not parents:
                    break
                root = most_specific(parents)
            roots.append(root)
            remaining = [c2 for c in remaining if c is not root and self.significant(c2 := without(c, root.keys))]
        return roots


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
