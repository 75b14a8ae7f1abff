"""The bad items of one detector, as of an evaluation time.

Each bad key has one open *episode* (a :class:`~stream.core.incident_model.ClusterItem` with
its ``since``); its memberships in each attribute value (and in its label) are kept up to
date as episodes open, end and age out of the window, so an evaluation costs about the
number of attribute values and new items, not the number of bad SKUs. An evaluation
looks *as of* its time ``at``: an episode counts when it was bad at ``at``
(``since < at < until``), so an episode that started later (a partition further ahead)
changes nothing and one that ended since still counts (:class:`ItemWindow`).
"""

from __future__ import annotations

import heapq
from collections import Counter

from stream.core.incident_model import ClusterItem


class BadItems:
    """Open episodes per key, their memberships, and the episodes ended since the last
    evaluation (they still count for it)."""

    def __init__(self, wanted: frozenset[str], *, expire: bool) -> None:
        self._dim_set = wanted  # the dimensions the detector groups by
        self._expire = expire  # findings leave when they age out (not a sign of recovery)
        self.items: dict[str, ClusterItem] = {}  # the open episode of each bad key
        self.closed: list[ClusterItem] = []  # ended after the last evaluation
        # Memberships of open episodes that are not older than the window, kept up to date
        # on every change so an evaluation costs O(attribute values), not O(bad items).
        self._live: dict[tuple[str, str], set[str]] = {}
        self._live_dim: dict[str, set[str]] = {}
        self._live_label: dict[str, set[str]] = {}
        self._aged: set[str] = set()  # open, but started before the window
        self._by_since: list[tuple[float, str]] = []  # heap, to age episodes out
        self._recent: list[tuple[float, str]] = []  # started since the last evaluation
        # items opened (the item) or gone (None) since take_changed, when items expire and
        # are therefore part of the detector's snapshot
        self._changed: dict[str, ClusterItem | None] | None = {} if expire else None

    def mark_bad(self, item: ClusterItem, evaluated: float) -> float:
        """See :meth:`stream.core.incident_detector.IncidentDetector.mark_bad`; ``evaluated``:
        the time of the last evaluation."""
        old = self.items.get(item.key)
        if old is not None:
            if old.label == item.label and old.values == item.values:
                return old.since
            self._end(old, item.since, evaluated)
        self.open_episode(item)
        return item.since

    def clear(self, key: str, at: float, evaluated: float) -> None:
        item = self.items.get(key)
        if item is not None:
            self._end(item, at, evaluated)

    def open_episode(self, item: ClusterItem) -> None:
        key = item.key
        self.items[key] = item
        self._membership(item, add=True)
        heapq.heappush(self._by_since, (item.since, key))
        self._recent.append((item.since, key))
        if self._changed is not None:
            self._changed[key] = item

    def take_changed(self) -> dict[str, ClusterItem | None]:
        """Open episodes opened or replaced (the item) or gone (``None``: ended or aged out)
        since the last call; always empty unless items expire."""
        if not self._changed:
            return {}
        changed, self._changed = self._changed, {}
        return changed

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

    def _end(self, item: ClusterItem, at: float, evaluated: float) -> None:
        del self.items[item.key]
        if self._changed is not None:
            self._changed[item.key] = None
        if item.key in self._aged:
            self._aged.discard(item.key)
        else:
            self._membership(item, add=False)
        item.until = at
        if at > evaluated:
            self.closed.append(item)  # still counts for evaluations before ``at``

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def _age(self, lo: float) -> None:
        """Episodes that started before the window stop counting (expiring ones are dropped)."""
        heap = self._by_since
        while heap and heap[0][0] < lo:
            since, key = heapq.heappop(heap)
            item = self.items.get(key)
            if item is None or item.since != since or key in self._aged:
                continue  # that episode ended or was replaced
            self._membership(item, add=False)
            if self._expire:
                del self.items[key]  # a finding that aged out: not a sign of recovery
                if self._changed is not None:
                    self._changed[key] = None
            else:
                self._aged.add(key)

    def window_at(self, at: float, lo: float) -> ItemWindow:
        """The bad items as of ``at``: open and within the window, minus episodes that started
        at or after ``at``, plus episodes that ended after ``at``."""
        self._age(lo)
        # forget values no longer seen (devices come and go)
        self._live = {g: keys for g, keys in self._live.items() if keys}
        self._live_dim = {d: keys for d, keys in self._live_dim.items() if keys}
        self._live_label = {label: keys for label, keys in self._live_label.items() if keys}
        ahead: dict[str, ClusterItem] = {}
        recent: list[tuple[float, str]] = []
        for since, key in self._recent:
            item = self.items.get(key)
            if item is not None and item.since == since and since >= at:
                ahead[key] = item
                recent.append((since, key))
        self._recent = recent
        counted: dict[str, ClusterItem] = {}
        exited: set[str] = set()
        still: list[ClusterItem] = []
        for item in self.closed:
            if item.until is not None and item.until > at:
                still.append(item)
                if lo <= item.since < at:
                    counted[item.key] = item
            else:
                exited.add(item.key)
        self.closed = still
        return ItemWindow(
            self._live, self._live_dim, self._live_label, self.items, ahead, counted, exited, self._dim_set
        )


class ItemWindow:
    """The bad items as of one evaluation time, on top of the live memberships."""

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
