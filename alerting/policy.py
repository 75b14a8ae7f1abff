"""The alerting policy file (``config/alerting.yaml``): its schema and loader.

Everything an operator tunes lives here: tiers, the route tree, inhibition rules,
receivers, users, on-call schedules and escalation policies. Secrets never do; receivers
name them (``url_secret: slack_ops``) and the shell supplies the values.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerting.channels import ReceiverConfig
from alerting.decisions import Language
from alerting.escalation import EscalationPolicy, Target
from alerting.inhibition import InhibitRule
from alerting.links import MAX_LINK_LIFETIME
from alerting.routing import Route, walk_routes
from alerting.schedules import Schedule
from alerting.tier import TierPolicy
from config import PACKAGE_CONFIG_DIR
from config.durations import Duration
from config.rules import load_yaml_model

#: Where the shipped policy lives.
DEFAULT_POLICY_PATH = PACKAGE_CONFIG_DIR / "alerting.yaml"


class User(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: str | None = None
    #: Receivers (contact methods) this person is paged through, in order.
    receivers: tuple[str, ...] = Field(min_length=1)


class AlertPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default_language: Language = "zh-CN"
    #: Told when an escalation target resolves to nobody (empty schedule), so a page is
    #: never dropped silently. Defaults to the root route's receiver.
    fallback_receiver: str | None = None
    #: Lifetime of signed one-click ack/resolve links (at most ``MAX_LINK_LIFETIME``, 7 days).
    link_ttl: Duration = timedelta(hours=24)
    #: How long resolved alerts, resolved incidents and expired silences stay in state.
    retention: Duration = timedelta(hours=24)
    tiers: TierPolicy = Field(default_factory=TierPolicy)
    route: Route
    inhibit_rules: tuple[InhibitRule, ...] = ()
    receivers: dict[str, ReceiverConfig]
    users: dict[str, User] = Field(default_factory=dict)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    escalation_policies: dict[str, EscalationPolicy] = Field(default_factory=dict)

    @field_validator("link_ttl")
    @classmethod
    def _link_ttl_within_limit(cls, value: timedelta) -> timedelta:
        # The web tier refuses links expiring further ahead, so longer ones would never work.
        if value <= timedelta(0):
            raise ValueError("must be positive")
        if value > MAX_LINK_LIFETIME:
            raise ValueError(f"at most {MAX_LINK_LIFETIME.days} days: the server refuses alert links that live longer")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> AlertPolicy:
        problems: list[str] = []
        if not self.route.receiver:
            problems.append("route.receiver: the root route needs a receiver")
        if self.route.matchers:
            problems.append("route.matchers: the root route matches everything and takes no matchers")
        for route_id, route in walk_routes(self.route):
            where = _route_path(route_id)
            if route.receiver is not None and route.receiver not in self.receivers:
                problems.append(f"{where}.receiver: unknown receiver {route.receiver!r}")
            if route.escalation is not None and route.escalation not in self.escalation_policies:
                problems.append(f"{where}.escalation: unknown escalation policy {route.escalation!r}")
        if self.fallback_receiver is not None and self.fallback_receiver not in self.receivers:
            problems.append(f"fallback_receiver: unknown receiver {self.fallback_receiver!r}")
        for name, user in self.users.items():
            for receiver in user.receivers:
                if receiver not in self.receivers:
                    problems.append(f"users.{name}.receivers: unknown receiver {receiver!r}")
        for name, schedule in self.schedules.items():
            for user_name in sorted(schedule.users()):
                if user_name not in self.users:
                    problems.append(f"schedules.{name}: unknown user {user_name!r}")
        for name, esc in self.escalation_policies.items():
            for index, step in enumerate(esc.steps):
                for target in step.targets:
                    problem = self._target_problem(target)
                    if problem:
                        problems.append(f"escalation_policies.{name}.steps[{index}].targets: {problem}")
        for tier, level in self.tiers.levels.items():
            for target in level.also_notify:
                problem = self._target_problem(target)
                if problem:
                    problems.append(f"tiers.levels.{tier.value}.also_notify: {problem}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _target_problem(self, target: Target) -> str | None:
        if target.schedule is not None and target.schedule not in self.schedules:
            return f"unknown schedule {target.schedule!r}"
        if target.user is not None and target.user not in self.users:
            return f"unknown user {target.user!r}"
        if target.receiver is not None and target.receiver not in self.receivers:
            return f"unknown receiver {target.receiver!r}"
        return None

    @property
    def fallback(self) -> str:
        return self.fallback_receiver or self.route.receiver or ""

    def language_of(self, receiver: str) -> Language:
        config = self.receivers.get(receiver)
        if config is None or config.language is None:
            return self.default_language
        return config.language

    def time_zone_of(self, receiver: str) -> str:
        config = self.receivers.get(receiver)
        return config.time_zone if config is not None else "UTC"


def _route_path(route_id: str) -> str:
    """``root.0.2`` -> ``route.routes[0].routes[2]`` (how the YAML spells it)."""
    parts = route_id.split(".")[1:]
    return "route" + "".join(f".routes[{p}]" for p in parts)


def load_policy(path: Path = DEFAULT_POLICY_PATH) -> AlertPolicy:
    """Load and validate the policy; errors name the file, the field and the problem."""
    return load_yaml_model(path, AlertPolicy)
