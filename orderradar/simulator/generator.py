"""The traffic generator: a seeded discrete-event simulation of order flow.

Pure: it takes a seed, a start time, a traffic profile and scenarios, and yields
:class:`Emission` s in the order they reach the bus; simulated time only moves when the
caller asks for more. Nothing here reads the clock or does I/O, so the same inputs
(including the same run-time scenario changes at the same simulated times) give the same
bytes.

Inside, two heaps: *processes* (order arrivals, shipment scans, scenario timers) by the
time they happen, and *emissions* by the time they reach the wire (later than the
scan when a scenario delays or re-sends it).
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely

from stream.contract import OrderEvent

from .catalog import CHANNEL_BY_ID
from .distortion import deliveries
from .durations import DAY_S, MINUTE_S, local_hour, to_datetime, to_seconds
from .emission import Emission
from .lifecycle import Process, Step, shipment_process
from .network import NODE_BY_ID, Node
from .orders import Order, Shipment, draw_order
from .profile import DIURNAL, TrafficProfile
from .randomness import SplitMix64
from .scenarios import BrokenScanner, CarrierSlowdown, ChannelDupes, FlashSale, HubOutage, Scenario, SourceLag, Typhoon

__all__ = ["DIURNAL", "ActiveScenario", "TrafficGenerator", "TrafficProfile", "iter_events"]

_EMISSION_SCENARIOS = (BrokenScanner, ChannelDupes, SourceLag)


@dataclass
class ActiveScenario:
    """A scenario in force: since ``start``, until ``end`` (``None``: until removed)."""

    id: int
    scenario: Scenario
    start: float
    end: float | None
    #: Shipments it holds (hub outage, typhoon), released when it ends.
    parked: list[_Flow] = field(default_factory=list)


@dataclass(slots=True)
class _Flow:
    """A shipment in progress: its process and the scan it is waiting to make."""

    order: Order
    shipment: Shipment
    process: Process
    rng: SplitMix64
    pending: Step
    counters: list[int]
    #: Warm-up scans kept to be sent at ``start`` (a backfilled order), else ``None``.
    backfill: list[OrderEvent] | None = None


@dataclass(frozen=True)
class _Arrival:
    version: int


@dataclass(frozen=True)
class _Timer:
    action: Callable[[float], object]


_Entry = tuple[float, int, Any]


class TrafficGenerator:
    """Order flow for one seed, from ``start`` on.

    Iterate :meth:`run_until` (or the generator itself, forever) for emissions in wire
    order; change scenarios between calls with :meth:`activate` / :meth:`deactivate` at
    a time not before :attr:`frontier`.
    """

    def __init__(
        self,
        seed: int,
        start: datetime,
        profile: TrafficProfile | None = None,
        scenarios: Iterable[Scenario] = (),
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must not be negative, got {seed}")
        self.seed = seed
        self.profile = profile or TrafficProfile()
        self._emit_from = to_seconds(start)
        self._frontier = self._emit_from - self.profile.warmup_s
        self._procs: list[_Entry] = []
        self._out: list[tuple[float, int, Emission]] = []
        self._seq = itertools.count()
        self._arrival_rng = random.Random(f"{seed}:arrivals")
        self._hold_rng = random.Random(f"{seed}:holds")
        self._arrival_version = 0
        self._scenario_ids = itertools.count(1)
        self._active: list[ActiveScenario] = []
        self._emission_active: list[Scenario] = []
        self._slowdowns: list[CarrierSlowdown] = []
        #: Warm-up flows whose scans are kept for the backfill, by identity.
        self._backfilling: dict[int, _Flow] = {}
        self._backfill_due = self.profile.backfill_share > 0 and self.profile.warmup_s > 0
        self.orders_placed = 0
        #: Events that happened (one per SKU line per scan), emitted or skipped.
        self.events_simulated = 0
        #: Emissions handed out (including re-sent copies).
        self.events_emitted = 0
        self._schedule_arrival(self._frontier)
        for scenario in scenarios:
            self.activate(scenario, start)

    # ----------------------------------------------------------------- time and output

    @property
    def frontier(self) -> datetime:
        """Simulated time up to which the flow has been computed."""
        return to_datetime(self._frontier)

    def run_until(self, until: datetime | None = None) -> Iterator[Emission]:
        """Emissions reaching the bus up to ``until`` (forever if ``None``), in order."""
        limit = math.inf if until is None else to_seconds(until)
        procs, out = self._procs, self._out
        while procs or out:
            p = procs[0][0] if procs else math.inf
            o = out[0][0] if out else math.inf
            if o <= p and o <= limit:
                emission = heapq.heappop(out)[2]
                self.events_emitted += 1
                yield emission
            elif p < o and p <= limit:
                # strictly after: skip_until(start) ends at start and must not consume them
                if self._backfill_due and p > self._emit_from:
                    self._release_backfill()
                    continue
                self._frontier = max(self._frontier, p)
                self._handle(heapq.heappop(procs))
            else:
                break
        if limit != math.inf:
            self._frontier = max(self._frontier, limit)
        if self._backfill_due and self._frontier >= self._emit_from:
            self._release_backfill()

    def take_until(self, until: datetime) -> list[Emission]:
        return list(self.run_until(until))

    def skip_until(self, until: datetime) -> None:
        """Simulate up to ``until`` without emitting: events before it are not even built,
        which makes this several times faster than consuming them (warm-up, calibration)."""
        self._emit_from = max(self._emit_from, to_seconds(until))
        # Hundreds of thousands of live shipment processes make every cyclic-GC pass slow
        # (2.5x the warm-up time); they are freed by reference counting anyway.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for _ in self.run_until(until):
                pass
        finally:
            if collecting:
                gc.enable()

    def __iter__(self) -> Iterator[Emission]:
        return self.run_until(None)

    # --------------------------------------------------------------------- scenarios

    def activate(self, scenario: Scenario, at: datetime) -> None:
        """Put ``scenario`` in force from ``at`` (not before :attr:`frontier`)."""
        t = self._not_past(at)
        if t > self._frontier:
            self._push(t, _Timer(lambda now: self._start(scenario, now)))
        else:
            self._start(scenario, t)

    def deactivate(self, name: str, at: datetime, params: dict[str, str] | None = None) -> list[Scenario]:
        """End active scenarios called ``name`` whose parameters include ``params``.

        Returns the scenarios ended now; with ``at`` after :attr:`frontier` the end is
        scheduled and the list is empty.
        """
        t = self._not_past(at)
        if t > self._frontier:
            self._push(t, _Timer(lambda now: self._stop_matching(name, params or {}, now)))
            return []
        return self._stop_matching(name, params or {}, t)

    def active(self) -> list[ActiveScenario]:
        return list(self._active)

    def disruptions(self) -> dict[str, Any]:
        """Active disruption areas as a GeoJSON FeatureCollection (typhoons today)."""
        features = []
        for a in self._active:
            if isinstance(a.scenario, Typhoon):
                features.append(
                    a.scenario.geojson(
                        {
                            "id": f"sim-{a.id}",
                            "starts_at": to_datetime(a.start).isoformat(),
                            "ends_at": to_datetime(a.end).isoformat() if a.end is not None else None,
                        }
                    )
                )
        return {"type": "FeatureCollection", "features": features}

    @property
    def exhausted(self) -> bool:
        """No more orders will be placed and every emission has been handed out."""
        return not self._procs and not self._out

    @property
    def in_flight(self) -> int:
        """Shipments with a scan still to come (scheduled or held by a scenario)."""
        return sum(isinstance(e[2], _Flow) for e in self._procs) + self.held

    @property
    def held(self) -> int:
        """Shipments currently held by scenarios."""
        return sum(len(a.parked) for a in self._active)

    def _not_past(self, at: datetime) -> float:
        t = to_seconds(at)
        # ``frontier`` is shown to the millisecond; a time read from it is "now", not the past.
        if t < self._frontier - 1e-3:
            raise ValueError(f"{at.isoformat()} is before the simulated frontier {self.frontier.isoformat()}")
        return max(t, self._frontier)

    def _start(self, scenario: Scenario, now: float) -> None:
        end = now + scenario.minutes * MINUTE_S if scenario.minutes is not None else None
        active = ActiveScenario(next(self._scenario_ids), scenario, now, end)
        self._active.append(active)
        self._refresh(now, scenario)
        if isinstance(scenario, CarrierSlowdown):
            self._stretch(scenario, now)
        if end is not None:
            self._push(end, _Timer(lambda t: self._stop(active, t)))

    def _stretch(self, slowdown: CarrierSlowdown, now: float) -> None:
        """Stages already under way slow down too: what is left of each is ``factor`` times
        longer (like a hold, the process learns the later time when the scan happens), so
        the province's scans thin out at once, as they do when a carrier falls behind."""
        procs = []
        for t, seq, item in self._procs:
            if t > now and isinstance(item, _Flow) and self._slowed(item, slowdown):
                t = now + (t - now) * slowdown.factor
            procs.append((t, seq, item))
        heapq.heapify(procs)
        self._procs[:] = procs  # in place: run_until holds the list

    @staticmethod
    def _slowed(flow: _Flow, slowdown: CarrierSlowdown) -> bool:
        if slowdown.carrier not in (None, flow.shipment.carrier.id):
            return False
        step = flow.pending
        if step.node is not None:
            return step.node.province == slowdown.province
        nxt = step.attributes.get("next_node")
        if isinstance(nxt, str) and nxt in NODE_BY_ID:  # a truck on its way to a hub
            return NODE_BY_ID[nxt].province == slowdown.province
        return flow.order.dest_city.province == slowdown.province  # at the customer's door

    def _stop_matching(self, name: str, params: dict[str, str], now: float) -> list[Scenario]:
        ended = [a for a in self._active if a.scenario.name == name and a.scenario.matches(params)]
        for a in ended:
            self._stop(a, now)
        return [a.scenario for a in ended]

    def _stop(self, active: ActiveScenario, now: float) -> None:
        if active not in self._active:
            return  # already ended by hand before its timer fired
        self._active.remove(active)
        drain = float(getattr(active.scenario, "drain_minutes", 0.0)) * MINUTE_S
        for flow in active.parked:
            # The backlog is worked off over the drain period, not in one instant.
            self._push(now + self._hold_rng.uniform(0.0, drain), flow)
        active.parked.clear()
        self._refresh(now, active.scenario)

    def _refresh(self, now: float, changed: Scenario) -> None:
        self._emission_active = [a.scenario for a in self._active if isinstance(a.scenario, _EMISSION_SCENARIOS)]
        self._slowdowns = [a.scenario for a in self._active if isinstance(a.scenario, CarrierSlowdown)]
        if changed.changes_arrivals:
            self._schedule_arrival(now)

    # --------------------------------------------------------------------- arrivals

    def _flash_sales(self) -> list[FlashSale]:
        return [a.scenario for a in self._active if isinstance(a.scenario, FlashSale)]

    def _rate_multiplier(self) -> float:
        return 1.0 + sum(s.factor - 1.0 for s in self._flash_sales())

    def _schedule_arrival(self, now: float) -> None:
        """Draw the next order arrival after ``now`` (non-homogeneous Poisson by thinning).

        Any arrival drawn earlier is void: the rate may have changed, and by the
        memorylessness of the Poisson process redrawing from ``now`` is exact.
        """
        self._arrival_version += 1
        if self.profile.max_orders is not None and self.orders_placed >= self.profile.max_orders:
            return
        base = self.profile.orders_per_day / DAY_S * self._rate_multiplier()
        peak = base * (max(DIURNAL) if self.profile.diurnal else 1.0)
        rng = self._arrival_rng
        t = now
        while True:
            t += rng.expovariate(peak)
            shape = DIURNAL[int(local_hour(t)) % 24] if self.profile.diurnal else 1.0
            if rng.random() * peak <= base * shape:
                break
        self._push(t, _Arrival(self._arrival_version))

    def _release_backfill(self) -> None:
        """Send the kept warm-up scans of the orders still in flight, at ``start``, in
        event-time order (each SKU's history in order)."""
        self._backfill_due = False
        events = [e for flow in self._backfilling.values() for e in flow.backfill or ()]
        for flow in self._backfilling.values():
            flow.backfill = None
        self._backfilling.clear()
        events.sort(key=lambda e: e.event_time)
        for event in events:
            heapq.heappush(self._out, (self._emit_from, next(self._seq), Emission(self._emit_from, event)))

    def _sampled_for_backfill(self, number: int) -> bool:
        mixed = (number * 0x9E3779B97F4A7C15 + self.seed) & 0xFFFFFFFFFFFFFFFF
        return mixed / 2.0**64 < self.profile.backfill_share

    def _place_order(self, now: float) -> None:
        self.orders_placed += 1
        channel = None
        promo = None
        sales = self._flash_sales()
        if sales:
            pick = self._arrival_rng.random() * self._rate_multiplier() - 1.0
            for sale in sales:
                if pick < 0:
                    break
                if pick < sale.factor - 1.0:
                    promo = "flash_sale"
                    channel = sale.channel
                    break
                pick -= sale.factor - 1.0
        order = draw_order(self.seed, self.orders_placed, now, CHANNEL_BY_ID[channel] if channel else None, promo)
        for i, shipment in enumerate(order.shipments):
            rng = SplitMix64(f"{self.seed}:ship:{order.number}:{i}")
            process = shipment_process(order, shipment, rng, self._slowdown, self.profile.gps_interval_s)
            first = next(process)
            flow = _Flow(order, shipment, process, rng, first, [0] * len(shipment.lines))
            if self._backfill_due and now < self._emit_from and self._sampled_for_backfill(order.number):
                flow.backfill = []
                self._backfilling[id(flow)] = flow
            self._push(first.at, flow)

    def _slowdown(self, carrier: str, nodes: tuple[Node, ...], at: float) -> float:
        factor = 1.0
        for s in self._slowdowns:
            if s.carrier in (None, carrier) and any(n.province == s.province for n in nodes):
                factor *= s.factor
        return factor

    # --------------------------------------------------------------------- processes

    def _push(self, t: float, item: object) -> None:
        heapq.heappush(self._procs, (t, next(self._seq), item))

    def _handle(self, entry: _Entry) -> None:
        t, _, item = entry
        if isinstance(item, _Flow):
            self._scan(item, t)
        elif isinstance(item, _Arrival):
            if item.version == self._arrival_version:
                self._place_order(t)
                self._schedule_arrival(t)
        elif isinstance(item, _Timer):
            item.action(t)

    def _holder(self, step: Step) -> ActiveScenario | None:
        for a in self._active:
            s = a.scenario
            if isinstance(s, HubOutage):
                if step.node is not None and step.node.id == s.hub:
                    return a
            elif (
                isinstance(s, Typhoon)
                and step.lat is not None
                and step.lon is not None
                and shapely.contains_xy(s.polygon, step.lon, step.lat)
            ):
                return a
        return None

    def _scan(self, flow: _Flow, t: float) -> None:
        step = flow.pending
        holder = self._holder(step) if self._active else None
        if holder is not None:
            holder.parked.append(flow)
            return
        last = t
        lines = flow.shipment.lines
        for i in range(len(lines)):
            if i:
                last += flow.rng.uniform(*step.line_gap)
            flow.counters[i] += 1
            self.events_simulated += 1
            if last < self._emit_from:
                if flow.backfill is not None:
                    flow.backfill.append(self._event(flow, step, i, last))
                continue  # warm-up: simulated, not emitted
            event = self._event(flow, step, i, last)
            if self._emission_active:
                for emission in deliveries(event, last, self._emission_active, self.seed):
                    heapq.heappush(self._out, (emission.at_s, next(self._seq), emission))
            else:
                heapq.heappush(self._out, (last, next(self._seq), Emission(last, event)))
        try:
            flow.pending = flow.process.send(last)
        except StopIteration:
            if flow.backfill is not None:  # finished during the warm-up: nothing to show
                del self._backfilling[id(flow)]
                flow.backfill = None
            return
        self._push(flow.pending.at, flow)

    def _event(self, flow: _Flow, step: Step, index: int, at: float) -> OrderEvent:
        order, line = flow.order, flow.shipment.lines[index]
        return OrderEvent(
            event_id=f"{order.id}-{line.sku.id}-{flow.counters[index]}",
            order_id=order.id,
            sku=line.sku.id,
            qty=line.qty,
            status=step.status,
            event_time=to_datetime(at),
            source=step.source,
            channel=order.channel.id,
            warehouse=flow.shipment.warehouse.id,
            node=step.node.id if step.node is not None else None,
            carrier=flow.shipment.carrier.id,
            device_id=step.device_id,
            courier_id=step.courier_id,
            region=order.region,
            lat=step.lat,
            lon=step.lon,
            dest_lat=order.dest_lat,
            dest_lon=order.dest_lon,
            promised_by=to_datetime(order.promised_by),
            sku_class=line.sku.sku_class,
            order_value=order.value,
            vip=order.vip,
            attributes=step.attributes,
        )


def iter_events(
    seed: int,
    start: datetime,
    until: datetime,
    profile: TrafficProfile | None = None,
    scenarios: Iterable[Scenario] = (),
) -> Iterator[OrderEvent]:
    """The events of one seeded run from ``start`` to ``until``, in wire order (which is
    event-time order unless a scenario delays, re-sends or corrupts events)."""
    for emission in TrafficGenerator(seed, start, profile, scenarios).run_until(until):
        yield emission.event
