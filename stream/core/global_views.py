"""The war-room's global views (heatmap cells, KPIs) from per-partition partial aggregates. Pure.

Two phases, as in Kafka Streams' or Flink's two-phase aggregation:

1. **Partials** (each worker, :class:`ViewCounters`): per source partition, counters of the
   in-flight SKUs by H3 cell (SKUs, orders, SKUs at risk / late / stalled) and for the KPIs
   (SKUs, orders, SKUs per delay state, ETA slips). A SKU's :class:`Contribution` is taken
   out and put back in when the SKU changes, so keeping the counters costs what changed,
   not what is in flight. The delays stage publishes a partition's changed partials on the
   ``warroom-partials`` topic: record key = the view key (cell, ``national``,
   ``replay:<id>``), so every partial of a key lands on the same partition and has one
   owner; the value names its source partition, and a later partial of the same source
   replaces the earlier one.
2. **Globals** (:class:`ViewsOwner`, one owner per key: the worker that owns the key's
   ``warroom-partials`` partition, :mod:`stream.stages.views_agent`): sums the partials of all
   source partitions and publishes the global item on ``warroom-updates`` under the key, in
   the shape the war-room reads (``{"type": "heatmap" | "kpis", "key": ..., ...}``).

A worker that gets a source partition (start, rebalance) derives its counters from the
restored state, then sends a ``reset`` of that source to every ``warroom-partials``
partition, followed by all of the source's partials: the owners drop what the source's
previous worker had sent, so a moved partition is neither counted twice nor lost.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from stream.core.points import Point

HEATMAP = "heatmap"
KPIS = "kpis"
NATIONAL = "national"
#: ``kind`` of the records on ``warroom-partials``.
PARTIAL = "partial"
RESET = "reset"
#: Delay states counted per cell (besides all SKUs).
CELL_STATES = ("at_risk", "late", "stalled")
KPI_STATES = ("on_track", "at_risk", "late", "stalled")


@dataclass(frozen=True)
class ViewsTopics:
    """Real topic names of the two phases (with the settings' prefix)."""

    #: The keyed topic of the partials and its partition count.
    partials: str
    partitions: int
    #: The owners' table changelog (as many partitions).
    changelog: str
    #: Where records that are not partials go.
    dlq: str


class PartialError(ValueError):
    """A ``warroom-partials`` record that is not a partial or a reset."""


def kpi_key(replay: str | None) -> str:
    return NATIONAL if replay is None else f"replay:{replay}"


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one in-flight SKU adds to its partition's counters."""

    partition: int
    order_id: str
    state: str
    #: (region, carrier, warehouse) of the SKU's lane.
    lane: tuple[str | None, str | None, str | None]
    #: (resolution, H3 cell, region of the fix) of the SKU's last position.
    cells: tuple[tuple[int, str, str | None], ...] = ()


class _Count:
    """SKUs, distinct orders (SKUs per order) and SKUs per delay state of one group."""

    __slots__ = ("orders", "skus", "states")

    def __init__(self) -> None:
        self.skus = 0
        self.orders: Counter[str] = Counter()
        self.states: Counter[str] = Counter()

    def add(self, c: Contribution, sign: int) -> None:
        self.skus += sign
        _bump(self.orders, c.order_id, sign)
        _bump(self.states, c.state, sign)


class _CellCount(_Count):
    __slots__ = ("regions", "res")

    def __init__(self, res: int) -> None:
        super().__init__()
        self.res = res
        self.regions: Counter[str | None] = Counter()

    def item(self, cell: str) -> dict[str, Any]:
        # The region most of the cell's SKUs are in (a cell may straddle a border).
        region = min(self.regions.items(), key=lambda kv: (-kv[1], kv[0] or ""))[0] if self.regions else None
        return {
            "type": HEATMAP,
            "key": cell,
            "cell": cell,
            "res": self.res,
            "region": region,
            "skus": self.skus,
            "orders": len(self.orders),
            **{s: self.states[s] for s in CELL_STATES},
        }


def _bump(counter: Counter[Any], key: Any, sign: int) -> None:
    n = counter[key] + sign
    if n:
        counter[key] = n
    else:
        del counter[key]


def empty_cell(cell: str, res: int, region: str | None) -> dict[str, Any]:
    return {
        "type": HEATMAP,
        "key": cell,
        "cell": cell,
        "res": res,
        "region": region,
        "skus": 0,
        "orders": 0,
        **{s: 0 for s in CELL_STATES},
    }


class ViewCounters:
    """One timeline's per-partition counters (see the module doc), kept from contributions."""

    def __init__(self) -> None:
        self.contributions: dict[str, Contribution] = {}
        self.cells: dict[tuple[int, str], _CellCount] = {}
        self.kpis: dict[int, _Count] = {}
        #: (partition, state, region, carrier, warehouse) -> SKUs (the ``delays`` points).
        self.lanes: Counter[tuple[int, str, str | None, str | None, str | None]] = Counter()
        #: Order id -> partition, of orders whose ETA window ends after their promise.
        self.slips: dict[str, int] = {}
        self.slips_by_partition: Counter[int] = Counter()
        #: What changed since :meth:`take_dirty`.
        self.dirty_cells: set[tuple[int, str]] = set()
        self.dirty_lanes: set[tuple[int, str, str | None, str | None, str | None]] = set()

    def set(self, key: str, new: Contribution | None) -> None:
        """The SKU ``key`` now contributes ``new`` (``None``: nothing, it closed)."""
        old = self.contributions.get(key)
        if old == new:
            return
        if old is not None:
            self._add(old, -1)
        if new is None:
            self.contributions.pop(key, None)
        else:
            self.contributions[key] = new
            self._add(new, 1)

    def _add(self, c: Contribution, sign: int) -> None:
        p = c.partition
        kpi = self.kpis.get(p)
        if kpi is None:
            kpi = self.kpis[p] = _Count()
        kpi.add(c, sign)
        lane = (p, c.state, *c.lane)
        _bump(self.lanes, lane, sign)
        self.dirty_lanes.add(lane)
        for res, cell_id, region in c.cells:
            cell = self.cells.get((p, cell_id))
            if cell is None:
                cell = self.cells[(p, cell_id)] = _CellCount(res)
            cell.add(c, sign)
            _bump(cell.regions, region, sign)
            self.dirty_cells.add((p, cell_id))
            if not cell.skus:
                del self.cells[(p, cell_id)]

    def set_slip(self, order_id: str, partition: int | None) -> None:
        """Whether an order's ETA slipped (``partition``: yes, the order's partition)."""
        old = self.slips.get(order_id)
        if old == partition:
            return
        if old is not None:
            del self.slips[order_id]
            _bump(self.slips_by_partition, old, -1)
        if partition is not None:
            self.slips[order_id] = partition
            self.slips_by_partition[partition] += 1

    def cell_item(self, partition: int, cell_id: str) -> dict[str, Any] | None:
        """The cell's partial (``None``: no SKU of ``partition`` is in it)."""
        cell = self.cells.get((partition, cell_id))
        return cell.item(cell_id) if cell is not None else None

    def kpi_counts(self, partition: int) -> dict[str, int]:
        kpi = self.kpis.get(partition) or _Count()
        return {
            "skus": kpi.skus,
            "orders": len(kpi.orders),
            **{s: kpi.states[s] for s in KPI_STATES},
            "eta_slips": self.slips_by_partition[partition],
        }

    def partitions(self) -> builtins.set[int]:  # the class's own set() shadows the builtin here
        return set(self.kpis) | set(self.slips_by_partition)


class Published:
    """What one timeline's last output published: its partials by source partition, and
    the SKUs per lane (for the per-minute points)."""

    def __init__(self) -> None:
        self.cells: dict[tuple[int, str], dict[str, Any]] = {}
        self.kpis: dict[int, dict[str, Any]] = {}
        self.lanes: Counter[tuple[int, str, str | None, str | None, str | None]] = Counter()

    def changed(
        self, counters: ViewCounters, key: str, extra: Mapping[str, Any], sources: Iterable[int] = ()
    ) -> list[tuple[int, dict[str, Any]]]:
        """The partials that changed since the last call, by source partition (an emptied
        cell once as zeros; the KPIs of ``key`` with ``extra`` for every partition counted
        or in ``sources``): costs what changed, not what is in flight."""
        out: list[tuple[int, dict[str, Any]]] = []
        for partition, cell_id in sorted(counters.dirty_cells):
            item = counters.cell_item(partition, cell_id)
            old = self.cells.get((partition, cell_id))
            if item is None:
                if old is None:
                    continue
                item = empty_cell(cell_id, old["res"], old["region"])
                del self.cells[(partition, cell_id)]
            elif item == old:
                continue
            else:
                self.cells[(partition, cell_id)] = item
            out.append((partition, item))
        counters.dirty_cells.clear()
        for lane in counters.dirty_lanes:
            n = counters.lanes[lane]
            if n:
                self.lanes[lane] = n
            else:
                self.lanes.pop(lane, None)
        counters.dirty_lanes.clear()
        for partition in sorted(counters.partitions() | set(self.kpis) | set(sources)):
            item = {"type": KPIS, "key": key, **counters.kpi_counts(partition), **extra}
            if self.kpis.get(partition) != item:
                self.kpis[partition] = item
                out.append((partition, item))
        return out

    def minute_points(self, at_ns: int, replay: str | None) -> list[Point]:
        """The ``delays``, ``delays_orders`` and ``delay_cells`` points of what was published."""
        out = [
            Point(
                "delays",
                {
                    "partition": str(partition),
                    "state": state,
                    "region": region,
                    "carrier": carrier,
                    "warehouse": warehouse,
                    "replay": replay,
                },
                {"skus": n},
                at_ns,
            )
            for (partition, state, region, carrier, warehouse), n in sorted(self.lanes.items(), key=str)
        ]
        # An order lives in one partition: orders per partition add up.
        out += [
            Point("delays_orders", {"partition": str(p), "replay": replay}, {"orders": kpis["orders"]}, at_ns)
            for p, kpis in sorted(self.kpis.items())
            if kpis["orders"]
        ]
        out += [
            Point(
                "delay_cells",
                {"partition": str(p), "h3": cell_id, "res": str(cell["res"]), "region": cell["region"]},
                {name: cell[name] for name in ("skus", "orders", *CELL_STATES)},
                at_ns,
            )
            for (p, cell_id), cell in sorted(self.cells.items())
        ]
        return out


# -- phase two: the owner of a key ------------------------------------------------------------


def partial_record(item: dict[str, Any], source: int) -> dict[str, Any]:
    """The ``warroom-partials`` value of a partial (record key: ``item["key"]``)."""
    return {"kind": PARTIAL, "source": source, "item": item}


def reset_record(source: int) -> dict[str, Any]:
    """Sent to every ``warroom-partials`` partition before a source's full partials."""
    return {"kind": RESET, "source": source}


def merge(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The global item of one key from its partials (by source partition)."""
    ordered = [parts[p] for p in sorted(parts, key=int)]
    first = ordered[0]
    if first["type"] == HEATMAP:
        item = empty_cell(first["key"], first["res"], None)
        for part in ordered:
            for name in ("skus", "orders", *CELL_STATES):
                item[name] += part[name]
        # the region of the source with the most SKUs there (the lowest source on a tie)
        item["region"] = max(ordered, key=lambda part: part["skus"])["region"]
        return item
    totals = {name: sum(part[name] for part in ordered) for name in ("skus", "orders", *KPI_STATES, "eta_slips")}
    skus = totals["skus"]
    item = {
        "type": KPIS,
        "key": first["key"],
        "skus_in_flight": skus,
        "orders_in_flight": totals["orders"],
        "on_time_rate": round(totals["on_track"] / skus, 4) if skus else 1.0,
        "at_risk": totals["at_risk"],
        "late": totals["late"],
        "stalled": totals["stalled"],
        "eta_slips": totals["eta_slips"],
    }
    ats = [part["at"] for part in ordered if part.get("at")]
    if ats:
        item["at"] = max(ats)  # ISO 8601 UTC strings of one format: they sort as times
    if first.get("replay") is not None:
        item["replay"] = first["replay"]
        froms = [part["from"] for part in ordered if part.get("from")]
        if froms:
            item["from"] = min(froms)
    return item


def _check_source(source: Any) -> str:
    if not isinstance(source, int) or isinstance(source, bool) or source < 0:
        raise PartialError(f"source must be a partition number, got {source!r}")
    return str(source)


def _check_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or item.get("type") not in (HEATMAP, KPIS) or not isinstance(item.get("key"), str):
        raise PartialError("item must be an object with type heatmap or kpis and a string key")
    names = (
        ("skus", "orders", *CELL_STATES) if item["type"] == HEATMAP else ("skus", "orders", *KPI_STATES, "eta_slips")
    )
    bad = [n for n in names if not isinstance(item.get(n), int) or isinstance(item.get(n), bool) or item[n] < 0]
    if bad:
        raise PartialError(f"{item['type']} partial needs non-negative integers {', '.join(bad)}")
    if item["type"] == HEATMAP and not isinstance(item.get("res"), int):
        raise PartialError("heatmap partial needs an integer res")
    return item


class ViewsOwner:
    """Sums the partials of the keys whose ``warroom-partials`` partitions this worker owns.

    ``store`` (the owner's table: key -> ``{"partition": ..., "parts": {source: item}}``)
    survives a move of the owner; every write goes through ``store[key] = ...`` or ``del``.
    """

    def __init__(self, store: MutableMapping[str, Any]) -> None:
        self.store = store

    def apply(self, value: Any, partition: int) -> dict[str, dict[str, Any]]:
        """One record of ``warroom-partials`` partition ``partition``; the changed global
        items by key. Raises :class:`PartialError` for a record that is neither kind."""
        if not isinstance(value, dict):
            raise PartialError("record is not a JSON object")
        kind, source = value.get("kind"), value.get("source")
        if kind not in (PARTIAL, RESET):
            raise PartialError(f"kind must be {PARTIAL!r} or {RESET!r}, got {kind!r}")
        source = _check_source(source)
        if kind == RESET:
            return self._reset(source, partition)
        item = _check_item(value.get("item"))
        key = item["key"]
        entry = self.store.get(key)
        parts = dict(entry["parts"]) if isinstance(entry, dict) else {}
        if item["type"] == HEATMAP and item["skus"] == 0:
            if source not in parts:
                return {}
            del parts[source]
        else:
            parts[source] = item
        return {key: self._put(key, parts, partition, item)}

    def _reset(self, source: str, partition: int) -> dict[str, dict[str, Any]]:
        changed: dict[str, dict[str, Any]] = {}
        held = [
            (key, entry)
            for key, entry in self.store.items()
            if isinstance(entry, dict) and entry.get("partition") == partition and source in entry["parts"]
        ]
        for key, entry in held:
            parts = {s: part for s, part in entry["parts"].items() if s != source}
            changed[key] = self._put(key, parts, partition, entry["parts"][source])
        return changed

    def _put(self, key: str, parts: dict[str, Any], partition: int, last: Mapping[str, Any]) -> dict[str, Any]:
        if parts:
            self.store[key] = {"partition": partition, "parts": parts}
            return merge(parts)
        if key in self.store:
            del self.store[key]
        if last["type"] == HEATMAP:
            return empty_cell(key, last["res"], last.get("region"))
        return merge({"0": {**last, **dict.fromkeys(("skus", "orders", *KPI_STATES, "eta_slips"), 0)}})

    def items(self, partitions: Iterable[int]) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """``(key, partition, global item)`` of every key held for ``partitions`` (to
        re-publish after the owner moved)."""
        wanted = set(partitions)
        for key, entry in list(self.store.items()):
            if isinstance(entry, dict) and entry.get("partition") in wanted and entry.get("parts"):
                yield key, entry["partition"], merge(entry["parts"])


__all__ = [
    "HEATMAP",
    "KPIS",
    "NATIONAL",
    "Contribution",
    "PartialError",
    "Published",
    "ViewCounters",
    "ViewsOwner",
    "ViewsTopics",
    "empty_cell",
    "kpi_key",
    "merge",
    "partial_record",
    "reset_record",
]
