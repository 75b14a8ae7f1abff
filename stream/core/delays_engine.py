"""The delays stage of the worker: SLA timers, at-risk, incidents and data quality.

:class:`DelaysEngine` wires the pure parts together: per-partition watermarks
(:mod:`stream.core.watermarks`), per-SKU delay states and timers (:mod:`stream.core.delays`), lane
statistics (:mod:`stream.core.lane_stats`), data-quality checks (:mod:`stream.core.data_quality`)
and two incident detectors (:mod:`stream.core.incident_detector`): ``delay`` and ``data_quality``.

How the worker drives it (no clock, no I/O inside)::

    engine = DelaysEngine.from_file()                  # config/sla.yaml
    result = engine.process(events, partition=p, now=record_time)
    ...                                                # publish result.transitions,
    result = engine.tick(now=wall_clock)               # result.incidents, result.findings
    entries = engine.take_dirty()                      # persist into a Faust table

``events`` are what the SKU state machine accepted (``OrderEvent``) and what it refused
(``IllegalTransition``), in partition order. ``now`` is the time the records were received:
use the Kafka record timestamp, so a replay from the topic sees the same clock.

Determinism and replay. Events are processed one at a time: (1) time checks (against the
receipt time and the partition's event clock: a time far ahead of either is a finding and
moves no clock, see :mod:`stream.core.data_quality`), (2) the
source's watermark in its partition moves (its max trusted event time - allowed lateness;
the partition's is the minimum over its sources, see :mod:`stream.core.watermarks`), (3) the event is
applied, (4) that partition's timers up to its watermark fire, (5) the detectors evaluate
when their clock enters a new ``eval_every`` slot: the global watermark (minimum over
partitions) for delays, the flow clock (every partition's newest event time, minus the flow
checks' ``lateness``) for the flow checks and, live, for data quality (a finding counts from
when it was seen, no SLA lateness to wait for). Events the contract rejected for a time over
a day ahead come in through :meth:`DelaysEngine.reject`: findings only.
Nothing depends on batch boundaries, so the same inputs (events with their receipt times,
ticks) in the same order give the same transitions, incident ids and lifecycle events.
When the global watermark crosses several evaluation slots at once (a held-back source
catching up), each slot is evaluated in turn (at most a day of them), so the incidents do
not depend on how far it jumped. With :meth:`expect_partitions` (the worker's owned
partitions) the global watermark waits for every partition, so the incidents do not depend
on how the partitions' records were interleaved either (``stream.core.incident_detector`` evaluates as
of the slot boundary); without it, it is the minimum over the partitions seen so far.
Ticks only move partitions that are idle, which in live operation is exactly when a
replay would also have no events, so replaying the log (without ticks) ends in the same
SKU states and incidents; to reproduce every intermediate event too, replay the ticks.
Tests check both (``tests/delays/test_replay.py``).

Replays of history (``orderradar import --replay``, :mod:`stream.core.replay`) get an engine of
their own (``replay=<id>``): each record is received at its event time and the replay's
clock is its newest event time, so a year-old export is judged exactly as the same events
fed live would have been, and never by the wall clock (nor mixed with live SKUs).

Several workers: the tracker is per partition and the detectors need every partition's
bad SKUs. With one worker this object does both. With several, run the tracker side per
worker and forward ``DelayTransition.to_dict()`` records and flow to one detector
(one-partition topic); :class:`~stream.core.incident_detector.IncidentDetector` has the narrow
``observe_flow`` / ``mark_bad`` / ``clear`` / ``advance`` interface for that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream.contract import OrderEvent
from stream.core.data_quality import (
    FINDING_TITLES,
    DataQualityFinding,
    DataQualityKind,
    DataQualityMonitor,
    IllegalTransition,
)
from stream.core.delays import DelayTracker
from stream.core.delays_store import DETECTORS, StoredDelays
from stream.core.flow_anomaly import FlowAnomalyDetector
from stream.core.flow_incidents import in_flight
from stream.core.incident_detector import IncidentDetector
from stream.core.incident_model import ClusterItem, IncidentChange
from stream.core.lane_stats import Lane, combined_eta
from stream.core.sku_delay import DELAY_TITLES, DelayTransition, SkuDelayView, sku_key
from stream.core.sla import DEFAULT_SLA_PATH, SlaPolicy, SlaRules, load_sla_rules
from stream.core.watermarks import Watermarks

#: At most this much event time of evaluation slots is stepped through when a clock jumps
#: (a restart after downtime): older slots are evaluated as the jump's last one.
_MAX_CATCH_UP_S = 24 * 3600.0


@dataclass(slots=True)
class DelaysResult:
    """What one call produced; every list is in processing order."""

    transitions: list[DelayTransition] = field(default_factory=list)
    findings: list[DataQualityFinding] = field(default_factory=list)
    incidents: list[IncidentChange] = field(default_factory=list)
    watermark: datetime | None = None  # global watermark after the call

    def extend(self, other: DelaysResult) -> None:
        self.transitions.extend(other.transitions)
        self.findings.extend(other.findings)
        self.incidents.extend(other.incidents)
        self.watermark = other.watermark


class DelaysEngine(StoredDelays):
    """Delay states, timers, ETA statistics and incidents for the partitions of one worker."""

    def __init__(self, rules: SlaRules, replay: str | None = None) -> None:
        self.rules = rules
        #: ``None``: live traffic (clock = the worker's). Else the id of the replay this
        #: engine judges: a replayed record is received at its event time, and the clock
        #: of the replay is its newest event time (wall-clock ticks never move it).
        self.replay = replay
        self.replay_now: float | None = None
        self._busy: dict[int, float] = {}  # partition -> wall-clock time of its last batch
        self.policy = SlaPolicy(rules)
        self.watermarks = Watermarks(
            rules.watermark.allowed_lateness.total_seconds(), rules.watermark.idle_after.total_seconds()
        )
        self.delay_incidents = IncidentDetector("delay", rules.incidents, DELAY_TITLES, replay=replay)
        self.dq_incidents = IncidentDetector(
            "data_quality", rules.data_quality.incidents, FINDING_TITLES, replay=replay
        )
        #: drop/surge checks of the live flow (``incidents.flow``); replays are judged by
        #: their SKUs' delays only (a replay's flow is an export's, not a feed's)
        self.flow = FlowAnomalyDetector(rules.incidents.flow) if rules.incidents.flow and replay is None else None
        self.quality = DataQualityMonitor(rules.data_quality)
        self.tracker = DelayTracker(
            self.policy,
            rules.prediction,
            feed=self.delay_incidents,
            h3_resolution=rules.incidents.h3_resolution,
            closed_retention=rules.tracking.closed_retention.total_seconds(),
        )
        if self.flow is not None:  # a flow incident's impact: the tracked orders in flight at its key
            flow_res = self.flow.settings.h3_resolution
            self.flow.incidents.in_flight_of = lambda sig, at: in_flight(self.tracker.skus(), sig, at, flow_res)
        self.events_processed = 0
        self._received: float | None = None  # receipt time of the newest input (flow checks)
        #: Expected partitions that have sent nothing yet -> wall-clock time they were first
        #: expected (``None``: not yet known, set by the next tick).
        self._silent_since: dict[int, float | None] = {}
        self._slots: dict[str, int] = {}  # detector kind -> last evaluation slot stepped to
        #: Stored entries changed since the last :meth:`take_dirty`: ``core``, and the
        #: detectors (the large part: flow baselines, findings), written only when fed or
        #: evaluated, so an idle tick costs what changed, not the state's size.
        self._dirty: set[str] = {"core", *DETECTORS}

    @classmethod
    def from_file(cls, path: Path = DEFAULT_SLA_PATH, replay: str | None = None) -> DelaysEngine:
        return cls(load_sla_rules(path), replay)

    def expect_partitions(self, partitions: set[int] | range, now: datetime | None = None) -> None:
        """The partitions this engine owns: its clock is the minimum over all of them (as in
        Kafka Streams and Flink), so incidents wait until each has a watermark and a batch
        that holds one partition first cannot run the clock ahead on it alone.

        An expected partition that sends nothing for ``idle_after`` of wall clock (``now``,
        then the ticks) is idle: a live engine's follows the ticks, a replay's is no longer
        waited for (a replay need not have records in every partition)."""
        self.watermarks.expect(partitions)
        self._dirty.add("core")
        at = None if now is None else now.timestamp()
        self._silent_since = {p: self._silent_since.get(p, at) for p in self.watermarks.silent()}

    # -- input --------------------------------------------------------------------
    def process(
        self,
        batch: Iterable[OrderEvent | IllegalTransition],
        *,
        partition: int = 0,
        now: datetime | None = None,
        received_at: Sequence[float | None] | None = None,
        partitions: Sequence[int] | None = None,
    ) -> DelaysResult:
        """Process a batch of one partition received at ``now`` (``None``: clockless replay),
        or each item at its own ``received_at`` (epoch seconds; the record timestamps).
        ``partitions``: each item's partition, for a batch of several partitions (in the
        order the worker merged them: lowest receipt time first, as Kafka Streams does).

        The records are a clock too: after each one, the partition's sources that have been
        quiet for ``idle_after`` of record time follow it (so replaying the log, with its
        record times, moves every watermark as live processing did). Without receipt times
        the partition's newest event time is that clock. A replay engine receives each
        record at its own event time.
        """
        batch = list(batch)
        if partitions is None:
            partitions = [partition] * len(batch)
        if now is not None:
            # Wall-clock ticks leave these partitions alone for a while: they are busy,
            # perhaps catching up a backlog whose record times are long past.
            for busy in set(partitions):
                self._busy[busy] = now.timestamp()
        if received_at is None:
            received_at = [None if now is None else now.timestamp()] * len(batch)
        out = DelaysResult()
        if batch:
            self._dirty.update(("core", *DETECTORS))  # flow counts of both detectors
        for item, received, partition in zip(batch, received_at, partitions, strict=True):
            if self.replay is not None:
                event = item.event if isinstance(item, IllegalTransition) else item
                received = event.event_time.timestamp()
            if isinstance(item, IllegalTransition):
                self._illegal(item, partition, received, out)
            else:
                self._event(item, partition, received, out)
            self._record_clock(partition, received, out)
            self._evaluate(out)
        out.watermark = self.watermark()
        return out

    def tick(self, now: datetime) -> DelaysResult:
        """Wall-clock tick: idle sources follow ``now - allowed_lateness``. A replay engine
        has its own clock (its newest event time): the wall clock does not move it, it only
        stops waiting for expected partitions that stayed silent (see :meth:`expect_partitions`)."""
        out = DelaysResult()
        wall = now.timestamp()
        waiting = self._waiting(wall)
        if self.replay is None:
            busy = {p for p, at in self._busy.items() if wall - at < self.watermarks.idle_after}
            for partition in self.watermarks.tick(wall, skip=busy | waiting):
                self._dirty.add("core")
                self._fire(partition, out)
        elif self._silent_since.keys() - waiting:
            idle = self._silent_since.keys() - waiting
            self.watermarks.expect(set(self.watermarks.expected) - idle)
            self._dirty.add("core")
            for partition in idle:
                del self._silent_since[partition]
        self._evaluate(out)
        out.watermark = self.watermark()
        return out

    def _waiting(self, wall: float) -> set[int]:
        """Expected partitions that have sent nothing, for less than ``idle_after`` yet."""
        silent = self.watermarks.silent()
        for partition in list(self._silent_since):
            if partition not in silent:
                del self._silent_since[partition]
        waiting = set()
        for partition in silent:
            since = self._silent_since.get(partition)
            if since is None:
                self._silent_since[partition] = since = wall
            if wall - since < self.watermarks.idle_after:
                waiting.add(partition)
        return waiting

    def advance_watermark(self, watermark: datetime) -> DelaysResult:
        """Move every partition's watermark to at least ``watermark`` (end of a replay)."""
        out = DelaysResult()
        for partition in self.watermarks.advance_all(watermark.timestamp()):
            self._dirty.add("core")
            self._fire(partition, out)
        self._evaluate(out)
        out.watermark = self.watermark()
        return out

    def _record_clock(self, partition: int, received: float | None, out: DelaysResult) -> None:
        """The partition's quiet sources follow the record clock (see :meth:`process`)."""
        clock = received if received is not None else self.watermarks.newest(partition)
        if received is not None:
            self._received = received
        if clock is None:
            return
        if self.replay is not None and (self.replay_now is None or clock > self.replay_now):
            self.replay_now = clock
        if self.watermarks.tick_partition(partition, clock):
            self._fire(partition, out)

    def _clock(self, partition: int, event: OrderEvent, received: float | None) -> float | None:
        """The partition's event clock at this record's receipt (live only: a replay's
        receipt time is its event time), then the record joins it."""
        if received is None or self.replay is not None:
            return None
        clock = self.watermarks.event_clock(partition, received)
        sender = event.device_id or f"source:{event.source}"
        self.watermarks.note_record(partition, event.event_time.timestamp(), received, sender)
        return clock

    def _illegal(self, record: IllegalTransition, partition: int, received: float | None, out: DelaysResult) -> None:
        event_time = record.event.event_time.timestamp()
        clock = self._clock(partition, record.event, received)
        self.watermarks.note_input(partition, received, record.event.source)
        # seen at the partition's event time (a feed trailing the wall clock is judged on
        # its own clock, as the detectors are), without one at its receipt
        at = clock if clock is not None else received if received is not None else event_time
        self._observe_source(record.event, at)
        self._finding(self.quality.illegal(record, event_time, at), out, record.event)

    def reject(self, event: OrderEvent, *, partition: int, received: float | None, reason: str) -> DelaysResult:
        """An event the contract rejected for its time (dead-lettered by the pipeline): a
        future-timestamp finding naming its device, seen at the partition's event clock.
        It is no input otherwise: no SKU, flow count or clock moves."""
        out = DelaysResult()
        event_time = event.event_time.timestamp()
        clock = None if received is None else self.watermarks.event_clock(partition, received)
        at = clock if clock is not None else received if received is not None else event_time
        self._dirty.add("dq_incidents")
        self._finding(self.quality.rejected(event, event_time, at, reason), out, event)
        self._evaluate(out)
        out.watermark = self.watermark()
        return out

    def _event(self, event: OrderEvent, partition: int, received: float | None, out: DelaysResult) -> None:
        self.events_processed += 1
        event_time = event.event_time.timestamp()
        newest = self.watermarks.newest(partition)
        clock = self._clock(partition, event, received)
        bad_time = self.quality.check_time(event, event_time, received, clock, newest)
        if bad_time is not None:
            # The event happened (a scan is a scan) but its time is doubtful: it moves no
            # clock. A time from the future is a wrong clock: use the time it was seen (the
            # partition's event clock, else the receipt time). A time from the far past is
            # still when it happened (a source catching up, an export): judge it at its event
            # time, never at its arrival.
            if bad_time.kind is DataQualityKind.FUTURE_TIMESTAMP:
                at = bad_time.at if received is not None else newest if newest is not None else event_time
            else:
                at = event_time
            self.watermarks.note_input(partition, received, event.source)
            self._finding(bad_time, out, event)
        else:
            at = event_time
            self.watermarks.observe(partition, event_time, received, event.source)
            if self.flow is not None:
                self.flow.observe(event_time, event)
            jump = self.quality.check_position(sku_key(event.order_id, event.sku), event, at)
            if jump is not None:
                self._finding(jump, out, event)
        self._observe_source(event, at)
        watermark = self.watermarks.get(partition)
        transitions = self.tracker.apply(
            event, partition=partition, at=at, watermark=watermark if watermark is not None else at
        )
        self._transitions(transitions, out)
        self._fire(partition, out)

    def _observe_source(self, event: OrderEvent, at: float) -> None:
        values: dict[str, tuple[str, ...]] = {"source": (event.source,)}
        if event.device_id:
            values["device_id"] = (event.device_id,)
        self.dq_incidents.observe_flow(at, values)

    def _finding(self, finding: DataQualityFinding, out: DelaysResult, event: OrderEvent) -> None:
        out.findings.append(finding)
        # where it was seen: not clustered on (data-quality dimensions are device and source),
        # but the labels its incident carries when its findings share them (a scanner's hub)
        where = {
            dim: (value,)
            for dim, value in (
                ("hub", event.node),
                ("warehouse", event.warehouse),
                ("carrier", event.carrier),
                ("region", event.region),
                ("channel", event.channel),
            )
            if value
        }
        self.dq_incidents.mark_bad(
            ClusterItem(
                key=finding.key,
                order_id=finding.order_id,
                sku=finding.sku,
                since=finding.at,
                label=finding.kind.value,
                values={**where, **finding.cluster_values()},
            )
        )

    def _transitions(self, transitions: list[DelayTransition], out: DelaysResult) -> None:
        if transitions:
            self._dirty.add("delay_incidents")  # the tracker marks or clears its bad SKUs
        for transition in transitions:
            if transition.closed:
                self.quality.forget(transition.key)
        out.transitions.extend(transitions)

    def _fire(self, partition: int, out: DelaysResult) -> None:
        watermark = self.watermarks.get(partition)
        if watermark is not None:
            self._transitions(self.tracker.fire(partition, watermark), out)

    def _evaluate(self, out: DelaysResult) -> None:
        watermark = self.watermarks.global_watermark()
        if watermark is None:
            return
        self._advance(self.delay_incidents, watermark, out)
        # Data quality needs no SLA lateness (a finding is bad when seen, not when a timer
        # says so): live, it is judged on the flow checks' clock, within a minute of event
        # time; a replay's on its watermark (its own clock, as every replay detector).
        clock = None
        if self.replay is None:
            lateness = self.flow.settings.lateness if self.flow is not None else self.rules.watermark.allowed_lateness
            clock = self._flow_clock(lateness.total_seconds())
        self._advance(self.dq_incidents, watermark if clock is None else clock, out)
        if self.flow is not None and clock is not None:
            flow = self.flow.advance(clock, self._received)
            if flow:
                self._dirty.add("core")  # its open incidents are stored there
            out.incidents.extend(flow)

    def _advance(self, detector: IncidentDetector, watermark: float, out: DelaysResult) -> None:
        """Evaluate every slot the clock crossed, not only the one it entered: a clock held
        back (by a partition that had not sent yet) and then released must give the
        incidents a clock moving record by record gives."""
        every = detector.settings.eval_every.total_seconds()
        slot = int(watermark // every)
        last = self._slots.get(detector.kind)
        if last is not None and slot > last + 1:
            for step in range(max(last + 1, slot - int(_MAX_CATCH_UP_S // every)), slot):
                out.incidents.extend(detector.advance(step * every))
        if last is None or slot > last:
            self._slots[detector.kind] = slot
            self._dirty.add("delay_incidents" if detector is self.delay_incidents else "dq_incidents")
        out.incidents.extend(detector.advance(watermark))

    def _flow_clock(self, lateness: float) -> float | None:
        """Event time every partition has reached, minus the flow checks' own lateness (they
        need not wait for the slowest source as SLA timers do): a partition's newest trusted
        event, or for an idle one its ticked watermark plus the allowed lateness, but never
        past the newest event of any partition (wall-clock ticks must not outrun a feed
        whose event time is not the wall clock's, such as the simulator's)."""
        marks = self.watermarks
        partitions = marks.partitions()
        newest = {p: marks.newest(p) for p in partitions}
        ahead = max((t for t in newest.values() if t is not None), default=None)
        if ahead is None:
            return None
        reached = []
        for partition in partitions:
            mark = marks.get(partition)
            idle = None if mark is None else min(mark + marks.allowed_lateness, ahead)
            times = [t for t in (newest[partition], idle) if t is not None]
            if not times:
                return None
            reached.append(max(times))
        return min(reached) - lateness

    # -- queries ------------------------------------------------------------------
    def watermark(self, partition: int | None = None) -> datetime | None:
        """The global watermark, or one partition's."""
        instant = self.watermarks.global_watermark() if partition is None else self.watermarks.get(partition)
        return None if instant is None else datetime.fromtimestamp(instant, UTC)

    def _view_time(self, at: datetime | None) -> float:
        if at is not None:
            return at.timestamp()
        watermark = self.watermarks.global_watermark()
        return watermark if watermark is not None else 0.0

    def view(self, order_id: str, sku: str, at: datetime | None = None) -> SkuDelayView | None:
        """One SKU's delay state at ``at`` (default: the global watermark)."""
        return self.tracker.view(sku_key(order_id, sku), self._view_time(at))

    def views(self, at: datetime | None = None) -> Iterator[SkuDelayView]:
        """Every tracked SKU (in flight, and closed ones still retained), sorted by key."""
        return self.tracker.views(self._view_time(at))

    def eta(
        self, lane: Lane, status: str, since: datetime, now: datetime | None = None
    ) -> tuple[datetime, datetime] | None:
        """Delivery window (earliest, latest) = since + p50 .. p90 of time to delivered.

        Statistics of all partitions are merged (histograms add up).
        """
        stats = [self.tracker.lane_stats[p] for p in sorted(self.tracker.lane_stats)]
        return combined_eta(stats, lane, status, since, now)

    def eta_for(self, order_id: str, sku: str, now: datetime | None = None) -> tuple[datetime, datetime] | None:
        """ETA window for a tracked SKU, conditional on the time already spent in its status,
        from the lane statistics of every partition (a lane's parcels are spread over them)."""
        s = self.tracker.get(sku_key(order_id, sku))
        if s is None:
            return None
        since = datetime.fromtimestamp(s.entered.get(s.status, s.status_since), UTC)
        return self.eta(s.lane(), s.status, since, now)

    def open_incidents(self) -> list[dict[str, Any]]:
        """Current incidents of both kinds as ``order-incidents`` records."""
        at = self.watermarks.global_watermark() or 0.0
        return [
            det.record(inc, at) for det in (self.delay_incidents, self.dq_incidents) for inc in det.open_incidents
        ] + ([self.flow.record(inc, at) for inc in self.flow.open_incidents] if self.flow is not None else [])

    def stats(self) -> dict[str, int]:
        return {
            "skus": len(self.tracker),
            "pending_timers": self.tracker.pending_timers(),
            "timer_fires": self.tracker.timer_fires,
            "events": self.events_processed,
            "histograms": sum(len(stats) for stats in self.tracker.lane_stats.values()),
            "open_incidents": len(self.delay_incidents.open_incidents)
            + len(self.dq_incidents.open_incidents)
            + (len(self.flow.open_incidents) if self.flow is not None else 0),
        }
