"""Inhibition: an active incident mutes the narrower incidents it explains.

A region-wide disruption mutes its hub-level incidents, which mute the per-order alerts
beneath them. Rules are source/target matchers plus ``equal`` labels, as in Alertmanager;
unlike Alertmanager, an ``equal`` label must be present (non-empty) on both sides, so an
incident without a region never mutes every other incident without a region.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, field_validator

from alerting.matchers import MatcherField, matches_all


class InhibitRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_matchers: tuple[MatcherField, ...]
    target_matchers: tuple[MatcherField, ...]
    equal: tuple[str, ...] = ()

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _not_empty(cls, value: tuple[object, ...]) -> tuple[object, ...]:
        if not value:
            raise ValueError("needs at least one matcher (an empty list would match everything)")
        return value

    def inhibits(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        if not matches_all(self.source_matchers, source):
            return False
        if not matches_all(self.target_matchers, target):
            return False
        return all(source.get(n, "") != "" and source.get(n) == target.get(n) for n in self.equal)


def inhibitors(
    rules: Iterable[InhibitRule],
    target_id: str,
    target: Mapping[str, str],
    sources: Mapping[str, Mapping[str, str]],
) -> list[str]:
    """Ids of the active incidents (``sources``) that mute ``target``; never itself."""
    rules = tuple(rules)
    return sorted(
        source_id
        for source_id, source in sources.items()
        if source_id != target_id and any(rule.inhibits(source, target) for rule in rules)
    )
