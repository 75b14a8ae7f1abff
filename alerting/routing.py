"""The route tree: which receiver and escalation policy an incident goes to, and how it
is grouped. A pure tree search, modelled on Alertmanager's ``dispatch/route.go``.

Children inherit every setting they do not set themselves. Matching is depth first;
the first matching child wins unless it says ``continue: true``. A node whose children
all fail to match is itself the match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerting.matchers import MatcherField, matches_all
from config.durations import Duration

#: ``group_by: ["..."]`` groups by every label, as in Alertmanager.
GROUP_BY_ALL = "..."


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    matchers: tuple[MatcherField, ...] = ()
    #: Keep looking at later siblings after this route matched.
    continue_: bool = Field(default=False, alias="continue")
    receiver: str | None = None
    #: Escalation policy used when the tier pages; ``null`` on a child turns it off.
    escalation: str | None = None
    group_by: tuple[str, ...] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    routes: tuple[Route, ...] = ()

    @field_validator("group_by")
    @classmethod
    def _unique_group_by(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        seen: set[str] = set()
        for name in value:
            if name in seen:
                raise ValueError(f"duplicated label {name!r} in group_by")
            seen.add(name)
        if GROUP_BY_ALL in seen and len(value) > 1:
            raise ValueError("'...' in group_by must be alone")
        return value


@dataclass(frozen=True)
class RouteTarget:
    """A matched route with its inherited settings resolved."""

    route_id: str
    receiver: str
    escalation: str | None
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by == (GROUP_BY_ALL,):
            return dict(sorted(labels.items()))
        return {name: labels.get(name, "") for name in self.group_by}


#: Root defaults, those of Alertmanager except ``group_by``: one alert per incident.
ROOT_DEFAULTS = RouteTarget(
    route_id="root",
    receiver="",
    escalation=None,
    group_by=("incident_id",),
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=5),
    repeat_interval=timedelta(hours=4),
)


def _inherit(route: Route, parent: RouteTarget, route_id: str) -> RouteTarget:
    fields = route.model_fields_set
    return RouteTarget(
        route_id=route_id,
        receiver=route.receiver if route.receiver is not None else parent.receiver,
        escalation=route.escalation if "escalation" in fields else parent.escalation,
        group_by=route.group_by if route.group_by is not None else parent.group_by,
        group_wait=route.group_wait if route.group_wait is not None else parent.group_wait,
        group_interval=(route.group_interval if route.group_interval is not None else parent.group_interval),
        repeat_interval=(route.repeat_interval if route.repeat_interval is not None else parent.repeat_interval),
    )


def match_routes(root: Route, labels: Mapping[str, str]) -> list[RouteTarget]:
    """All routes ``labels`` go to; the root always matches. Route ids are tree paths."""
    return _match(root, _inherit(root, ROOT_DEFAULTS, "root"), labels)


def _match(route: Route, resolved: RouteTarget, labels: Mapping[str, str]) -> list[RouteTarget]:
    found: list[RouteTarget] = []
    for index, child in enumerate(route.routes):
        if not matches_all(child.matchers, labels):
            continue
        child_resolved = _inherit(child, resolved, f"{resolved.route_id}.{index}")
        found.extend(_match(child, child_resolved, labels))
        if not child.continue_:
            break
    return found or [resolved]


def walk_routes(root: Route) -> list[tuple[str, Route]]:
    """Every route with its id, for validation of references."""
    out: list[tuple[str, Route]] = []

    def visit(route: Route, route_id: str) -> None:
        out.append((route_id, route))
        for index, child in enumerate(route.routes):
            visit(child, f"{route_id}.{index}")

    visit(root, "root")
    return out
