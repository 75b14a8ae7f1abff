"""The national map of the war-room: data in, ``go.Figure`` out. Pure: no I/O, no clock.

The map has a fixed trace order (:data:`MAP_TRACES`) so that the live callbacks can send a
``dash.Patch`` that replaces only the hexagon trace (or only its colours) while the base map
(hundreds of kilobytes of boundaries) stays in the browser.

Two backdrops: without a tile server the map is a plotly ``geo`` subplot drawing the shipped
boundaries itself (SVG, works offline and without WebGL); with ``tile_url`` it is a
MapLibre ``map`` subplot with ``style="white-bg"`` and the tiles as a raster layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import h3
import pandas as pd
import plotly.graph_objects as go

from dashboard.warroom.basemap import CHINA_VIEW, Basemap
from dashboard.warroom.i18n import label
from dashboard.warroom.live import Incident, Zone
from dashboard.warroom.localtime import local_text
from dashboard.warroom.theme import (
    ACCENT,
    BG,
    BORDER,
    DELAY_MAX,
    DELAY_SCALE,
    FONT,
    GRID,
    LAND,
    MUTED,
    PANEL,
    SEA,
    TEXT,
    TIER_COLOURS,
)

REASONS = ("typhoon", "road_closure", "power_cut", "other")


def reason_text(lang: str, reason: str) -> str:
    """A zone's reason in ``lang``; a reason typed in by hand is shown as it is."""
    return label(lang, "zones.reason." + reason) if reason in REASONS else reason


MapMode = Literal["hex", "province"]
#: Trace order of the map (indices for ``Patch``).
MAP_TRACES = ("countries", "provinces", "hexes", "zones", "incidents", "highlight", "route")
TRACE_COUNTRIES, TRACE_PROVINCES, TRACE_HEXES, TRACE_ZONES, TRACE_INCIDENTS, TRACE_HIGHLIGHT, TRACE_ROUTE = range(7)


@dataclass(frozen=True)
class Backdrop:
    """How the map is drawn: the shipped boundaries alone, or on top of raster tiles."""

    tile_url: str | None = None
    tile_attribution: str = ""

    @property
    def tiles(self) -> bool:
        return bool(self.tile_url)


@dataclass(frozen=True)
class Route:
    """Positions of one order's events in time order (for the order lookup)."""

    lats: tuple[float, ...]
    lons: tuple[float, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class MapScene:
    """Everything drawn on the national map."""

    mode: MapMode = "hex"
    lang: str = "zh-CN"
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    regions: pd.DataFrame = field(default_factory=pd.DataFrame)
    incidents: Sequence[Incident] = ()
    zones: Sequence[Zone] = ()
    #: A zone being drawn or uploaded, not saved yet: its exterior ring as (lon, lat).
    draft: Sequence[tuple[float, float]] | None = None
    selected_incident: str | None = None
    route: Route | None = None
    #: (lon_min, lat_min, lon_max, lat_max) to show; ``None``: the national view.
    focus: tuple[float, float, float, float] | None = None
    #: Changes when the view should reset (drill-down); otherwise user zoom/pan is kept.
    view_key: str = "national"
    show_incidents: bool = True
    show_zones: bool = True
    #: The viewer's time zone (for times in hover texts).
    tz: str = "UTC"


def hex_geojson(cells: Iterable[str]) -> dict[str, Any]:
    """A FeatureCollection of H3 hexagons (feature ``id`` = cell), rings wound clockwise as
    d3-geo (plotly ``geo``) expects; MapLibre ignores winding."""
    features = []
    for cell in cells:
        ring = [[round(lon, 5), round(lat, 5)] for lat, lon in h3.cell_to_boundary(cell)]
        ring.reverse()  # H3 gives counter-clockwise (lat, lon) loops
        ring.append(ring[0])
        features.append(
            {"type": "Feature", "id": cell, "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        )
    return {"type": "FeatureCollection", "features": features}


def _pct(value: float | None) -> str:
    # Half up on the exact value, as JavaScript's toFixed (warroom_views.js: pct) rounds.
    if value is None:
        return "–"
    return f"{Decimal(value * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _unchanged_by_selection(opacity: float) -> dict[str, Any]:
    # Lassoing a disruption zone selects map points; plotly would dim everything outside it.
    return {"selected": {"marker": {"opacity": opacity}}, "unselected": {"marker": {"opacity": opacity}}}


def _choropleth(backdrop: Backdrop, **kwargs: Any) -> go.Choropleth | go.Choroplethmap:
    opacity = kwargs.get("marker", {}).get("opacity", 1.0)
    kwargs.update(_unchanged_by_selection(opacity))
    if backdrop.tiles:
        kwargs.pop("geo", None)
        return go.Choroplethmap(**kwargs)
    return go.Choropleth(**kwargs)


def _scatter(backdrop: Backdrop, **kwargs: Any) -> go.Scattergeo | go.Scattermap:
    if "marker" in kwargs:
        kwargs.update(_unchanged_by_selection(kwargs["marker"].get("opacity", 1.0)))
    if backdrop.tiles:
        return go.Scattermap(**kwargs)
    return go.Scattergeo(**kwargs)


def hex_values(cells: pd.DataFrame, lang: str) -> dict[str, Any]:
    """The per-cell arrays of the hexagon trace: ``z`` (delay rate) and ``customdata`` rows
    ``[skus, at_risk, late, stalled, place]``. A live update replaces ``z`` and the counts in
    the browser (``assets/warroom_views.js``: ``hexValues``, same layout), keeping the place."""
    if cells.empty:
        return {"locations": [], "z": [], "customdata": []}
    places = list(cells["place"]) if "place" in cells else list(cells["cell"])
    customdata = [
        [int(s), int(a), int(lt), int(st), str(p)]
        for s, a, lt, st, p in zip(
            cells["skus"], cells["at_risk"], cells["late"], cells["stalled"], places, strict=True
        )
    ]
    return {
        "locations": list(cells["cell"]),
        "z": [round(float(v), 4) for v in cells["delay_rate"]],
        "customdata": customdata,
    }


def _hover(lang: str, what: str, rate: str = "%{customdata[4]}") -> str:
    return (
        f"<b>{what}</b><br>{label(lang, 'map.delay_rate')}: {rate}<br>"
        f"{label(lang, 'map.skus')}: %{{customdata[0]:,}}<br>{label(lang, 'kpi.at_risk')}: %{{customdata[1]:,}}"
        f" · {label(lang, 'kpi.late')}: %{{customdata[2]:,}} · {label(lang, 'kpi.stalled')}: %{{customdata[3]:,}}"
        "<extra></extra>"
    )


def hex_trace(cells: pd.DataFrame, lang: str, backdrop: Backdrop, visible: bool = True) -> go.BaseTraceType:
    values = hex_values(cells, lang)
    return _choropleth(
        backdrop,
        geojson=hex_geojson(values["locations"]),
        featureidkey="id",
        **values,
        zmin=0.0,
        zmax=DELAY_MAX,
        colorscale=DELAY_SCALE,
        marker={"line": {"width": 0.3, "color": BG}, "opacity": 0.88},
        colorbar=_colorbar(lang),
        showscale=visible,
        visible=visible,
        name="hexes",
        hovertemplate=_hover(lang, "%{customdata[4]}", "%{z:.1%}"),
    )


def _colorbar(lang: str) -> dict[str, Any]:
    return {
        "title": {"text": label(lang, "map.delay_rate"), "font": {"color": TEXT, "size": 12}},
        "tickformat": ".0%",
        "tickfont": {"color": MUTED, "size": 11},
        "thickness": 10,
        "len": 0.55,
        "x": 0.99,
        "xanchor": "right",
        "y": 0.5,
        "bgcolor": "rgba(11,18,32,0.6)",
        "outlinewidth": 0,
    }


def province_trace(basemap: Basemap, regions: pd.DataFrame, scene: MapScene, backdrop: Backdrop) -> go.BaseTraceType:
    """Every province: coloured by delay rate in province mode, plain land under hexagons."""
    codes = list(basemap.province_areas)
    names = [basemap.province_areas[c].name(scene.lang) for c in codes]
    by_code = {row["code"]: row for row in regions.to_dict("records")} if not regions.empty else {}
    coloured = scene.mode == "province"
    z, customdata = [], []
    for code in codes:
        row = by_code.get(code)
        if row is not None:
            rate = float(row["delay_rate"])
            customdata.append(
                [int(row["skus"]), int(row["at_risk"]), int(row["late"]), int(row["stalled"]), _pct(rate)]
            )
            z.append(rate)
        else:
            customdata.append([0, 0, 0, 0, "–"])
            z.append(0.0)
    if coloured:
        style: dict[str, Any] = {
            "zmin": 0.0,
            "zmax": DELAY_MAX,
            "colorscale": DELAY_SCALE,
            "showscale": True,
            "colorbar": _colorbar(scene.lang),
            "marker": {"line": {"width": 0.8, "color": BG}},
        }
    else:
        style = {
            "zmin": 0.0,
            "zmax": 1.0,
            "colorscale": [[0, LAND], [1, LAND]],
            "showscale": False,
            "marker": {"line": {"width": 0.8, "color": BORDER}},
        }
    return _choropleth(
        backdrop,
        geojson=basemap.provinces,
        featureidkey="id",
        locations=codes,
        z=z,
        customdata=customdata,
        text=names,
        name="provinces",
        hovertemplate=_hover(scene.lang, "%{text}"),
        **style,
    )


def countries_trace(basemap: Basemap, backdrop: Backdrop) -> go.BaseTraceType:
    codes = list(basemap.country_areas)
    return _choropleth(
        backdrop,
        geojson=basemap.countries,
        featureidkey="id",
        locations=codes,
        z=[0] * len(codes),
        zmin=0,
        zmax=1,
        colorscale=[[0, "#131c30"], [1, "#131c30"]],
        showscale=False,
        marker={"line": {"width": 0.4, "color": GRID}},
        hoverinfo="skip",
        name="countries",
    )


def _rings_xy(rings: Iterable[Sequence[tuple[float, float]]]) -> tuple[list[float | None], list[float | None]]:
    lons: list[float | None] = []
    lats: list[float | None] = []
    for ring in rings:
        if lons:
            lons.append(None)
            lats.append(None)
        lons.extend(p[0] for p in ring)
        lats.extend(p[1] for p in ring)
    return lons, lats


def zones_trace(
    zones: Sequence[Zone],
    lang: str,
    backdrop: Backdrop,
    visible: bool = True,
    draft: Sequence[tuple[float, float]] | None = None,
    tz: str = "UTC",
) -> go.BaseTraceType:
    """Disruption zones (and a zone being drawn) as filled outlines, one hover text each."""
    rings: list[Sequence[tuple[float, float]]] = []
    texts: list[str] = []
    for zone in zones:
        reason = reason_text(lang, zone.reason)
        hover = f"{zone.name or reason} · {reason}<br>{local_text(zone.starts_at, tz)} – {local_text(zone.ends_at, tz)}"
        for ring in zone.rings:
            rings.append(ring)
            texts.append(hover)
    if draft:
        rings.append(draft)
        texts.append(label(lang, "zones.draft"))
    lons, lats = _rings_xy(rings)
    # One hover text per vertex: plotly has no per-ring text on a single line trace.
    vertex_text = [t for ring, t in zip(rings, texts, strict=True) for t in [t] * (len(ring) + 1)][: len(lons)]
    return _scatter(
        backdrop,
        lon=lons,
        lat=lats,
        mode="lines",
        fill="toself",
        fillcolor="rgba(255,77,79,0.16)",
        line={"color": "#ff4d4f", "width": 2},
        name="zones",
        hoverinfo="text",
        text=vertex_text,
        visible=visible and bool(rings),
    )


def incidents_trace(
    incidents: Sequence[Incident], lang: str, backdrop: Backdrop, visible: bool = True
) -> go.BaseTraceType:
    placed = [i for i in incidents if i.open and i.lat is not None and i.lon is not None]
    sizes = [min(34.0, 11.0 + 3.0 * (max(i.affected_orders, 1) ** 0.35)) for i in placed]
    marker: dict[str, Any] = {
        "size": sizes,
        "color": [TIER_COLOURS.get(i.tier, MUTED) for i in placed],
        "opacity": 0.95,
    }
    if not backdrop.tiles:
        marker.update(symbol="diamond", line={"width": 1.5, "color": "#ffffff"})
    return _scatter(
        backdrop,
        lon=[i.lon for i in placed],
        lat=[i.lat for i in placed],
        mode="markers",
        marker=marker,
        customdata=[[i.incident_id, i.tier, i.affected_orders] for i in placed],
        text=[i.title for i in placed],
        hovertemplate=(
            f"<b>%{{customdata[1]}}</b> %{{text}}<br>{label(lang, 'incidents.affected_orders')}: "
            "%{customdata[2]:,}<extra></extra>"
        ),
        name="incidents",
        visible=visible,
    )


def highlight_trace(incidents: Sequence[Incident], selected: str | None, backdrop: Backdrop) -> go.BaseTraceType:
    chosen = next((i for i in incidents if i.incident_id == selected and i.lat is not None), None)
    rings = [
        tuple((lon, lat) for lat, lon in reversed(h3.cell_to_boundary(c))) for c in (chosen.cells if chosen else ())
    ]
    rings = [ring + ring[:1] for ring in rings]
    lons, lats = _rings_xy(rings)
    if chosen is not None:
        if lons:
            lons.append(None)
            lats.append(None)
        lons.append(chosen.lon)
        lats.append(chosen.lat)
    marker: dict[str, Any] = {"size": 30, "color": "rgba(0,0,0,0)"}
    if not backdrop.tiles:
        marker.update(symbol="circle-open", color=ACCENT, line={"width": 3, "color": ACCENT})
    return _scatter(
        backdrop,
        lon=lons,
        lat=lats,
        mode="lines+markers",
        line={"color": ACCENT, "width": 3},
        marker=marker,
        hoverinfo="skip",
        name="highlight",
        visible=chosen is not None,
    )


def route_trace(route: Route | None, backdrop: Backdrop) -> go.BaseTraceType:
    if route is None:
        return _scatter(backdrop, lon=[], lat=[], mode="lines+markers", name="route", visible=False)
    return _scatter(
        backdrop,
        lon=list(route.lons),
        lat=list(route.lats),
        mode="lines+markers+text",
        line={"color": "#e05dd3", "width": 3},
        marker={"size": 9, "color": "#e05dd3"},
        text=list(route.labels),
        textposition="top right",
        textfont={"color": TEXT, "size": 11},
        hoverinfo="text",
        name="route",
        visible=True,
    )


def _padded(bounds: tuple[float, float, float, float], pad: float = 0.08) -> tuple[float, float, float, float]:
    lon0, lat0, lon1, lat1 = bounds
    dx, dy = max(lon1 - lon0, 0.5) * pad, max(lat1 - lat0, 0.5) * pad
    return lon0 - dx, lat0 - dy, lon1 + dx, lat1 + dy


def _view_layout(scene: MapScene, backdrop: Backdrop) -> dict[str, Any]:
    lon0, lat0, lon1, lat1 = _padded(scene.focus) if scene.focus else CHINA_VIEW
    if backdrop.tiles:
        span = max(lon1 - lon0, (lat1 - lat0) * 1.3)
        # Web-mercator zoom showing ``span`` degrees across a ~900 px wide map.
        zoom = max(1.0, min(12.0, math.log2(360.0 * 900 / 512 / max(span, 0.01))))
        layers = [
            {
                "sourcetype": "raster",
                "source": [backdrop.tile_url],
                "below": "traces",
                "sourceattribution": backdrop.tile_attribution,
            }
        ]
        return {
            "map": {
                "style": "white-bg",
                "layers": layers,
                "zoom": round(zoom, 2),
                "center": {"lon": (lon0 + lon1) / 2, "lat": (lat0 + lat1) / 2},
                "uirevision": scene.view_key,
            }
        }
    return {
        "geo": {
            "visible": False,
            "bgcolor": SEA,
            "projection": {"type": "mercator"},
            "lonaxis": {"range": [lon0, lon1]},
            "lataxis": {"range": [lat0, lat1]},
            "showframe": False,
            "uirevision": scene.view_key,
        }
    }


def map_figure(basemap: Basemap, scene: MapScene, backdrop: Backdrop = Backdrop()) -> go.Figure:
    """The national map: base layers, hexagons or provinces, zones, incidents, selection, route."""
    hexes = scene.mode == "hex"
    traces = [
        countries_trace(basemap, backdrop),
        province_trace(basemap, scene.regions, scene, backdrop),
        hex_trace(scene.cells, scene.lang, backdrop, visible=hexes),
        zones_trace(scene.zones, scene.lang, backdrop, visible=scene.show_zones, draft=scene.draft, tz=scene.tz),
        incidents_trace(scene.incidents, scene.lang, backdrop, visible=scene.show_incidents),
        highlight_trace(scene.incidents, scene.selected_incident, backdrop),
        route_trace(scene.route, backdrop),
    ]
    figure = go.Figure(data=traces)
    figure.update_layout(
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        paper_bgcolor=SEA,
        plot_bgcolor=SEA,
        font={"family": FONT, "color": TEXT},
        showlegend=False,
        dragmode="pan",
        hoverlabel={"bgcolor": PANEL, "bordercolor": BORDER, "font": {"family": FONT, "color": TEXT}},
        uirevision="map",
        **_view_layout(scene, backdrop),
    )
    return figure
