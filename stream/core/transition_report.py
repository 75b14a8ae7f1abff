"""What the state machine would make of a set of events (pure): ``import --dry-run``'s report.

Events are applied with the worker's own state machine (:func:`stream.core.lifecycle.apply_event`,
in the order given), then each SKU's timeline is walked in event time: every step is a
transition pair ``from -> to`` that is either applied (with the ladder stages it skipped,
recorded as *not scanned*) or refused as an impossible sequence (a data-quality finding,
with its reason). ``(first)`` is the state before a SKU's first event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from stream.contract import OrderEvent, Status
from stream.core.lifecycle import apply_event
from stream.core.order_state import OrderState, new_order
from stream.core.progress import LADDER, skipped_by, step

FIRST = "(first)"

Pair = tuple[str, str]


@dataclass
class TransitionReport:
    """Counts of the transitions a set of events gives (see the module doc)."""

    orders: dict[str, OrderState] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, event: OrderEvent) -> None:
        order = self.orders.get(event.order_id) or new_order(event.order_id, 0)
        order, change = apply_event(order, event)
        if change is None:
            self.duplicates += 1
        self.orders[event.order_id] = order

    def extend(self, events: Iterable[OrderEvent]) -> TransitionReport:
        for event in events:
            self.add(event)
        return self

    def summary(self) -> TransitionSummary:
        out = TransitionSummary(duplicates=self.duplicates)
        for order in self.orders.values():
            for sku in order.skus.values():
                out.skus += 1
                out.final[sku.status.value] += 1
                progress = sku.base
                for entry in sku.timeline:
                    before = progress.status.value if progress.status is not None else FIRST
                    pair = (before, entry.status.value)
                    result = step(progress, entry.status)
                    if isinstance(result, str):
                        out.refused[pair] += 1
                        out.reasons.setdefault(pair, result)
                        continue
                    skipped = skipped_by(progress, entry.status)
                    out.applied[pair] += 1
                    if skipped:
                        out.skipping[pair] = skipped
                        out.not_scanned.update(s.value for s in skipped)
                    progress = result
        return out


@dataclass
class TransitionSummary:
    skus: int = 0
    duplicates: int = 0
    #: Applied transitions per pair.
    applied: Counter[Pair] = field(default_factory=Counter)
    #: Stages skipped by each skipping pair.
    skipping: dict[Pair, tuple[Status, ...]] = field(default_factory=dict)
    #: Ladder stages not scanned, with how often.
    not_scanned: Counter[str] = field(default_factory=Counter)
    #: Impossible sequences per pair (not applied), and the reason of the first one.
    refused: Counter[Pair] = field(default_factory=Counter)
    reasons: dict[Pair, str] = field(default_factory=dict)
    #: SKUs per final status.
    final: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """The report as text, largest counts first."""
        out = [
            f"state machine: {self.skus:,} SKUs; final status: "
            + ", ".join(f"{status} {n:,}" for status, n in self.final.most_common())
        ]
        out.append("transitions applied (from -> to: events):")
        for (before, after), n in self.applied.most_common():
            skipped = self.skipping.get((before, after))
            note = f" (not scanned: {', '.join(s.value for s in skipped)})" if skipped else ""
            out.append(f"  {before} -> {after}: {n:,}{note}")
        ladder = {s.value: i for i, s in enumerate(LADDER)}
        stages = sorted(self.not_scanned, key=lambda s: ladder.get(s, len(ladder)))
        out.append("stages not scanned: " + (", ".join(f"{s} {self.not_scanned[s]:,}" for s in stages) or "none"))
        if self.refused:
            out.append("impossible sequences refused (data-quality findings, not applied):")
            for pair, n in self.refused.most_common():
                out.append(f"  {pair[0]} -> {pair[1]}: {n:,} ({self.reasons[pair]})")
        else:
            out.append("impossible sequences refused: none")
        if self.duplicates:
            out.append(f"duplicate event ids (ignored): {self.duplicates:,}")
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "skus": self.skus,
            "final": dict(self.final),
            "applied": {f"{a} -> {b}": n for (a, b), n in self.applied.items()},
            "not_scanned": dict(self.not_scanned),
            "refused": {f"{a} -> {b}": n for (a, b), n in self.refused.items()},
            "duplicates": self.duplicates,
        }
