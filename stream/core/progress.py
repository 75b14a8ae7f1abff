"""Progress of a SKU along its status ladder: one legal step at a time (pure).

A :class:`Progress` is where a fold of a SKU's timeline stands. :func:`step` applies one
status to it and says why when that is illegal: a move is legal when
:func:`stream.contract.is_legal` says so (a scanned transition) or when it moves forward
along the :data:`LADDER` (missing scans are data); :func:`skipped_stages` names the ladder
stages such a skip jumped over. ``stream.core.lifecycle`` folds timelines with these rules.
"""

from __future__ import annotations

from typing import NamedTuple

from stream.contract import STAGE_RANK, TERMINAL, Status, is_legal

#: Rank before any event; ``exception`` alone keeps it.
NO_RANK = STAGE_RANK[Status.EXCEPTION]


class Progress(NamedTuple):
    """Where a fold of a timeline stands: status, interrupted status, highest rank."""

    status: Status | None = None
    #: When ``status`` is ``exception``: the status it interrupted (``None``: unknown).
    interrupted: Status | None = None
    rank: int = NO_RANK


START = Progress()


#: The happy path of a SKU: the stages a forward skip is measured against. ``hub_arrival``
#: stands level with ``linehaul`` (either is an in-transit scan), ``backordered`` and
#: ``delivery_failed`` are detours beside it.
LADDER: tuple[Status, ...] = (
    Status.PAID,
    Status.PICKED,
    Status.PACKED,
    Status.OUTBOUND_SCAN,
    Status.LINEHAUL,
    Status.OUT_FOR_DELIVERY,
    Status.DELIVERED,
    Status.RETURN_REQUESTED,
    Status.RETURNED,
)

#: Position on the ladder of every status that has one (detours sit between two stages).
_POSITION: dict[Status, float] = {
    **{s: float(i) for i, s in enumerate(LADDER)},
    Status.BACKORDERED: 0.5,
    Status.HUB_ARRIVAL: float(LADDER.index(Status.LINEHAUL)),
    Status.DELIVERY_FAILED: LADDER.index(Status.OUT_FOR_DELIVERY) + 0.5,
}

#: Nothing follows these (``delivered`` may still be followed by a return).
_FINAL = frozenset({Status.CANCELLED, Status.RETURNED})
_RETURNS = frozenset({Status.RETURN_REQUESTED, Status.RETURNED})


def forward(current: Status, new: Status) -> bool:
    """Whether ``new`` lies further along the ladder than ``current`` (a possibly skipping,
    never regressing move); ``cancelled`` and ``exception`` are not ladder moves."""
    if current in _FINAL:
        return False
    here, there = _POSITION.get(current), _POSITION.get(new)
    return here is not None and there is not None and there > here


def skipped_stages(current: Status | None, new: Status) -> tuple[Status, ...]:
    """The ladder stages between ``current`` and ``new`` that were not scanned (a forward
    move; ``()`` for the first event, loops, detours back and non-ladder statuses)."""
    if current is None:
        return ()
    here, there = _POSITION.get(current), _POSITION.get(new)
    if here is None or there is None or there <= here:
        return ()
    if new in _RETURNS and here < _POSITION[Status.DELIVERED]:
        # Sent back before delivery (refused, intercepted): no delivery stage is implied.
        return (Status.RETURN_REQUESTED,) if new is Status.RETURNED else ()
    return tuple(s for s in LADDER if here < _POSITION[s] < there)


def skipped_by(progress: Progress, status: Status) -> tuple[Status, ...]:
    """:func:`skipped_stages` of a legal step from ``progress`` (after an exception: from
    the status it interrupted)."""
    if status is Status.EXCEPTION:
        return ()
    current = progress.interrupted if progress.status is Status.EXCEPTION else progress.status
    return skipped_stages(current, status)


def step(progress: Progress, status: Status) -> Progress | str:
    """Apply one status to a fold; return the next progress or why it is illegal."""
    current = progress.status
    if current is None:
        if status is Status.EXCEPTION:
            return Progress(status, None, progress.rank)
        return Progress(status, None, max(progress.rank, STAGE_RANK[status]))
    if status is Status.EXCEPTION:
        if current in TERMINAL:
            return f"exception after terminal status {current.value}"
        interrupted = progress.interrupted if current is Status.EXCEPTION else current
        return Progress(status, interrupted, progress.rank)
    if current is Status.EXCEPTION:
        resumed = progress.interrupted
        if (
            resumed is not None
            and status is not resumed
            and not is_legal(resumed, status)
            and not forward(resumed, status)
        ):
            return f"{status.value} cannot resume after an exception that interrupted {resumed.value}"
    elif not is_legal(current, status) and not forward(current, status):
        return f"{current.value} -> {status.value} is not a legal transition"
    return Progress(status, None, max(progress.rank, STAGE_RANK[status]))
