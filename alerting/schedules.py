"""On-call schedules: rotations with handover times in a time zone, plus overrides.

Handover is wall-clock time in the schedule's zone (``zoneinfo``), so a 09:00 handover
stays at 09:00 local across daylight-saving changes. Later rotations are layers over
earlier ones (PagerDuty style); overrides beat every rotation.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from config.durations import Duration


def known_time_zone(value: str) -> str:
    """``value`` when it names an IANA time zone; a ``ValueError`` with a hint otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)") from None
    return value


#: A time zone name checked when the configuration is read (schedules, receivers).
TimeZoneName = Annotated[str, AfterValidator(known_time_zone)]


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    participants: tuple[str, ...] = Field(min_length=1)
    #: Length of one shift (``1d``, ``1w``, ``12h``).
    shift: Duration = timedelta(days=7)
    #: Local wall-clock time when one participant hands over to the next.
    handover: time = time(9, 0)
    #: Local date on which ``participants[0]`` starts their first shift.
    start: date
    #: Optional daily window (local) in which this layer is active, e.g. ["09:00", "18:00"];
    #: outside it the layers below answer. A window may cross midnight.
    active_between: tuple[time, time] | None = None

    @field_validator("shift")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("shift must be longer than zero")
        return value

    def on_call(self, local_now: datetime) -> str | None:
        """Who is on call at ``local_now`` (naive local wall-clock time)."""
        if self.active_between is not None:
            begin, end = self.active_between
            t = local_now.time()
            inside = begin <= t < end if begin <= end else (t >= begin or t < end)
            if not inside:
                return None
        anchor = datetime.combine(self.start, self.handover)
        if local_now < anchor:
            return None
        shifts = int((local_now - anchor) / self.shift)
        return self.participants[shifts % len(self.participants)]


class Override(BaseModel):
    """``user`` takes the schedule from ``start`` to ``end`` (a swap or cover)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str
    start: AwareDatetime
    end: AwareDatetime
    #: Only cover for this participant; ``None`` covers whoever is on call.
    replaces: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: TimeZoneName = "UTC"
    rotations: tuple[Rotation, ...] = Field(min_length=1)
    overrides: tuple[Override, ...] = ()

    def on_call(self, now: datetime, extra_overrides: tuple[Override, ...] = ()) -> str | None:
        """The user on call at ``now`` (aware), or ``None`` when nobody is."""
        local = now.astimezone(ZoneInfo(self.time_zone)).replace(tzinfo=None)
        user: str | None = None
        for rotation in self.rotations:
            layer = rotation.on_call(local)
            if layer is not None:
                user = layer
        # Overrides given at run time (engine API) beat those in the file; later beat earlier.
        for override in (*self.overrides, *extra_overrides):
            if override.start <= now < override.end and (override.replaces is None or override.replaces == user):
                user = override.user
        return user

    def users(self) -> set[str]:
        names = {p for r in self.rotations for p in r.participants}
        names.update(o.user for o in self.overrides)
        names.update(o.replaces for o in self.overrides if o.replaces)
        return names
