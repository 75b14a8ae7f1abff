"""Human titles of incidents and alerts in zh-CN and en: what happened, where and how big
("Hub HZ-3 stopped scanning · 412 orders"). Pure but for the place lookup it is given.

The producers' own ``title`` (``stream.incidents``: ``hub=HZ-3: 412 SKUs stalled``) is
English and made for logs; the war-room builds its words from the incident's structured
fields instead (root-cause dimension and values, items by delay state or finding kind,
counts, a disruption zone's name), through the one label table of :mod:`i18n`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from dashboard.warroom import live
from dashboard.warroom.basemap import Basemap
from dashboard.warroom.i18n import label

#: An H3 cell's place name in a language (its province), ``None`` outside the map.
PlaceOf = Callable[[str, str], str | None]
#: A province code's name in a language (the code itself when unknown).
RegionName = Callable[[str, str], str]

#: Root-cause dimensions with a title of their own (``cause.<dimension>``).
_DIMENSIONS = ("hub", "warehouse", "route", "carrier", "carrier_region", "region", "channel", "stage",
               "source", "device_id")


@dataclasses.dataclass(frozen=True)
class Places:
    """How titles name places: province codes and H3 cells."""

    region_name: RegionName
    place_of: PlaceOf

    def region(self, code: str, lang: str) -> str:
        return self.region_name(code, lang)


def _main_label(by_label: dict[str, int]) -> str | None:
    known = {k: v for k, v in by_label.items() if v > 0}
    return min(known, key=lambda k: (-known[k], k)) if known else None


def _structured(incident: live.Incident) -> tuple[str, dict[str, object]]:
    """The root cause's dimension and values; from ``root_cause_text`` (``hub=HZ-3``,
    ``carrier=SF,region=330000``, ``area=<cell>+2``) where only that is known (time travel
    reads incidents back from InfluxDB, which keeps the text)."""
    if incident.cause:
        return incident.dimension or next(iter(incident.cause)), incident.cause
    pairs = dict(part.split("=", 1) for part in incident.root_cause.split(",") if "=" in part)
    if "area" in pairs:
        cell = pairs["area"].split("+", 1)[0]
        return "area", {"h3_cells": [cell]}
    if {"carrier", "region"} <= pairs.keys():
        return "carrier_region", dict(pairs)
    return (next(iter(pairs)), dict(pairs)) if pairs else ("", {})


def _where(incident: live.Incident, places: Places, lang: str) -> str:
    """The cause in words: "Hub HZ-3 stopped scanning", "Carrier SF slowed down in 浙江省"."""
    dim, cause = _structured(incident)
    if not cause and not incident.zone_name:
        return incident.root_cause or incident.title  # nothing structured to say it with
    if incident.zone_name or (dim == "area" and "area" in cause):
        return label(lang, "cause.zone", x=incident.zone_name or str(cause.get("area")))
    if dim == "area" or cause.get("h3_cells"):
        cells = [str(c) for c in cause.get("h3_cells") or ()]
        place = next((p for p in (places.place_of(c, lang) for c in cells) if p), None)
        if place is None and incident.shared.get("region"):
            place = places.region(incident.shared["region"], lang)
        return label(lang, "cause.area", x=place or label(lang, "map.outside"))
    if dim == "carrier_region":
        return label(lang, "cause.carrier_region", x=str(cause.get("carrier", "?")),
                     region=places.region(str(cause.get("region", "?")), lang))
    if dim == "region":
        return label(lang, "cause.region", x=places.region(str(cause.get("region", "?")), lang))
    value = str(cause.get(dim, "")) or ", ".join(str(v) for v in cause.values())
    if dim == "hub" and _main_label(incident.by_label) == "stalled":
        return label(lang, "cause.hub.stalled", x=value)
    return label(lang, f"cause.{dim}" if dim in _DIMENSIONS else "cause.other", x=value)


def incident_title(incident: live.Incident, places: Places, lang: str) -> str:
    """What happened, where and how big, in ``lang``."""
    where = _where(incident, places, lang)
    if incident.kind == "data_quality":
        finding = _main_label(incident.by_label)
        what = label(lang, f"finding.{finding}") if finding else label(lang, "incident.kind.data_quality")
        return f"{what} · {where} · {label(lang, 'title.findings', n=sum(incident.by_label.values()))}"
    if incident.affected_orders:
        return f"{where} · {label(lang, 'title.orders', n=incident.affected_orders)}"
    if incident.affected_skus:
        return f"{where} · {label(lang, 'title.skus', n=incident.affected_skus)}"
    return where  # no current items (recovering): no size to state


def named(incidents: Sequence[live.Incident], places: Places, lang: str) -> list[live.Incident]:
    """``incidents`` with their human titles and causes (the map, the list and the detail show them)."""
    return [dataclasses.replace(i, title=incident_title(i, places, lang), root_cause=_where(i, places, lang))
            for i in incidents]


def kind_state(incident: live.Incident, lang: str) -> str:
    """The row's second line: "Delays · growing" / "延误 · 扩大中"."""
    kind = incident.kind if incident.kind in ("delay", "data_quality") else "delay"
    return f"{label(lang, 'incident.kind.' + kind)} · {label(lang, 'incident.state.' + incident.state)}"


def alert_title(alert: live.Alert, incidents: dict[str, live.Incident], places: Places, lang: str) -> str:
    """An alert says what its incidents say (the worst first, then how many more); an alert
    whose incidents are not known here is described by its labels."""
    covered = sorted((incidents[i] for i in alert.incident_ids if i in incidents),
                     key=lambda i: (not i.open, -i.affected_orders, i.incident_id))
    if covered:
        more = len(covered) - 1
        return covered[0].title + (label(lang, "title.more", n=more) if more > 0 else "")
    labels = alert.labels
    kind = labels.get("kind", "")
    parts = [label(lang, f"alert.kind.{kind}") if kind else label(lang, "alerts.title")]
    if labels.get("region"):
        parts.append(places.region(labels["region"], lang))
    parts += [labels[k] for k in ("warehouse", "carrier", "channel") if labels.get(k)]
    return " · ".join(parts)


def places_of(basemap: Basemap, provinces_of_cells: Callable[[Sequence[str]], list[str | None]]) -> Places:
    """Province names from the base map; a cell's place is the province of its centre."""

    def region_name(code: str, lang: str) -> str:
        area = basemap.province(code)
        return area.name(lang) if area is not None else code

    def place_of(cell: str, lang: str) -> str | None:
        code = provinces_of_cells([cell])[0]
        return region_name(code, lang) if code else None

    return Places(region_name, place_of)
