"""Human incident titles in zh-CN and en: what happened, where and how big ("Hub HZ-3
stopped scanning · 412 orders"). Pure but for the place names it is given.

One title builder for the war-room (``dashboard.warroom.titles`` adapts its live incidents)
and the alert notifications (``alerting.messages`` adapts the engine's ``IncidentEvent``).
The producers' own ``title`` (``stream.core.incident_detector``: ``hub=HZ-3: 412 SKUs stalled``) is
English and made for logs; a title here is built from the structured fields instead
(root-cause dimension and values, items by delay state or finding kind, counts, a
disruption zone's name, a flow check's observed and expected counts).
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from geo.regions import default_region_index

#: An H3 cell's place name in a language (its province or country), ``None`` when unknown.
PlaceOf = Callable[[str, str], str | None]
#: A province code's name in a language (the code itself when unknown).
RegionName = Callable[[str, str], str]


def read_words(path: Path) -> dict[str, tuple[str, str]]:
    """A ``key = [zh-CN, en]`` TOML table of words (``alerting/titles.toml``,
    ``alerting/messages.toml``, ``dashboard/warroom/labels.toml``), in file order."""
    with path.open("rb") as file:
        table = tomllib.load(file)
    words: dict[str, tuple[str, str]] = {}
    for key, pair in table.items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(text, str) for text in pair)):
            raise ValueError(f"{path}: {key!r} is not [zh-CN, en] text")
        words[key] = (pair[0], pair[1])
    return words


#: key -> (zh-CN, en). The war-room's label table (``dashboard.warroom.i18n``) includes these.
WORDS = read_words(Path(__file__).with_name("titles.toml"))

#: Root-cause dimensions with words of their own (``cause.<dimension>``, ``place.<dimension>``).
_DIMENSIONS = (
    "hub",
    "warehouse",
    "route",
    "carrier",
    "carrier_region",
    "region",
    "channel",
    "stage",
    "source",
    "device_id",
)
_PLACED = ("hub", "warehouse", "route", "carrier", "carrier_region", "region", "channel", "source", "device_id")


def phrase(table: Mapping[str, tuple[str, str]], lang: str, key: str, **values: object) -> str:
    """``key`` of a ``key -> (zh-CN, en)`` table in ``lang`` (zh for any ``zh*``, else English),
    placeholders filled; the key itself when the table lacks it."""
    pair = table.get(key)
    if pair is None:
        return key
    text = pair[0] if lang.lower().startswith("zh") else pair[1]
    return text.format(**values) if values else text


def word(lang: str, key: str, **values: object) -> str:
    """``key`` of :data:`WORDS` in ``lang``, placeholders filled."""
    return phrase(WORDS, lang, key, **values)


@dataclasses.dataclass(frozen=True)
class Places:
    """How titles name places: province codes and H3 cells."""

    region_name: RegionName
    place_of: PlaceOf

    def region(self, code: str, lang: str) -> str:
        return self.region_name(code, lang)


#: Places named by their codes (where no boundary data is at hand).
CODES = Places(region_name=lambda code, _lang: code, place_of=lambda _cell, _lang: None)


@dataclasses.dataclass(frozen=True)
class Facts:
    """What a title is built from: an incident's kind, root cause, items and size."""

    kind: str
    #: Root-cause dimension (``hub``, ``area``, ``carrier_region``, ...) and its values.
    dimension: str = ""
    cause: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Items by delay state (``stalled``, ``late``...) or, for data quality, by finding kind.
    by_label: Mapping[str, int] = dataclasses.field(default_factory=dict)
    orders: int = 0
    skus: int = 0
    #: Labels all its items share (a hub's region).
    shared: Mapping[str, str] = dataclasses.field(default_factory=dict)
    zone_name: str | None = None
    #: A flow check's ``{check: drop|surge, observed, expected}``.
    flow: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: The root-cause text (``hub=HZ-3``), used when nothing is structured.
    root_cause_text: str = ""
    #: The producer's title, the last resort.
    fallback: str = ""


def _main_label(by_label: Mapping[str, int]) -> str | None:
    known = {k: v for k, v in by_label.items() if v > 0}
    return min(known, key=lambda k: (-known[k], k)) if known else None


def structured(facts: Facts) -> tuple[str, dict[str, Any]]:
    """The root cause's dimension and values; from the root-cause text (``hub=HZ-3``,
    ``carrier=SF,region=330000``, ``area=<cell>+2``) where only that is known (time travel
    reads incidents back from InfluxDB, which keeps the text)."""
    if facts.cause:
        return facts.dimension or next(iter(facts.cause)), dict(facts.cause)
    pairs = dict(part.split("=", 1) for part in facts.root_cause_text.split(",") if "=" in part)
    if "area" in pairs:
        return "area", {"h3_cells": [pairs["area"].split("+", 1)[0]]}
    if {"carrier", "region"} <= pairs.keys():
        return "carrier_region", dict(pairs)
    return (next(iter(pairs)), dict(pairs)) if pairs else ("", {})


def _area_place(facts: Facts, cause: Mapping[str, Any], places: Places, lang: str) -> str:
    cells = [str(c) for c in cause.get("h3_cells") or ()]
    place = next((p for p in (places.place_of(c, lang) for c in cells) if p), None)
    if place is None and facts.shared.get("region"):
        place = places.region(facts.shared["region"], lang)
    return place or word(lang, "place.outside")


def _region(cause: Mapping[str, Any], places: Places, lang: str) -> str:
    return places.region(str(cause.get("region", "?")), lang)


def _value(cause: Mapping[str, Any], dim: str) -> str:
    """The cause's value in its dimension, else all its values."""
    return str(cause.get(dim, "")) or ", ".join(str(v) for v in cause.values())


def _placed(prefix: str, facts: Facts, dim: str, cause: Mapping[str, Any], places: Places, lang: str) -> str | None:
    """The words (``cause.*`` or ``place.*``) for an area, a carrier in a region or a region;
    ``None`` for the other dimensions, which are named by their value."""
    if dim == "area" or cause.get("h3_cells"):
        return word(lang, f"{prefix}.area", x=_area_place(facts, cause, places, lang))
    if dim == "carrier_region":
        x = str(cause.get("carrier", "?"))
        return word(lang, f"{prefix}.carrier_region", x=x, region=_region(cause, places, lang))
    if dim == "region":
        return word(lang, f"{prefix}.region", x=_region(cause, places, lang))
    return None


def where(facts: Facts, places: Places, lang: str) -> str:
    """The cause in words: "Hub HZ-3 stopped scanning", "Carrier SF slowed down in 浙江省"."""
    dim, cause = structured(facts)
    if not cause and not facts.zone_name:
        return facts.root_cause_text or facts.fallback  # nothing structured to say it with
    if facts.zone_name or (dim == "area" and "area" in cause):
        return word(lang, "cause.zone", x=facts.zone_name or str(cause.get("area")))
    placed = _placed("cause", facts, dim, cause, places, lang)
    if placed is not None:
        return placed
    value = _value(cause, dim)
    if dim == "hub" and _main_label(facts.by_label) == "stalled":
        return word(lang, "cause.hub.stalled", x=value)
    return word(lang, f"cause.{dim}" if dim in _DIMENSIONS else "cause.other", x=value)


def place(facts: Facts, places: Places, lang: str) -> str:
    """Where, without saying what happened there: "HZ-3 hub", "Around 浙江省"."""
    dim, cause = structured(facts)
    placed = _placed("place", facts, dim, cause, places, lang)
    if placed is not None:
        return placed
    value = _value(cause, dim) or facts.root_cause_text
    return word(lang, f"place.{dim}" if dim in _PLACED else "place.other", x=value or facts.fallback)


def _flow_title(facts: Facts, places: Places, lang: str) -> str:
    at, share = place(facts, places, lang), flow_share(facts)
    if share is None:
        return at
    if facts.flow.get("check") == "surge":
        return word(lang, "flow.surge", where=at, pct=f"{share:,}")
    if share <= 0:
        return word(lang, "flow.stopped", where=at)
    return word(lang, "flow.drop", where=at, pct=f"{share:,}")


def flow_share(facts: Facts) -> int | None:
    """A flow incident's observed count as a percentage of the expected (``None``: not one)."""
    observed, expected = facts.flow.get("observed"), facts.flow.get("expected")
    if not isinstance(observed, int | float) or not isinstance(expected, int | float) or expected <= 0:
        return None
    return round(100 * observed / expected)


def cause(facts: Facts, places: Places, lang: str) -> str:
    """The root cause as a list or a detail shows it: where a flow check fired, else what
    happened where (:func:`where`)."""
    return place(facts, places, lang) if facts.kind == "flow" or facts.flow else where(facts, places, lang)


def title(facts: Facts, places: Places, lang: str) -> str:
    """What happened, where and how big, in ``lang``."""
    if facts.kind == "flow" or facts.flow:
        return _flow_title(facts, places, lang)
    at = where(facts, places, lang)
    if facts.kind == "data_quality":
        finding = _main_label(facts.by_label)
        what = word(lang, f"finding.{finding}") if finding else word(lang, "incident.kind.data_quality")
        return f"{what} · {at} · {word(lang, 'title.findings', n=sum(facts.by_label.values()))}"
    if facts.orders:
        return f"{at} · {word(lang, 'title.orders', n=facts.orders)}"
    if facts.skus:
        return f"{at} · {word(lang, 'title.skus', n=facts.skus)}"
    return at  # no current items (recovering): no size to state


def kind_word(kind: str, lang: str) -> str:
    """ "Delays", "Data quality", "Flow" (kinds not known here are delays)."""
    return word(lang, f"incident.kind.{kind if kind in ('delay', 'data_quality', 'flow') else 'delay'}")


def headline(titles: list[str], lang: str) -> str:
    """The first title, then how many more."""
    more = len(titles) - 1
    return (titles[0] if titles else "") + (word(lang, "title.more", n=more) if more > 0 else "")


@functools.cache
def boundary_places() -> Places:
    """Province (and country) names from the shipped boundary files (``geo.regions``, read once
    and shared with the geo stage); cells are not named (an incident event carries none)."""
    names = {r.code: (r.name, r.name_en) for r in default_region_index().regions}

    def region_name(code: str, lang: str) -> str:
        pair = names.get(code)
        return code if pair is None else pair[0] if lang.lower().startswith("zh") else pair[1]

    return Places(region_name=region_name, place_of=lambda _cell, _lang: None)
