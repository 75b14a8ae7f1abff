"""Scenarios: named, parameterised disturbances of the normal flow.

A scenario is written ``name[:param=value,...]`` on the command line (``--scenario``)
and in the run-time control (``+hub_outage:hub=HZ-3``). Each is a small validated model;
every scenario takes ``minutes`` (how long it lasts; unset means until it is removed).

==================  ==================================================================
flash_sale          order rate x ``factor`` (47) for ``minutes`` (30), optionally one
                    ``channel``
hub_outage          ``hub`` stops scanning: parcels there emit nothing until it is back,
                    then the backlog drains
carrier_slowdown    stage durations x ``factor`` (3) in ``province`` (Guangdong), for one
                    ``carrier`` or all
typhoon             nothing moves inside a polygon (``zone`` preset, or ``lat``/``lon``/
                    ``radius_km``); :meth:`Typhoon.geojson` gives it to ops and tests
broken_scanner      ``device`` sends bad timestamps (``future_share`` in the future, the
                    rest in the past) and GPS jumps (``gps_jump_share``)
channel_dupes       ``channel``'s feed re-sends ``rate`` (5 %) of events and shuffles them
                    within ``window_s`` (60 s)
source_lag          events of ``source`` arrive ``lag_minutes`` (15) late
==================  ==================================================================
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any, ClassVar

import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from shapely.geometry import Polygon, mapping

from .catalog import CARRIER_BY_ID, CHANNEL_BY_ID
from .geography import offset_km, province_named
from .network import HUBS


class ScenarioError(ValueError):
    """A scenario spec is malformed; the message names the scenario, parameter and problem."""


def _check_channel(value: str | None) -> str | None:
    if value is not None and value not in CHANNEL_BY_ID:
        raise ValueError(f"unknown channel; expected one of {', '.join(CHANNEL_BY_ID)}")
    return value


class Scenario(BaseModel):
    """Base of all scenarios: parameters are validated and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    #: Whether it changes the order arrival rate (the generator redraws arrivals).
    changes_arrivals: ClassVar[bool] = False

    minutes: float | None = Field(default=None, gt=0, le=60 * 24 * 365)

    def spec(self) -> str:
        """The canonical ``name:param=value`` form (only parameters that were set)."""
        params = ",".join(f"{k}={v}" for k, v in self.model_dump(exclude_unset=True).items())
        return f"{self.name}:{params}" if params else self.name

    def matches(self, params: dict[str, str]) -> bool:
        """Whether every given parameter has this value (for ``-name:param=value``).
        Values are compared after validation, so ``province=Guangdong`` matches 440000."""
        try:
            other = type(self).model_validate(params)
        except ValidationError:
            return False
        return all(getattr(other, k) == getattr(self, k) for k in params)


class FlashSale(Scenario):
    name: ClassVar[str] = "flash_sale"
    changes_arrivals: ClassVar[bool] = True
    factor: float = Field(default=47.0, gt=1, le=10_000)
    minutes: float | None = Field(default=30.0, gt=0, le=60 * 24 * 365)
    channel: str | None = None

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        return _check_channel(value)


class HubOutage(Scenario):
    name: ClassVar[str] = "hub_outage"
    hub: str = "HZ-3"
    #: The backlog is scanned over this many minutes once the hub is back.
    drain_minutes: float = Field(default=30.0, ge=0, le=24 * 60)

    @field_validator("hub")
    @classmethod
    def _known_hub(cls, value: str) -> str:
        if value not in {h.id for h in HUBS}:
            raise ValueError("unknown hub; hubs are <city code>-<n>, e.g. HZ-3, SH-1, CD-2")
        return value


class CarrierSlowdown(Scenario):
    name: ClassVar[str] = "carrier_slowdown"
    province: str = "440000"
    carrier: str | None = None
    factor: float = Field(default=3.0, gt=0, le=100)

    @field_validator("province")
    @classmethod
    def _adcode(cls, value: str) -> str:
        try:
            return province_named(value).adcode
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None

    @field_validator("carrier")
    @classmethod
    def _known_carrier(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in CARRIER_BY_ID:
            raise ValueError(f"unknown carrier; expected one of {', '.join(CARRIER_BY_ID)}")
        return value.upper() if value else None


#: Coastal regions typhoons hit, as (lon, lat) rings.
TYPHOON_ZONES: dict[str, tuple[tuple[float, float], ...]] = {
    "pearl_river_delta": (
        (112.7, 22.9),
        (113.2, 23.7),
        (114.0, 23.6),
        (114.7, 22.9),
        (114.4, 22.3),
        (113.5, 22.0),
        (112.9, 22.3),
    ),
    "zhejiang_coast": (
        (121.0, 30.3),
        (122.2, 30.1),
        (121.9, 28.5),
        (121.0, 27.3),
        (120.2, 27.4),
        (120.3, 28.5),
        (120.9, 29.6),
    ),
    "fujian_coast": (
        (118.8, 26.6),
        (119.9, 26.4),
        (119.8, 25.3),
        (118.6, 24.2),
        (117.7, 24.1),
        (117.8, 24.9),
        (118.9, 25.6),
    ),
    "hainan": ((108.5, 19.0), (109.2, 20.2), (110.8, 20.3), (111.2, 19.5), (110.3, 18.1), (109.1, 18.2)),
}


class Typhoon(Scenario):
    name: ClassVar[str] = "typhoon"
    zone: str = "pearl_river_delta"
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    radius_km: float = Field(default=80.0, gt=0, le=2000)
    drain_minutes: float = Field(default=60.0, ge=0, le=24 * 60)

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in TYPHOON_ZONES:
            raise ValueError(f"unknown zone; expected one of {', '.join(TYPHOON_ZONES)}")
        return value

    @model_validator(mode="after")
    def _centre_pair(self) -> Typhoon:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self

    @cached_property
    def polygon(self) -> Polygon:
        """The disruption area (x = lon, y = lat, WGS-84), prepared for fast lookups."""
        if self.lat is not None and self.lon is not None:
            ring = []
            for i in range(32):
                a = 2 * math.pi * i / 32
                lat, lon = offset_km(self.lat, self.lon, self.radius_km * math.sin(a), self.radius_km * math.cos(a))
                ring.append((round(lon, 5), round(lat, 5)))
            poly = Polygon(ring)
        else:
            poly = Polygon(TYPHOON_ZONES[self.zone])
        shapely.prepare(poly)
        return poly

    def geojson(self, properties: dict[str, Any] | None = None) -> dict[str, Any]:
        """A GeoJSON Feature of the area, for ``POST /api/v1/disruptions`` and the map."""
        props = {"kind": "typhoon", "scenario": self.spec(), **(properties or {})}
        return {"type": "Feature", "geometry": mapping(self.polygon), "properties": props}


class BrokenScanner(Scenario):
    name: ClassVar[str] = "broken_scanner"
    #: A hub scanner at Nanchang: about 1 event a minute at 50 events/s at 21:00 China time
    #: (a Yiwu or Wuhan hub scanner such as YW-1-SCN-01 sends about 12).
    device: str = "NC-1-SCN-01"
    future_share: float = Field(default=0.7, ge=0, le=1)
    gps_jump_share: float = Field(default=0.3, ge=0, le=1)


class ChannelDupes(Scenario):
    name: ClassVar[str] = "channel_dupes"
    channel: str = "douyin"
    rate: float = Field(default=0.05, ge=0, le=1)
    window_s: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        _check_channel(value)
        return value


class SourceLag(Scenario):
    name: ClassVar[str] = "source_lag"
    source: str = "wms"
    lag_minutes: float = Field(default=15.0, gt=0, le=7 * 24 * 60)


SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls for cls in (FlashSale, HubOutage, CarrierSlowdown, Typhoon, BrokenScanner, ChannelDupes, SourceLag)
}


def split_spec(text: str) -> tuple[str, dict[str, str]]:
    """``name:a=1,b=2`` -> ``("name", {"a": "1", "b": "2"})`` without validating values."""
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"scenario {name!r}: expected param=value, got {part!r}")
        params[key.strip()] = value.strip()
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
    return name, params


def parse_scenario(text: str) -> Scenario:
    """Parse and validate ``name[:param=value,...]``."""
    name, params = split_spec(text)
    try:
        return SCENARIOS[name].model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(scenario)'}: "
            + ("unknown parameter" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, "))
            for err in exc.errors(include_url=False)
        )
        raise ScenarioError(f"scenario {name!r}: {problems}") from None


def describe_scenarios() -> str:
    """One line per scenario with its parameters and defaults (for ``--list-scenarios``)."""
    lines = []
    for name, cls in SCENARIOS.items():
        params = ", ".join(f"{field}={info.default}" for field, info in cls.model_fields.items())
        lines.append(f"{name}: {params}")
    return "\n".join(lines)
