"""The war-room's incident and alert titles, in zh-CN and en: its live incidents put into
:class:`alerting.titles.Facts` for the one title builder the notifications use too, with
place names from the war-room's base map (provinces, and countries outside China).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from alerting.titles import Facts, Places, cause, flow_share, kind_word, title, word
from dashboard.warroom import live
from dashboard.warroom.basemap import Basemap
from dashboard.warroom.i18n import label

__all__ = [
    "Places",
    "alert_title",
    "facts_of",
    "incident_title",
    "kind_state",
    "named",
    "places_of",
    "size",
    "size_detail",
]


def facts_of(incident: live.Incident) -> Facts:
    return Facts(
        kind=incident.kind,
        dimension=incident.dimension,
        cause=incident.cause,
        by_label=incident.by_label,
        orders=incident.affected_orders,
        skus=incident.affected_skus,
        shared=incident.shared,
        zone_name=incident.zone_name,
        flow=incident.flow,
        root_cause_text=incident.root_cause,
        fallback=incident.title,
    )


def incident_title(incident: live.Incident, places: Places, lang: str) -> str:
    """What happened, where and how big, in ``lang``."""
    return title(facts_of(incident), places, lang)


def named(incidents: Sequence[live.Incident], places: Places, lang: str) -> list[live.Incident]:
    """``incidents`` with their human titles and causes (the map, the list and the detail show them)."""
    return [
        dataclasses.replace(i, title=incident_title(i, places, lang), root_cause=cause(facts_of(i), places, lang))
        for i in incidents
    ]


def size(incident: live.Incident, lang: str) -> tuple[str, str]:
    """The row's number and its caption: affected orders, or a flow incident's scans as a
    share of normal ("20%", "of normal scans")."""
    share = flow_share(facts_of(incident))
    if share is not None:
        return f"{share:,}%", label(lang, "incidents.of_normal")
    return f"{incident.affected_orders:,}", label(lang, "incidents.affected_orders")


def size_detail(incident: live.Incident, lang: str) -> tuple[str, str]:
    """The detail's size fact: (name, value)."""
    flow = incident.flow
    if flow_share(facts_of(incident)) is not None:
        minutes = round(float(flow.get("window_s") or 0) / 60)
        return label(lang, "incidents.flow"), label(
            lang,
            "incidents.flow_counts",
            observed=int(flow["observed"]),
            expected=round(float(flow["expected"])),
            minutes=minutes,
        )
    return (label(lang, "incidents.affected_orders"), f"{incident.affected_orders:,} ({incident.affected_skus:,} SKU)")


def kind_state(incident: live.Incident, lang: str) -> str:
    """The row's second line: "Delays · growing" / "延误 · 扩大中"."""
    return f"{kind_word(incident.kind, lang)} · {label(lang, 'incident.state.' + incident.state)}"


def alert_title(alert: live.Alert, incidents: dict[str, live.Incident], places: Places, lang: str) -> str:
    """An alert says what its incidents say (the worst first, then how many more); an alert
    whose incidents are not known here is described by its labels."""
    covered = sorted(
        (incidents[i] for i in alert.incident_ids if i in incidents),
        key=lambda i: (not i.open, -i.affected_orders, i.incident_id),
    )
    if covered:
        more = len(covered) - 1
        return covered[0].title + (word(lang, "title.more", n=more) if more > 0 else "")
    labels = alert.labels
    kind = labels.get("kind", "")
    parts = [word(lang, f"alert.kind.{kind}") if kind else label(lang, "alerts.title")]
    if labels.get("region"):
        parts.append(places.region(labels["region"], lang))
    parts += [labels[k] for k in ("warehouse", "carrier", "channel") if labels.get(k)]
    return " · ".join(parts)


def places_of(basemap: Basemap, regions_of_cells: Callable[[Sequence[str]], list[str | None]]) -> Places:
    """Province names from the base map (a country's name outside China); a cell's place is
    the region of its centre. ``regions_of_cells`` gives province adcodes or country codes."""

    def region_name(code: str, lang: str) -> str:
        area = basemap.province(code) or basemap.country_areas.get(code)
        return area.name(lang) if area is not None else code

    def place_of(cell: str, lang: str) -> str | None:
        code = regions_of_cells([cell])[0]
        return region_name(code, lang) if code else None

    return Places(region_name, place_of)
