"""Enter, dwell and exit events from position fixes: the pure geofence state machine.

An entity (a SKU, or the courier carrying it) has a :class:`Membership`: the fences it is
inside and since when. Each position fix, with the ids of the fences containing it (from
:meth:`GeofenceIndex.lookup`), yields the next membership and the events:

- ``enter`` for a fence newly containing the fix; entering a fence whose layer has
  ``advance_stage_to`` also yields a :class:`StageAdvance` (a hub arrival proven by GPS),
  which ``stream.core.lifecycle`` applies if the transition is legal;
- ``dwell`` for a fence still containing it, with the time inside so far;
- ``dwell_exceeded`` (an exception event) once per visit when the time inside passes the
  fence's ``dwell_limit``;
- ``exit`` for a fence no longer containing it (also when the fence was removed by a reload).

Time comes only from the fixes (and from ``now`` in :func:`check_overstays`, for entities
that stop reporting while inside). A fix older than the last one is ignored (``stale``):
GPS fixes arrive out of order and must not undo later ones.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from geo.fence_config import FenceKind
from geo.fence_index import Fence, GeofenceIndex
from stream.contract import Status


class FenceEventKind(StrEnum):
    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"
    DWELL_EXCEEDED = "dwell_exceeded"


@dataclass(frozen=True)
class PositionFix:
    """Where an entity was at a time (WGS-84; convert GCJ-02/BD-09 first)."""

    entity: str
    lon: float
    lat: float
    at: datetime


@dataclass(frozen=True)
class Visit:
    """One stay inside one fence."""

    entered_at: datetime
    last_seen_at: datetime
    overstay_reported: bool = False


@dataclass(frozen=True)
class Membership:
    """An entity's geofence state: fence id -> current visit. Treat as immutable."""

    visits: Mapping[str, Visit] = field(default_factory=dict)
    last_fix_at: datetime | None = None

    @property
    def inside(self) -> frozenset[str]:
        return frozenset(self.visits)

    def to_json_obj(self) -> dict[str, Any]:
        """JSON-friendly form, for keeping the state in a Faust table."""
        return {
            "last_fix_at": self.last_fix_at.isoformat() if self.last_fix_at else None,
            "visits": {
                fence_id: [v.entered_at.isoformat(), v.last_seen_at.isoformat(), v.overstay_reported]
                for fence_id, v in sorted(self.visits.items())
            },
        }

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any]) -> Membership:
        """Inverse of :meth:`to_json_obj`."""
        last = obj.get("last_fix_at")
        visits = {
            fence_id: Visit(datetime.fromisoformat(entered), datetime.fromisoformat(seen), bool(reported))
            for fence_id, (entered, seen, reported) in obj.get("visits", {}).items()
        }
        return cls(visits, datetime.fromisoformat(last) if last else None)


#: The state of an entity never seen before.
EMPTY_MEMBERSHIP = Membership()


@dataclass(frozen=True)
class FenceEvent:
    kind: FenceEventKind
    entity: str
    fence_id: str
    at: datetime
    #: Time inside the fence: 0 on enter, so far on dwell, in total on exit.
    dwell: timedelta
    fence_kind: FenceKind | None = None
    dwell_limit: timedelta | None = None

    @property
    def is_exception(self) -> bool:
        """Whether this event should raise an exception on the SKU (an overstay)."""
        return self.kind is FenceEventKind.DWELL_EXCEEDED


@dataclass(frozen=True)
class StageAdvance:
    """Decision: ``entity`` reached ``status`` at ``at`` by entering ``fence_id``."""

    entity: str
    fence_id: str
    status: Status
    at: datetime


@dataclass(frozen=True)
class TrackStep:
    """The result of one fix (or time check): the next state and what happened."""

    state: Membership
    events: tuple[FenceEvent, ...] = ()
    advances: tuple[StageAdvance, ...] = ()
    #: The fix was older than the last one and was ignored.
    stale: bool = False


def _overstayed(visit: Visit, fence: Fence | None, dwell: timedelta) -> bool:
    return (
        fence is not None
        and fence.dwell_limit is not None
        and not visit.overstay_reported
        and dwell > fence.dwell_limit
    )


def track_fix(
    state: Membership,
    entity: str,
    inside_now: Collection[str],
    at: datetime,
    fences: Mapping[str, Fence],
) -> TrackStep:
    """Apply one fix: ``inside_now`` are the ids of the fences containing it at ``at``."""
    if state.last_fix_at is not None and at < state.last_fix_at:
        return TrackStep(state, stale=True)
    events: list[FenceEvent] = []
    advances: list[StageAdvance] = []
    visits: dict[str, Visit] = {}
    current = set(inside_now)

    for fence_id in sorted(set(state.visits) - current):
        visit = state.visits[fence_id]
        fence = fences.get(fence_id)
        kind, limit = (fence.kind, fence.dwell_limit) if fence else (None, None)
        # Proven time inside is up to the last fix seen inside; report an overstay that no
        # fix caught before the exit.
        if _overstayed(visit, fence, visit.last_seen_at - visit.entered_at):
            events.append(
                FenceEvent(
                    FenceEventKind.DWELL_EXCEEDED,
                    entity,
                    fence_id,
                    visit.last_seen_at,
                    visit.last_seen_at - visit.entered_at,
                    kind,
                    limit,
                )
            )
        events.append(FenceEvent(FenceEventKind.EXIT, entity, fence_id, at, at - visit.entered_at, kind, limit))

    for fence_id in sorted(current):
        fence = fences.get(fence_id)
        kind, limit = (fence.kind, fence.dwell_limit) if fence else (None, None)
        previous = state.visits.get(fence_id)
        if previous is None:
            visits[fence_id] = Visit(entered_at=at, last_seen_at=at)
            events.append(FenceEvent(FenceEventKind.ENTER, entity, fence_id, at, timedelta(0), kind, limit))
            if fence is not None and fence.advance_stage_to is not None:
                advances.append(StageAdvance(entity, fence_id, fence.advance_stage_to, at))
            continue
        dwell = at - previous.entered_at
        visit = replace(previous, last_seen_at=at)
        events.append(FenceEvent(FenceEventKind.DWELL, entity, fence_id, at, dwell, kind, limit))
        if _overstayed(visit, fence, dwell):
            visit = replace(visit, overstay_reported=True)
            events.append(FenceEvent(FenceEventKind.DWELL_EXCEEDED, entity, fence_id, at, dwell, kind, limit))
        visits[fence_id] = visit

    return TrackStep(Membership(visits, at), tuple(events), tuple(advances))


def check_overstays(state: Membership, entity: str, now: datetime, fences: Mapping[str, Fence]) -> TrackStep:
    """Report overstays of an entity that is (as far as we know) still inside, at ``now``.

    For entities that stop sending fixes while parked in a fence: without this, their
    overstay would only surface with their next fix.
    """
    events: list[FenceEvent] = []
    visits = dict(state.visits)
    for fence_id in sorted(state.visits):
        visit = state.visits[fence_id]
        fence = fences.get(fence_id)
        dwell = now - visit.entered_at
        if fence is not None and _overstayed(visit, fence, dwell):
            visits[fence_id] = replace(visit, overstay_reported=True)
            events.append(
                FenceEvent(FenceEventKind.DWELL_EXCEEDED, entity, fence_id, now, dwell, fence.kind, fence.dwell_limit)
            )
    if not events:
        return TrackStep(state)
    return TrackStep(Membership(visits, state.last_fix_at), tuple(events))


class GeofenceTracker:
    """:func:`track_fix` bound to one index: looks the fixes up, then steps each entity."""

    def __init__(self, index: GeofenceIndex) -> None:
        self.index = index

    def observe(self, state: Membership, fix: PositionFix) -> TrackStep:
        inside = self.index.fences_at(fix.lon, fix.lat)
        return track_fix(state, fix.entity, inside, fix.at, self.index.by_id)

    def observe_batch(
        self, states: Mapping[str, Membership], fixes: Sequence[PositionFix]
    ) -> tuple[dict[str, Membership], list[TrackStep]]:
        """Apply ``fixes`` in order (one vectorised lookup for all of them).

        Returns the updated states of the entities seen (others unchanged, not included)
        and one step per fix.
        """
        inside = self.index.lookup([f.lon for f in fixes], [f.lat for f in fixes])
        updated: dict[str, Membership] = {}
        steps: list[TrackStep] = []
        for fix, fence_ids in zip(fixes, inside, strict=True):
            state = updated.get(fix.entity)
            if state is None:
                state = states.get(fix.entity, EMPTY_MEMBERSHIP)
            step = track_fix(state, fix.entity, fence_ids, fix.at, self.index.by_id)
            updated[fix.entity] = step.state
            steps.append(step)
        return updated, steps
