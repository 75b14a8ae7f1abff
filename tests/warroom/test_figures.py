"""Figure builders: data in, plotly figures out (no browser, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import h3
import pandas as pd
import plotly.graph_objects as go
import pytest
import shapely

from dashboard.warroom import charts, live, map_figures, theme
from dashboard.warroom.basemap import CHINA_VIEW, Basemap, load_basemap
from dashboard.warroom.i18n import both

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
HANGZHOU = (30.27, 120.16)
SQUARE = ((120.0, 30.0), (121.0, 30.0), (121.0, 31.0), (120.0, 31.0), (120.0, 30.0))


@pytest.fixture(scope="module")
def basemap() -> Basemap:
    return load_basemap()


def heatmap_store(cells: dict[str, tuple[int, int, int, int]]) -> dict[str, object]:
    """``{cell: (skus, at_risk, late, stalled)}`` as the live store holds it."""
    return {
        "seq": 1,
        "items": {
            c: {"cell": c, "skus": s, "at_risk": a, "late": lt, "stalled": st} for c, (s, a, lt, st) in cells.items()
        },
    }


def incident(
    incident_id: str = "i-1",
    state: str = "open",
    tier: str = "P2",
    lat: float | None = 30.3,
    lon: float | None = 120.2,
    cells: tuple[str, ...] = (),
    orders: int = 40,
) -> live.Incident:
    return live.Incident(
        incident_id=incident_id,
        kind="hub_stall",
        state=state,
        title=f"hub={incident_id}",
        root_cause=f"hub={incident_id}",
        tier=tier,
        owner=None,
        affected_orders=orders,
        affected_skus=orders * 2,
        trend=(1, 3, 8),
        direction="up",
        opened_at=T0.isoformat(),
        lat=lat,
        lon=lon,
        cells=cells,
        sample_orders=("o-1", "o-2"),
    )


def zone(rings: tuple[tuple[tuple[float, float], ...], ...]) -> live.Zone:
    return live.Zone(
        zone_id="dz-1",
        name="Typhoon Haikui",
        reason="typhoon",
        starts_at=T0.isoformat(),
        ends_at=(T0 + timedelta(hours=6)).isoformat(),
        created_by="alice",
        rings=rings,
        regions=(),
        affected_orders=None,
    )


# Hexagons ----------------------------------------------------------------------------------


def test_hex_geojson_rings_are_closed_and_clockwise_for_d3() -> None:
    cell = h3.latlng_to_cell(*HANGZHOU, 5)
    feature = map_figures.hex_geojson([cell])["features"][0]
    ring = feature["geometry"]["coordinates"][0]
    assert feature["id"] == cell
    assert ring[0] == ring[-1] and len(ring) == 7
    # d3-geo fills the inside of a clockwise ring; a counter-clockwise one would fill the globe.
    assert not shapely.LinearRing(ring).is_ccw
    centre = shapely.Polygon(ring).centroid
    assert centre.distance(shapely.Point(HANGZHOU[1], HANGZHOU[0])) < 0.1


def test_hex_values_colour_by_delay_rate_not_density() -> None:
    busy, quiet = h3.latlng_to_cell(30.27, 120.16, 5), h3.latlng_to_cell(39.9, 116.4, 5)
    cells = live.cells_frame(heatmap_store({busy: (1000, 10, 0, 0), quiet: (10, 2, 2, 1)}))
    values = map_figures.hex_values(cells, "en")
    rates = dict(zip(values["locations"], values["z"], strict=True))
    assert rates[busy] == pytest.approx(0.01)
    assert rates[quiet] == pytest.approx(0.5)
    assert values["customdata"][values["locations"].index(quiet)][:4] == [10, 2, 2, 1]


# The map --------------------------------------------------------------------------------------


def test_map_has_fixed_trace_order_and_needs_no_tile_server(basemap: Basemap) -> None:
    cell = h3.latlng_to_cell(*HANGZHOU, 3)
    scene = map_figures.MapScene(
        cells=live.cells_frame(heatmap_store({cell: (50, 5, 5, 0)})), incidents=[incident()], zones=[zone((SQUARE,))]
    )
    figure = map_figures.map_figure(basemap, scene)
    assert [t.name for t in figure.data] == list(map_figures.MAP_TRACES)
    assert all(isinstance(t, go.Choropleth | go.Scattergeo) for t in figure.data)
    assert figure.layout.geo.visible is False  # plotly's own base layers would fetch topojson
    assert list(figure.layout.geo.lonaxis.range) == [CHINA_VIEW[0], CHINA_VIEW[2]]
    hexes = figure.data[map_figures.TRACE_HEXES]
    assert list(hexes.locations) == [cell] and hexes.zmax == theme.DELAY_MAX
    assert len(figure.data[map_figures.TRACE_PROVINCES].locations) == 34
    assert figure.data[map_figures.TRACE_ZONES].fill == "toself" and figure.data[map_figures.TRACE_ZONES].visible


def test_map_uses_tiles_when_a_tile_url_is_configured(basemap: Basemap) -> None:
    backdrop = map_figures.Backdrop(tile_url="https://tiles.example/{z}/{x}/{y}.png", tile_attribution="© example")
    figure = map_figures.map_figure(basemap, map_figures.MapScene(), backdrop)
    assert all(isinstance(t, go.Choroplethmap | go.Scattermap) for t in figure.data)
    assert figure.layout.map.style == "white-bg"
    layer = figure.layout.map.layers[0]
    assert layer.sourcetype == "raster" and list(layer.source) == [backdrop.tile_url]


def test_drilled_view_frames_the_province_and_resets_zoom(basemap: Basemap) -> None:
    zhejiang = basemap.province("330000")
    assert zhejiang is not None
    figure = map_figures.map_figure(basemap, map_figures.MapScene(focus=zhejiang.bounds, view_key="province-330000"))
    lon0, lon1 = figure.layout.geo.lonaxis.range
    assert lon0 < zhejiang.bounds[0] < zhejiang.bounds[2] < lon1 and lon1 - lon0 < 10
    assert figure.layout.geo.uirevision == "province-330000"


def test_province_mode_colours_provinces_by_delay_rate(basemap: Basemap) -> None:
    regions = pd.DataFrame(
        {"code": ["330000"], "skus": [100], "at_risk": [10], "late": [10], "stalled": [0], "delay_rate": [0.2]}
    )
    coloured = map_figures.province_trace(
        basemap, regions, map_figures.MapScene(mode="province", lang="zh-CN"), map_figures.Backdrop()
    )
    plain = map_figures.province_trace(basemap, regions, map_figures.MapScene(mode="hex"), map_figures.Backdrop())
    index = list(coloured.locations).index("330000")
    assert coloured.z[index] == pytest.approx(0.2) and coloured.showscale
    assert coloured.text[index] == "浙江"
    assert not plain.showscale and plain.colorscale[0][1] == plain.colorscale[-1][1]  # one flat land colour


def test_only_open_incidents_with_a_position_are_drawn() -> None:
    trace = map_figures.incidents_trace(
        [incident("a"), incident("b", state="resolved"), incident("c", lat=None, lon=None)],
        "en",
        map_figures.Backdrop(),
    )
    assert [row[0] for row in trace.customdata] == ["a"]
    assert trace.marker.color[0] == theme.TIER_COLOURS["P2"]


def test_selected_incident_is_highlighted_with_its_cells() -> None:
    cells = (h3.latlng_to_cell(30.3, 120.2, 5),)
    shown = map_figures.highlight_trace([incident("a", cells=cells)], "a", map_figures.Backdrop())
    hidden = map_figures.highlight_trace([incident("a", cells=cells)], None, map_figures.Backdrop())
    assert shown.visible is True and hidden.visible is False
    assert list(shown.lon).count(None) == 1 and shown.lon[-1] == 120.2  # ring, gap, marker


def test_zone_hover_text_follows_its_ring_and_the_viewer_zone() -> None:
    trace = map_figures.zones_trace(
        [zone((SQUARE, SQUARE))], "zh-CN", map_figures.Backdrop(), draft=SQUARE, tz="Asia/Shanghai"
    )
    assert len(trace.text) == len(trace.lon) == 3 * 5 + 2
    assert "台风" in trace.text[0] and "10:00" in trace.text[0]  # 02:00 UTC is 10:00 in Shanghai
    assert trace.text[-1] == both("zones.draft")[0]


# Charts ---------------------------------------------------------------------------------------


def test_sparkline_is_a_bare_line() -> None:
    figure = charts.sparkline([1, 2, None, 4])
    assert list(figure.data[0].y) == [1, 2, None, 4]
    assert figure.layout.xaxis.visible is False and figure.layout.height == 36


def test_throughput_stacks_statuses_in_the_viewer_zone() -> None:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([T0, T0, T0 + timedelta(minutes=1)], utc=True),
            "status": ["paid", "picked", "paid"],
            "events": [5.0, 3.0, 7.0],
        }
    )
    figure = charts.throughput_figure(frame, "zh-CN", tz="Asia/Shanghai")
    assert [t.name for t in figure.data] == [both("status.paid")[0], both("status.picked")[0]]
    assert {t.stackgroup for t in figure.data} == {"events"}
    assert pd.Timestamp(figure.data[0].x[0]).hour == 10


def test_delay_rate_keeps_the_busiest_series_with_names() -> None:
    rows = [(T0, f"{r}0000", skus, 0.1 * i) for i, (r, skus) in enumerate([(11, 500), (31, 900), (65, 10)])]
    frame = pd.DataFrame(rows, columns=["time", "region", "skus", "delay_rate"])
    figure = charts.delay_rate_figure(frame, "region", "en", names={"310000": "Shanghai"}, top=2)
    assert [t.name for t in figure.data] == ["Shanghai", "110000"]
    assert figure.layout.yaxis.tickformat == ".0%"


def test_dwell_heatmap_shows_minutes_worst_node_on_top() -> None:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([T0, T0], utc=True),
            "node": ["HZ-1", "BJ-1"],
            "count": [3, 4],
            "dwell_s": [600.0, 3000.0],
        }
    )
    heat = charts.dwell_heatmap(frame, "en").data[0]
    assert list(heat.y) == ["HZ-1", "BJ-1"]  # plotly draws the last row on top
    assert heat.z[1][0] == pytest.approx(50.0) and heat.z[0][0] == pytest.approx(10.0)


@pytest.mark.parametrize(
    "builder",
    [
        lambda lang: charts.throughput_figure(pd.DataFrame(), lang),
        lambda lang: charts.delay_rate_figure(pd.DataFrame(), "carrier", lang),
        lambda lang: charts.dwell_heatmap(pd.DataFrame(), lang),
    ],
)
def test_empty_history_says_so(builder: object) -> None:
    figure = builder("en")  # type: ignore[operator]
    assert figure.data == () and both("history.no_data")[1] in figure.layout.annotations[0].text


def test_order_timeline_has_a_lane_per_sku_and_marks_outcomes() -> None:
    events = pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4"],
            "sku": ["A", "A", "B", "B"],
            "status": ["paid", "picked", "paid", "delivered"],
            "event_time": pd.to_datetime([T0 + timedelta(minutes=i) for i in range(4)], utc=True),
            "outcome": ["accepted", "late", "accepted", "rejected"],
            "detail": ["", "", "", "not after paid"],
            "lat": [None] * 4,
            "lon": [None] * 4,
        }
    )
    figure = charts.order_timeline(events, "en")
    by_name = {t.name: t for t in figure.data if t.name}
    assert set(by_name) == {both("order.accepted")[1], both("order.late")[1], both("order.rejected")[1]}
    rejected = by_name[both("order.rejected")[1]]
    assert list(rejected.y) == ["B"] and rejected.marker.symbol == "x"
    assert rejected.customdata[0][1] == "not after paid"
    assert figure.layout.yaxis.type == "category"


def test_order_timeline_gives_a_lone_event_an_hour_of_context() -> None:
    events = pd.DataFrame(
        {
            "event_id": ["e1"],
            "sku": ["A"],
            "status": ["paid"],
            "event_time": pd.to_datetime([T0], utc=True),
            "outcome": ["accepted"],
            "detail": [""],
            "lat": [None],
            "lon": [None],
        }
    )
    start, end = (pd.Timestamp(v) for v in charts.order_timeline(events, "en").layout.xaxis.range)
    assert end - start == pd.Timedelta(hours=1)
