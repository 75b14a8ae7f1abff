"""Operational calendars: when a warehouse works, when a carrier picks up, holidays.

An SLA stage that names a calendar counts *business* time: a 12 h fulfilment window opened
at 19:00 on a Friday by a warehouse open 08:00-20:00 Monday to Saturday ends on Saturday at
19:00, and a stage whose calendar has pickup cut-offs starts its clock at the next pickup.

All arithmetic is on absolute instants (float seconds since the epoch). Local days are
built with :mod:`zoneinfo`, so daylight-saving gaps and repeats (America/Sao_Paulo until
2019) come from the tz database rather than from hand-written offsets.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_DAY_INDEX = {name: i for i, name in enumerate(DAY_NAMES)}
_MINUTES_PER_DAY = 1440
#: Searching further than this for open time means the calendar is closed for good.
_MAX_SEARCH_DAYS = 800
_CACHE_LIMIT = 8192


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises ``ValueError`` with a hint when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)") from None


def _clock_minutes(text: str) -> int:
    match = _CLOCK.match(text.strip())
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00-24:00)")
    return int(match.group(1)) * 60 + int(match.group(2))


def _parse_span(text: str) -> tuple[int, int]:
    """``"08:00-20:00"`` -> minutes (480, 1200); an end before the start runs overnight."""
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not a span HH:MM-HH:MM")
    start, end = _clock_minutes(start_text), _clock_minutes(end_text)
    if start == end:
        raise ValueError(f"{text!r} is empty")
    if end < start:
        end += _MINUTES_PER_DAY  # overnight shift, e.g. 22:00-06:00
    return start, end


def _parse_days(spec: str) -> list[int]:
    """``"mon-fri"``, ``"sat"``, ``"daily"`` -> weekday indexes (Monday = 0)."""
    text = spec.strip().lower()
    if text in ("daily", "all", "every_day"):
        return list(range(7))
    first, sep, last = text.partition("-")
    if first not in _DAY_INDEX or (sep and last not in _DAY_INDEX):
        raise ValueError(f"{spec!r} is not a day or day range (use mon..sun, e.g. mon-fri, or daily)")
    if not sep:
        return [_DAY_INDEX[first]]
    a, b = _DAY_INDEX[first], _DAY_INDEX[last]
    return [(a + i) % 7 for i in range((b - a) % 7 + 1)]


class CalendarRule(BaseModel):
    """One named calendar in ``config/sla.yaml``.

    ``hours`` maps day specs (``mon-fri``, ``sat``, ``daily``) to open spans; no hours
    means open around the clock except on holidays. ``pickup_cutoffs`` are the carrier's
    daily pickup times: a stage using this calendar starts counting at the next pickup.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str
    hours: dict[str, list[str]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)
    pickup_cutoffs: list[str] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[int, str] = {}
        for spec, spans in value.items():
            try:
                days = _parse_days(spec)
                for span in spans:
                    _parse_span(span)
            except ValueError as exc:
                raise ValueError(f"{spec}: {exc}") from None
            for day in days:
                if day in seen:
                    raise ValueError(f"{spec}: {DAY_NAMES[day]} is already given by {seen[day]!r}")
                seen[day] = spec
        if value and not any(spans for spans in value.values()):
            raise ValueError("no open hours on any day")
        return value

    @field_validator("pickup_cutoffs")
    @classmethod
    def _cutoffs(cls, value: list[str]) -> list[str]:
        for text in value:
            _clock_minutes(text)
        return value


class OperationalCalendar:
    """A compiled :class:`CalendarRule`: business-time arithmetic on epoch seconds."""

    __slots__ = ("name", "tz", "_week", "_holidays", "_cutoffs", "_always_open", "_spans")

    def __init__(self, name: str, rule: CalendarRule) -> None:
        self.name = name
        self.tz = zone(rule.timezone)
        week: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for spec, spans in rule.hours.items():
            for day in _parse_days(spec):
                week[day].extend(_parse_span(s) for s in spans)
        self._week = tuple(tuple(sorted(day)) for day in week)
        self._holidays = frozenset(rule.holidays)
        self._cutoffs = tuple(sorted(_clock_minutes(c) for c in rule.pickup_cutoffs))
        self._always_open = not rule.hours and not rule.holidays
        self._spans: dict[date, tuple[tuple[float, float], ...]] = {}

    @property
    def has_pickups(self) -> bool:
        return bool(self._cutoffs)

    def local_date(self, instant: float) -> date:
        return datetime.fromtimestamp(instant, self.tz).date()

    def _instant(self, day: date, minute: int) -> float:
        day = day + timedelta(days=minute // _MINUTES_PER_DAY)
        minute %= _MINUTES_PER_DAY
        return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.tz).timestamp()

    def _is_working_day(self, day: date) -> bool:
        if day in self._holidays:
            return False
        return not any(self._week) or bool(self._week[day.weekday()])

    def open_spans(self, day: date) -> tuple[tuple[float, float], ...]:
        """Open intervals (epoch seconds) of shifts that *start* on local ``day``."""
        cached = self._spans.get(day)
        if cached is not None:
            return cached
        if day in self._holidays:
            spans: tuple[tuple[float, float], ...] = ()
        elif not any(self._week):
            spans = ((self._instant(day, 0), self._instant(day, _MINUTES_PER_DAY)),)
        else:
            spans = tuple((self._instant(day, a), self._instant(day, b)) for a, b in self._week[day.weekday()])
        if len(self._spans) >= _CACHE_LIMIT:
            self._spans.clear()
        self._spans[day] = spans
        return spans

    def add_business_time(self, start: float, seconds: float) -> float:
        """The instant at which ``seconds`` of open time have passed since ``start``."""
        if self._always_open:
            return start + seconds
        remaining = seconds
        day = self.local_date(start) - timedelta(days=1)  # overnight shifts from the day before
        for _ in range(_MAX_SEARCH_DAYS):
            for a, b in self.open_spans(day):
                if b <= start:
                    continue
                begin = max(a, start)
                if remaining <= b - begin:
                    return begin + remaining
                remaining -= b - begin
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.name!r} has no open time within {_MAX_SEARCH_DAYS} days")

    def business_seconds(self, start: float, end: float) -> float:
        """Open time between two instants (0 when ``end <= start``)."""
        if end <= start:
            return 0.0
        if self._always_open:
            return end - start
        total = 0.0
        day = self.local_date(start) - timedelta(days=1)
        last = self.local_date(end)
        while day <= last:
            for a, b in self.open_spans(day):
                lo, hi = max(a, start), min(b, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def next_pickup(self, instant: float) -> float:
        """The first pickup cut-off at or after ``instant`` on a working day."""
        if not self._cutoffs:
            return instant
        day = self.local_date(instant)
        for _ in range(_MAX_SEARCH_DAYS):
            if self._is_working_day(day):
                for minute in self._cutoffs:
                    at = self._instant(day, minute)
                    if at >= instant:
                        return at
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.name!r} has no pickup within {_MAX_SEARCH_DAYS} days")

    def deadline(self, start: float, seconds: float) -> float:
        """Due instant of a window of ``seconds`` opened at ``start`` (pickup, then open time)."""
        return self.add_business_time(self.next_pickup(start), seconds)


def start_of_next_local_day(instant: float, tz: ZoneInfo) -> float:
    """Midnight after ``instant``'s local date in ``tz`` (a date-only promise's deadline)."""
    day = datetime.fromtimestamp(instant, tz).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
