"""Silences: operator-made mutes with an expiry, or "until resolved".

A silence mutes every incident its matchers match while it is active. ``until_resolved``
silences (Alertmanager #3825) have no end time: they expire once every incident they
ever matched has resolved, and the resolved notice is still sent to whoever had been
told about the alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from alerting.matchers import MatcherField, matches_all


class ResolvedLookup(Protocol):
    def get(self, incident_id: str, default: bool, /) -> bool: ...


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    silence_id: str
    matchers: tuple[MatcherField, ...]
    created_by: str
    comment: str = ""
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    until_resolved: bool = False
    #: Incidents matched so far (drives ``until_resolved`` expiry).
    matched: list[str] = []
    expired_at: AwareDatetime | None = None

    def active(self, now: datetime) -> bool:
        if self.expired_at is not None or now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.active(now) and matches_all(self.matchers, labels)

    def due_to_expire(self, now: datetime, resolved: ResolvedLookup) -> bool:
        """Whether the silence ends at ``now``. ``resolved.get(id, True)``: is it resolved
        (unknown incidents count as resolved)."""
        if self.expired_at is not None:
            return False
        if self.ends_at is not None and now >= self.ends_at:
            return True
        return (
            self.until_resolved
            and bool(self.matched)
            and all(resolved.get(incident_id, True) for incident_id in self.matched)
        )

    def ended_before(self, horizon: datetime) -> bool:
        """Whether it ended (expired, or its end time passed) at or before ``horizon``."""
        ended = self.expired_at or self.ends_at
        return ended is not None and ended <= horizon
