"""SLA rules: which deadline applies to a SKU in a stage, and to an order's promise.

``config/sla.yaml`` declares *stages* (a timer that starts when a SKU enters one of the
``starts`` statuses and is met when it reaches the ``ends`` status or beyond), overrides
keyed by channel, warehouse, carrier, region and sku_class (the most specific match wins),
operational calendars (business hours, pickup cut-offs, holidays, time zones) and how the
order's ``promised_by`` is read. :func:`load_sla_rules` validates the file with
``config.rules.load_yaml_model``, so a mistake is reported as file, field and problem::

    config/sla.yaml: overrides[2].stage: unknown stage 'fulfilmnt' (known: fulfilment, ...)

:class:`SlaPolicy` is the compiled, cached form used on the hot path.

Specificity: an override matching more dimensions wins; between equally many, the
dimension order sku_class > warehouse > carrier > region > channel decides; two overrides
of one stage with the same match are rejected when the file is loaded.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from config import PACKAGE_CONFIG_DIR
from config.durations import Duration
from config.rules import load_yaml_model
from stream.contract import CLOSED, STAGE_RANK, SkuClass, Status
from stream.core.calendars import CalendarRule, OperationalCalendar, start_of_next_local_day, zone
from stream.core.data_quality import DataQualitySettings
from stream.core.flow_anomaly import FlowSettings
from stream.core.incident_model import IncidentSettings
from stream.core.lane_stats import PredictionSettings

DEFAULT_SLA_PATH = PACKAGE_CONFIG_DIR / "sla.yaml"

#: Match dimensions, most specific first (the tie-break order between overrides).
MATCH_DIMENSIONS: tuple[str, ...] = ("sku_class", "warehouse", "carrier", "region", "channel")
_WEIGHT = {d: 1 << (len(MATCH_DIMENSIONS) - 1 - i) for i, d in enumerate(MATCH_DIMENSIONS)}
_CACHE_LIMIT = 65_536


def _listify(value: object) -> object:
    return [value] if isinstance(value, str) else value


OneOrMany = Annotated[list[str], BeforeValidator(_listify), Field(min_length=1)]


def _rule_error(loc: tuple[str | int, ...], message: str, value: object) -> ValidationError:
    """A validation error located at a field, so the loader names it (not "top level")."""
    return ValidationError.from_exception_data(
        "SlaRules",
        [InitErrorDetails(type=PydanticCustomError("rule", message), loc=loc, input=value)],
    )


class MatchSpec(BaseModel):
    """Which SKUs an override applies to; each dimension takes one value or a list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku_class: OneOrMany | None = None
    warehouse: OneOrMany | None = None
    carrier: OneOrMany | None = None
    region: OneOrMany | None = None
    channel: OneOrMany | None = None

    @field_validator("sku_class")
    @classmethod
    def _sku_class(cls, value: list[str] | None) -> list[str] | None:
        known = {c.value for c in SkuClass}
        for v in value or ():
            if v not in known:
                raise ValueError(f"unknown sku_class {v!r} (known: {', '.join(sorted(known))})")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> MatchSpec:
        if not self.dims():
            raise ValueError(f"match must name at least one of {', '.join(MATCH_DIMENSIONS)}")
        return self

    def dims(self) -> tuple[str, ...]:
        return tuple(d for d in MATCH_DIMENSIONS if getattr(self, d) is not None)

    def specificity(self) -> tuple[int, int]:
        dims = self.dims()
        return len(dims), sum(_WEIGHT[d] for d in dims)

    def matches(self, ctx: SlaContext) -> bool:
        for dim in MATCH_DIMENSIONS:
            wanted = getattr(self, dim)
            if wanted is not None and getattr(ctx, dim) not in wanted:
                return False
        return True

    def label(self) -> str:
        return ",".join(f"{d}={'/'.join(getattr(self, d))}" for d in self.dims())


class StageRule(BaseModel):
    """A deadline for one stage transition, e.g. paid -> outbound_scan within 24h."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    starts: list[Status] = Field(min_length=1)
    ends: Status
    within: Duration
    breach: Literal["late", "stalled"] = "late"
    #: every new event in ``starts`` restarts the timer ("no movement for ...")
    restart_on_scan: bool = False
    calendar: str | None = None

    @model_validator(mode="after")
    def _ranks(self) -> StageRule:
        for status in self.starts:
            if status is Status.EXCEPTION or status in CLOSED:
                raise ValueError(f"starts: {status.value} cannot start a timer")
            if STAGE_RANK[status] >= STAGE_RANK[self.ends]:
                raise ValueError(f"ends: {self.ends.value} must come after {status.value} (it would be met at once)")
        if self.within <= timedelta(0):
            raise ValueError("within: must be longer than 0")
        return self


class StageOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    stage: str
    match: MatchSpec
    within: Duration | None = None
    calendar: str | None = None
    #: no deadline at all for matching SKUs (e.g. made-to-order items)
    disabled: bool = False

    @model_validator(mode="after")
    def _changes_something(self) -> StageOverride:
        if self.within is None and self.calendar is None and not self.disabled:
            raise ValueError("an override must set within, calendar or disabled")
        if self.within is not None and self.within <= timedelta(0):
            raise ValueError("within: must be longer than 0")
        return self


class PromisePolicy(BaseModel):
    """How ``promised_by`` becomes a deadline.

    ``end_of_day``: the promise is a calendar date; late means delivered on a later local
    day (Olist's rule), so the deadline is the next local midnight in ``timezone``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    end_of_day: bool = False
    timezone: str | None = None
    grace: Duration = timedelta(0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @model_validator(mode="after")
    def _zone_for_days(self) -> PromisePolicy:
        if self.end_of_day and self.timezone is None:
            raise ValueError("timezone: required when end_of_day is true (whose midnight?)")
        return self


class PromiseOverride(PromisePolicy):
    id: str | None = None
    match: MatchSpec


class WatermarkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the watermark trails the newest event time by this much: later events are late data
    allowed_lateness: Duration = timedelta(minutes=5)
    #: a partition without input for this long (by the worker's clock) follows ``now`` ticks
    idle_after: Duration = timedelta(minutes=1)


class TrackingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: closed SKUs are remembered this long (event time) so stray late events are ignored
    closed_retention: Duration = timedelta(hours=6)


class IncidentRules(IncidentSettings):
    """``incidents:``: the exception clustering of delayed SKUs, and its ``flow`` checks
    (:mod:`stream.core.flow_anomaly`; absent: off)."""

    flow: FlowSettings | None = None


class SlaRules(BaseModel):
    """The whole of ``config/sla.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    calendars: dict[str, CalendarRule] = Field(default_factory=dict)
    stages: dict[str, StageRule] = Field(min_length=1)
    overrides: list[StageOverride] = Field(default_factory=list)
    promise: PromisePolicy = Field(default_factory=PromisePolicy)
    promise_overrides: list[PromiseOverride] = Field(default_factory=list)
    watermark: WatermarkSettings = Field(default_factory=WatermarkSettings)
    prediction: PredictionSettings = Field(default_factory=PredictionSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    incidents: IncidentRules = Field(default_factory=IncidentRules)
    data_quality: DataQualitySettings = Field(default_factory=DataQualitySettings)

    @model_validator(mode="after")
    def _references(self) -> SlaRules:
        for error in self._reference_errors():
            raise error
        return self

    def _reference_errors(self) -> Iterator[ValidationError]:
        known_stages = ", ".join(self.stages)
        known_calendars = ", ".join(self.calendars) or "none defined"
        starter: dict[Status, str] = {}
        for name, stage in self.stages.items():
            if stage.calendar is not None and stage.calendar not in self.calendars:
                yield _rule_error(
                    ("stages", name, "calendar"),
                    f"unknown calendar {stage.calendar!r} (known: {known_calendars})",
                    stage.calendar,
                )
            for i, status in enumerate(stage.starts):
                if status in starter:
                    yield _rule_error(
                        ("stages", name, "starts", i),
                        f"{status.value} already starts stage {starter[status]!r}; a status starts one stage",
                        status.value,
                    )
                starter[status] = name
        same_as = _repeats((o.stage, _match_key(o.match)) for o in self.overrides)
        for i, override in enumerate(self.overrides):
            if override.stage not in self.stages:
                yield _rule_error(
                    ("overrides", i, "stage"),
                    f"unknown stage {override.stage!r} (known: {known_stages})",
                    override.stage,
                )
            if override.calendar is not None and override.calendar not in self.calendars:
                yield _rule_error(
                    ("overrides", i, "calendar"),
                    f"unknown calendar {override.calendar!r} (known: {known_calendars})",
                    override.calendar,
                )
            if i in same_as:
                yield _rule_error(
                    ("overrides", i, "match"),
                    f"same stage and match as overrides[{same_as[i]}]: which should win?",
                    override.match.label(),
                )
        for i, j in _repeats(_match_key(p.match) for p in self.promise_overrides).items():
            yield _rule_error(
                ("promise_overrides", i, "match"),
                f"same match as promise_overrides[{j}]: which should win?",
                self.promise_overrides[i].match.label(),
            )


def _repeats(keys: Iterable[Hashable]) -> dict[int, int]:
    """Index of each key equal to an earlier one -> index of the latest such earlier key."""
    seen: dict[Hashable, int] = {}
    repeats: dict[int, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            repeats[i] = seen[key]
        seen[key] = i
    return repeats


def _match_key(match: MatchSpec) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((d, tuple(sorted(getattr(match, d)))) for d in match.dims())


def _most_specific_first(match: MatchSpec) -> tuple[int, int]:
    count, weight = match.specificity()
    return -count, -weight


def load_sla_rules(path: Path = DEFAULT_SLA_PATH) -> SlaRules:
    """Load and validate an SLA rule file (errors name file, field and problem)."""
    return load_yaml_model(path, SlaRules)


@dataclass(frozen=True, slots=True)
class SlaContext:
    """What SLA overrides match on, taken from the SKU's events."""

    channel: str | None
    warehouse: str | None
    carrier: str | None
    region: str | None
    sku_class: str


@dataclass(frozen=True, slots=True)
class StageDeadline:
    """The resolved deadline rule for one stage and context."""

    stage: str
    rule: str  # the stage id, or the id of the override that won
    within: float  # seconds (business seconds with a calendar)
    calendar: OperationalCalendar | None
    breach: str  # "late" or "stalled"

    def due(self, start: float) -> float:
        if self.calendar is None:
            return start + self.within
        return self.calendar.deadline(start, self.within)


@dataclass(frozen=True, slots=True)
class PromiseDeadline:
    rule: str
    end_of_day: ZoneInfo | None
    grace: float

    def due(self, promised: float) -> float:
        base = promised if self.end_of_day is None else start_of_next_local_day(promised, self.end_of_day)
        return base + self.grace


class SlaPolicy:
    """Compiled :class:`SlaRules`; resolutions are cached per (stage, context)."""

    def __init__(self, rules: SlaRules) -> None:
        self.rules = rules
        self.calendars = {name: OperationalCalendar(name, rule) for name, rule in rules.calendars.items()}
        self._starter: dict[str, str] = {}
        self._ends_rank: dict[str, int] = {}
        self._restart: dict[str, bool] = {}
        for name, stage in rules.stages.items():
            for status in stage.starts:
                self._starter[status.value] = name
            self._ends_rank[name] = STAGE_RANK[stage.ends]
            self._restart[name] = stage.restart_on_scan
        # most specific first; stable sort keeps file order between equals
        self._overrides = sorted(enumerate(rules.overrides), key=lambda io: (_most_specific_first(io[1].match), io[0]))
        self._promise_overrides = sorted(
            enumerate(rules.promise_overrides), key=lambda io: (_most_specific_first(io[1].match), io[0])
        )
        self._stage_cache: dict[tuple[str, SlaContext], StageDeadline | None] = {}
        self._promise_cache: dict[SlaContext, PromiseDeadline | None] = {}

    def stage_started_by(self, status: str) -> str | None:
        """The stage whose timer starts when a SKU enters ``status``."""
        return self._starter.get(status)

    def ends_rank(self, stage: str) -> int:
        return self._ends_rank[stage]

    def restarts_on_scan(self, stage: str) -> bool:
        return self._restart[stage]

    def _winning_override(self, stage: str, ctx: SlaContext) -> StageOverride | None:
        for _index, override in self._overrides:
            if override.stage == stage and override.match.matches(ctx):
                return override
        return None

    def resolve(self, stage: str, ctx: SlaContext) -> StageDeadline | None:
        """The deadline rule for ``stage`` and ``ctx`` (``None``: disabled for this SKU)."""
        key = (stage, ctx)
        try:
            return self._stage_cache[key]
        except KeyError:
            pass
        base = self.rules.stages[stage]
        override = self._winning_override(stage, ctx)
        resolved: StageDeadline | None = None
        if override is None or not override.disabled:
            within, calendar, rule = base.within, base.calendar, stage
            if override is not None:
                within = override.within if override.within is not None else within
                calendar = override.calendar if override.calendar is not None else calendar
                rule = override.id or f"{stage}[{override.match.label()}]"
            resolved = StageDeadline(
                stage=stage,
                rule=rule,
                within=within.total_seconds(),
                calendar=self.calendars[calendar] if calendar else None,
                breach=base.breach,
            )
        if len(self._stage_cache) >= _CACHE_LIMIT:
            self._stage_cache.clear()
        self._stage_cache[key] = resolved
        return resolved

    def promise(self, ctx: SlaContext) -> PromiseDeadline | None:
        """How this SKU's ``promised_by`` becomes a deadline (``None``: not tracked)."""
        try:
            return self._promise_cache[ctx]
        except KeyError:
            pass
        policy: PromisePolicy = self.rules.promise
        rule = "promise"
        for _i, override in self._promise_overrides:
            if override.match.matches(ctx):
                policy, rule = override, override.id or f"promise[{override.match.label()}]"
                break
        resolved = None
        if policy.enabled:
            tz = zone(policy.timezone) if policy.end_of_day and policy.timezone else None
            resolved = PromiseDeadline(rule, tz, policy.grace.total_seconds())
        if len(self._promise_cache) >= _CACHE_LIMIT:
            self._promise_cache.clear()
        self._promise_cache[ctx] = resolved
        return resolved
