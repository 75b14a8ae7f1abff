"""The national map: H3 hexagons coloured by delay rate or a province choropleth, incidents
and disruption zones on top; click a province to zoom in (hexagons get finer), click a
hexagon to list the orders seen in it, click an incident to select it.

A live update of the heatmap is drawn in the browser (``assets/warroom_views.js``:
``mapValues``): the hexagons' or provinces' colours and counts are replaced by a clientside
Patch, with no request to the server. The server draws the whole figure on the first render
and every change of view or mode, and a Patch of what moved when the set of cells changes (new
hexagons need their outline and place name), on a language switch and when incidents, alerts
or zones change. The province roll-up sums each cell's items by the province the server sent
for it (:func:`region_cells`, when the set of cells changes). The base map (hundreds of
kilobytes of boundaries) stays in the browser.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import h3
import pandas as pd
from dash import Dash, Input, Output, Patch, State, callback_context, dcc, html, no_update

from dashboard.warroom import ids, live, map_figures, theme, titles
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError, TimeWindow
from dashboard.warroom.i18n import label, normalise
from dashboard.warroom.localtime import localised
from dashboard.warroom.widgets import InBrowser, in_browser, muted, segmented, text

#: Hexagon resolution of the national view (~12,000 km2 cells) and of a province (~250 km2).
NATIONAL_RES = 3
PROVINCE_RES = 5
#: Resolution whose cells are assigned to provinces for the choropleth.
REGION_RES = 5
#: How far back "orders in this hexagon" looks.
CELL_ORDERS_SPAN = timedelta(hours=6)
CELL_ORDERS_SHOWN = 50


def layout(deps: WarroomDeps) -> html.Section:
    mode = segmented(ids.MAP_MODE, "hex", ("hex", "province"), "map.mode", "map-mode")
    layers = dcc.Checklist(
        id=ids.MAP_LAYERS,
        value=["incidents", "zones"],
        inline=True,
        className="layers",
        options=[
            {"label": text("map.layers.incidents", "map-layers"), "value": "incidents"},
            {"label": text("map.layers.zones", "map-layers"), "value": "zones"},
        ],
    )
    tools = [
        html.Span(id=ids.MAP_BREADCRUMB, className="breadcrumb"),
        html.Button(text("map.back", "map"), id=ids.MAP_BACK, className="btn btn-ghost", style={"display": "none"}),
        mode,
        layers,
        html.Button(text("map.draw", "map"), id=ids.MAP_DRAW, className="btn btn-ghost"),
    ]
    # The first callback run sends the real figure; the layout holds a blank so the base map
    # is not downloaded twice.
    graph = dcc.Graph(
        id=ids.MAP_GRAPH,
        figure=theme.blank(),
        className="map-graph",
        config={
            "displaylogo": False,
            "scrollZoom": True,
            "topojsonURL": f"{deps.prefix}assets/topojson/",
            "modeBarButtonsToRemove": ["toImage", "select2d", "sendDataToCloud", "hoverClosestGeo"],
        },
    )
    return html.Section(
        [
            html.Header(
                [html.H2(text("map.title", "map")), html.Div(tools, className="panel-tools")], className="panel-header"
            ),
            html.Div(muted(text("map.click_hint", "map")), className="hint"),
            graph,
            html.Div(id=ids.MAP_COVERAGE, className="map-coverage", role="status"),
            html.Div(id=ids.MAP_CELL_ORDERS, className="cell-orders"),
            dcc.Store(id=ids.MAP_VIEW, data={"province": None}),
            dcc.Store(id=ids.MAP_RENDERED),
            dcc.Store(id=ids.MAP_CELLS),
            dcc.Store(id=ids.MAP_REDRAW),
            dcc.Store(id=ids.MAP_OUTSIDE),
        ],
        className="panel panel-map",
    )


def province_codes(deps: WarroomDeps, cells: pd.DataFrame) -> list[str | None]:
    """Each cell's province: its own ``region`` when that is a province of the map, else the
    province of its centre (``None``: outside the map area)."""
    looked_up = deps.provinces_of_cells(list(cells["cell"]))
    areas = deps.basemap.province_areas
    return [
        r if isinstance(r, str) and r in areas else found for r, found in zip(cells["region"], looked_up, strict=True)
    ]


def with_places(deps: WarroomDeps, cells: pd.DataFrame, lang: str) -> pd.DataFrame:
    """``cells`` with a ``place`` column, the hexagon's tooltip title: the province's name, a
    country's name outside China (the boundary files name countries in English only)."""
    if cells.empty:
        return cells.assign(place=pd.Series(dtype="object"))
    areas, countries = deps.basemap.province_areas, deps.basemap.country_areas
    outside = [c for c, code in zip(cells["cell"], province_codes(deps, cells), strict=True) if code is None]
    country = dict(zip(outside, deps.countries_of_cells(outside), strict=True))
    places = []
    for cell, code in zip(cells["cell"], province_codes(deps, cells), strict=True):
        found = areas.get(code) if code else countries.get(country.get(cell) or "")
        places.append(found.name(lang) if found is not None else label(lang, "map.outside"))
    return cells.assign(place=places)


def _cells_in(deps: WarroomDeps, cells: pd.DataFrame, province: str) -> pd.DataFrame:
    if cells.empty:
        return cells
    return cells[[code == province for code in province_codes(deps, cells)]].reset_index(drop=True)


def region_cells(deps: WarroomDeps, heatmap: Any) -> dict[str, Any]:
    """The heatmap's cells the province roll-up uses (those at :data:`REGION_RES`, else the
    nearest finer resolution sent, as ``live.cells_frame`` chooses), those of them outside
    the map area, and each one's province as :func:`region_rollup` assigns it (the item's own
    ``region`` for its :data:`REGION_RES` parent, else the parent's centre). The browser sums
    the items with them (``warroom_views.js``: the coverage note, ``provinceValues``)."""
    found = live.items(heatmap)
    keys = [str(k) for k in found if h3.is_valid_cell(str(k))]
    present = sorted({h3.get_resolution(k) for k in keys})
    finer = [r for r in present if r >= REGION_RES]
    if not present:
        return {"cells": [], "outside": [], "province": {}}
    source = min(finer) if finer else max(present)
    cells = sorted(k for k in keys if h3.get_resolution(k) == source)
    codes = deps.provinces_of_cells(cells)
    areas = deps.basemap.province_areas
    parent = {c: h3.cell_to_parent(c, REGION_RES) if source > REGION_RES else c for c in cells}
    own: dict[str, str] = {}
    for key, item in found.items():  # in the store's order, as cells_frame's "first" region
        region = live.as_dict(item).get("region")
        if key in parent and isinstance(region, str) and region:
            own.setdefault(parent[key], region)
    parents = sorted(set(parent.values()))
    looked_up = dict(zip(parents, deps.provinces_of_cells(parents), strict=True))
    province = {c: own.get(parent[c]) or looked_up[parent[c]] for c in cells}
    return {
        "cells": cells,
        "outside": [c for c, code in zip(cells, codes, strict=True) if code not in areas],
        "province": {c: code for c, code in province.items() if code},
    }


def region_rollup(deps: WarroomDeps, heatmap: Any) -> pd.DataFrame:
    cells = live.cells_frame(heatmap, REGION_RES)
    if cells.empty:
        return live.regions_frame(cells, {})
    return live.regions_frame(
        cells, dict(zip(cells["cell"], deps.provinces_of_cells(list(cells["cell"])), strict=True))
    )


def scene_of(
    deps: WarroomDeps,
    *,
    heatmap: Any,
    mode: str,
    layers: list[str] | None,
    view: Any,
    selected: str | None,
    incident_store: Any,
    alert_store: Any,
    zone_store: Any,
    draft: Any,
    route: Any,
    lang: str,
    tz: str = "UTC",
) -> map_figures.MapScene:
    """Everything the map shows, from the live stores and the view (pure but for lookups)."""
    province = (view or {}).get("province")
    area = deps.basemap.province(province) if province else None
    if area is None:
        cells = live.cells_frame(heatmap, NATIONAL_RES)
    else:
        cells = _cells_in(deps, live.cells_frame(heatmap, PROVINCE_RES), area.code)
    cells = with_places(deps, cells, lang)
    draft_rings = live.geometry_rings((draft or {}).get("geometry"))
    return map_figures.MapScene(
        mode="province" if mode == "province" else "hex",
        lang=lang,
        cells=cells,
        regions=region_rollup(deps, heatmap) if mode == "province" else pd.DataFrame(),
        incidents=titles.named(live.incidents(incident_store, alert_store), deps.places, lang),
        zones=live.zones(zone_store),
        draft=draft_rings[0] if draft_rings else None,
        selected_incident=selected,
        route=map_figures.Route(tuple(route["lats"]), tuple(route["lons"]), tuple(route["labels"])) if route else None,
        focus=area.bounds if area else None,
        view_key=f"province-{area.code}" if area else "national",
        show_incidents="incidents" in (layers or []),
        show_zones="zones" in (layers or []),
        tz=tz,
    )


def _digest(cells: pd.DataFrame) -> str:
    return hashlib.blake2b("|".join(cells["cell"]).encode(), digest_size=12).hexdigest()


def render(
    deps: WarroomDeps, scene: map_figures.MapScene, rendered: dict[str, Any] | None
) -> tuple[Any, dict[str, Any]]:
    """The whole figure when the view or mode changed, else a Patch of what moved: colours
    (or the hexagon trace when its cells changed), words after a language switch, overlays."""
    frame = {"mode": scene.mode, "view": scene.view_key}
    cells_key = _digest(scene.cells)
    state = {"frame": frame, "lang": scene.lang, "cells": cells_key}
    if not rendered or rendered.get("frame") != frame:
        return map_figures.map_figure(deps.basemap, scene, deps.backdrop), state
    backdrop, patch = deps.backdrop, Patch()
    relabel = rendered.get("lang") != scene.lang
    if scene.mode == "province" or relabel:
        province = map_figures.province_trace(deps.basemap, scene.regions, scene, backdrop)
        target = patch["data"][map_figures.TRACE_PROVINCES]
        target["z"] = list(province.z)
        target["customdata"] = [list(row) for row in province.customdata]
        if relabel:
            target["text"] = list(province.text)
            target["hovertemplate"] = province.hovertemplate
            if scene.mode == "province":
                target["colorbar"] = province.colorbar.to_plotly_json()
    if relabel or rendered.get("cells") != cells_key:
        patch["data"][map_figures.TRACE_HEXES] = map_figures.hex_trace(
            scene.cells, scene.lang, backdrop, visible=scene.mode == "hex"
        ).to_plotly_json()
    elif scene.mode == "hex":
        values = map_figures.hex_values(scene.cells, scene.lang)
        patch["data"][map_figures.TRACE_HEXES]["z"] = values["z"]
        patch["data"][map_figures.TRACE_HEXES]["customdata"] = values["customdata"]
    overlays = {
        map_figures.TRACE_ZONES: map_figures.zones_trace(
            scene.zones, scene.lang, backdrop, scene.show_zones, scene.draft, scene.tz
        ),
        map_figures.TRACE_INCIDENTS: map_figures.incidents_trace(
            scene.incidents, scene.lang, backdrop, scene.show_incidents
        ),
        map_figures.TRACE_HIGHLIGHT: map_figures.highlight_trace(scene.incidents, scene.selected_incident, backdrop),
        map_figures.TRACE_ROUTE: map_figures.route_trace(scene.route, backdrop),
    }
    for index, trace in overlays.items():
        patch["data"][index] = trace.to_plotly_json()
    return patch, state


def _clicked(click: Any) -> dict[str, Any] | None:
    points = (click or {}).get("points") or []
    return points[0] if points else None


def cell_orders_table(frame: pd.DataFrame, cell: str, lang: str, tz: str = "UTC", place: str | None = None) -> html.Div:
    """Distinct orders seen in ``cell`` (newest first) as order links, under the cell's place name."""
    title = html.H3(f"{label(lang, 'map.cell_orders')} · {place or cell}", title=cell)
    if frame.empty:
        return html.Div([title, muted(label(lang, "map.no_data"))])
    rows = []
    frame = localised(frame, tz)
    for order_id, part in frame.groupby("order_id", sort=False):
        last = part.iloc[0]
        rows.append(
            html.Tr(
                [
                    html.Td(html.A(str(order_id), id=ids.order_link(str(order_id), "cell"), className="order-link")),
                    html.Td(label(lang, f"status.{last['status']}")),
                    html.Td(str(part["sku"].nunique())),
                    html.Td(last["time"].strftime("%m-%d %H:%M")),
                ]
            )
        )
        if len(rows) >= CELL_ORDERS_SHOWN:
            break
    head = html.Tr(
        [html.Th(label(lang, k)) for k in ("incidents.orders", "order.status", "order.sku", "order.event_time")]
    )
    return html.Div([title, html.Table([html.Thead(head), html.Tbody(rows)], className="table")])


def register(app: Dash, deps: WarroomDeps) -> None:
    # Named dependencies arrive as keywords: what update_map does not take itself is scene_of's
    # arguments, named once (cells and redraw only trigger; the heatmap store holds the cells).
    @app.callback(
        output=[Output(ids.MAP_GRAPH, "figure"), Output(ids.MAP_RENDERED, "data")],
        inputs={
            "cells": Input(ids.MAP_CELLS, "data"),
            "redraw": Input(ids.MAP_REDRAW, "data"),
            "mode": Input(ids.MAP_MODE, "value"),
            "layers": Input(ids.MAP_LAYERS, "value"),
            "view": Input(ids.MAP_VIEW, "data"),
            "selected": Input(ids.INCIDENT_SELECTED, "data"),
            "incident_store": Input(ids.live_store(live.INCIDENT), "data"),
            "alert_store": Input(ids.live_store(live.ALERT), "data"),
            "zone_store": Input(ids.live_store(live.DISRUPTION), "data"),
            "draft": Input(ids.ZONE_DRAFT, "data"),
            "route": Input(ids.ORDER_ROUTE, "data"),
            "lang": Input(ids.LANG, "data"),
        },
        state={
            "rendered": State(ids.MAP_RENDERED, "data"),
            "tz": State(ids.TIMEZONE, "data"),
            "heatmap": State(ids.live_store(live.HEATMAP), "data"),
        },
    )
    def update_map(
        cells: Any, redraw: Any, rendered: Any, lang: str | None, tz: str | None, **scene: Any
    ) -> tuple[Any, Any]:
        return render(deps, scene_of(deps, **scene, lang=normalise(lang), tz=tz or "UTC"), rendered)

    @app.callback(
        Output(ids.MAP_VIEW, "data"),
        Output(ids.INCIDENT_SELECTED, "data", allow_duplicate=True),
        Input(ids.MAP_GRAPH, "clickData"),
        Input(ids.MAP_BACK, "n_clicks"),
        State(ids.MAP_VIEW, "data"),
        prevent_initial_call=True,
    )
    def on_click(click: Any, _back: int | None, view: Any) -> tuple[Any, Any]:
        if callback_context.triggered_id == ids.MAP_BACK:
            return {"province": None}, no_update
        point = _clicked(click)
        if point is None:
            return no_update, no_update
        curve = point.get("curveNumber")
        if curve == map_figures.TRACE_INCIDENTS:
            return no_update, (point.get("customdata") or [None])[0]
        drilled = (view or {}).get("province")
        if curve == map_figures.TRACE_PROVINCES and not drilled:
            return {"province": point.get("location")}, no_update
        # a hexagon lists its orders (``cell_orders``), at every level
        return no_update, no_update

    @app.callback(
        Output(ids.MAP_BACK, "style"),
        Output(ids.MAP_BREADCRUMB, "children"),
        Input(ids.MAP_VIEW, "data"),
        Input(ids.LANG, "data"),
    )
    def breadcrumb(view: Any, lang: str | None) -> tuple[dict[str, str], str]:
        lang = normalise(lang)
        area = deps.basemap.province((view or {}).get("province") or "")
        if area is None:
            return {"display": "none"}, label(lang, "map.national")
        return {}, f"{label(lang, 'map.national')} › {area.name(lang)}"

    @app.callback(
        Output(ids.MAP_CELL_ORDERS, "children"),
        Input(ids.MAP_GRAPH, "clickData"),
        State(ids.MAP_VIEW, "data"),
        State(ids.LANG, "data"),
        State(ids.TIMEZONE, "data"),
        prevent_initial_call=True,
    )
    def cell_orders(click: Any, view: Any, lang: str | None, tz: str | None) -> Any:
        point = _clicked(click)
        if point is None or point.get("curveNumber") != map_figures.TRACE_HEXES:
            return no_update
        cell = str(point["location"])
        lats, lons = zip(*h3.cell_to_boundary(cell), strict=True)
        try:
            found = deps.history.positions(
                (min(lons), min(lats), max(lons), max(lats)), TimeWindow.last(CELL_ORDERS_SPAN, deps.clock())
            )
        except HistoryError:
            return muted(label(normalise(lang), "history.unavailable"))
        if not found.empty:
            res = h3.get_resolution(cell)
            inside = [h3.latlng_to_cell(la, lo, res) == cell for la, lo in zip(found["lat"], found["lon"], strict=True)]
            found = found[inside]
        lang = normalise(lang)
        place = with_places(deps, live.cells_frame({"items": {cell: {"cell": cell}}}), lang)["place"][0]
        return cell_orders_table(found, cell, lang, tz or "UTC", place)

    # A live heatmap update: new colours in the browser, or (new cells) a changed key that
    # makes the server's update_map draw it.
    live_heatmap = Input(ids.live_store(live.HEATMAP), "data")
    in_browser(
        app,
        [
            InBrowser(
                ("warroom_views", "mapValues"),
                [
                    Output(ids.MAP_GRAPH, "figure", allow_duplicate=True),
                    Output(ids.MAP_CELLS, "data"),
                    Output(ids.MAP_REDRAW, "data"),
                ],
                [live_heatmap],
                [
                    State(ids.MAP_MODE, "value"),
                    State(ids.MAP_GRAPH, "figure"),
                    State(ids.MAP_CELLS, "data"),
                    State(ids.MAP_OUTSIDE, "data"),
                ],
                prevent_initial_call="initial_duplicate",
            ),
            # The coverage note under the map.
            InBrowser(
                ("warroom_views", "coverage"),
                [Output(ids.MAP_COVERAGE, "children")],
                [
                    live_heatmap,
                    Input(ids.live_store(live.KPIS), "data"),
                    Input(ids.MAP_OUTSIDE, "data"),
                    Input(ids.LANG, "data"),
                ],
                [State(ids.I18N_TABLE, "data")],
            ),
        ],
    )

    @app.callback(
        Output(ids.MAP_OUTSIDE, "data"), Input(ids.MAP_CELLS, "data"), State(ids.live_store(live.HEATMAP), "data")
    )
    def outside(_cells: Any, heatmap: Any) -> dict[str, Any]:
        return region_cells(deps, heatmap)

    @app.callback(
        Output(ids.MAP_GRAPH, "figure", allow_duplicate=True),
        Input(ids.MAP_DRAW, "n_clicks"),
        Input(ids.MAP_GRAPH, "selectedData"),
        prevent_initial_call=True,
    )
    def drawing(_clicks: int | None, _selected: Any) -> Patch:
        # The draw button arms the lasso; a finished lasso (a zone draft) disarms it.
        patch = Patch()
        patch["layout"]["dragmode"] = "lasso" if callback_context.triggered_id == ids.MAP_DRAW else "pan"
        return patch
