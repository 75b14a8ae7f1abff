"""The live map: what a second's update sends (a Patch of colours, not the base map), and
the drill-down from the national view to one province's finer hexagons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h3
import pytest
from dash import Patch

from dashboard.warroom import live, map_figures
from dashboard.warroom.basemap import load_basemap
from dashboard.warroom.deps import WarroomDeps, country_lookup, province_lookup
from dashboard.warroom.history import InfluxHistory
from dashboard.warroom.panels import map as map_panel
from geo.regions import RegionIndex
from warroom.test_views_js import NODE, call, calls

HANGZHOU5 = h3.latlng_to_cell(30.27, 120.16, 5)
NINGBO5 = h3.latlng_to_cell(29.87, 121.54, 5)
BEIJING5 = h3.latlng_to_cell(39.9, 116.4, 5)
HANOI5 = h3.latlng_to_cell(21.03, 105.85, 5)
GUANGZHOU5 = h3.latlng_to_cell(23.13, 113.26, 5)


@pytest.fixture(scope="module")
def deps() -> Iterator[WarroomDeps]:
    history = InfluxHistory("http://127.0.0.1:9", "unused")  # the map never reads history here
    index = RegionIndex.load()
    yield WarroomDeps(
        basemap=load_basemap(), history=history, province_of=province_lookup(index), country_of=country_lookup(index)
    )
    history.close()


def heatmap(**late: int) -> dict[str, object]:
    cells = {"HANGZHOU5": HANGZHOU5, "NINGBO5": NINGBO5, "BEIJING5": BEIJING5}
    return {"seq": 1, "items": {cells[name]: {"cell": cells[name], "skus": 100, "late": n} for name, n in late.items()}}


def scene(
    deps: WarroomDeps, store: dict[str, object], mode: str = "hex", province: str | None = None, lang: str = "zh-CN"
) -> map_figures.MapScene:
    return map_panel.scene_of(
        deps,
        heatmap=store,
        mode=mode,
        layers=["incidents", "zones"],
        view={"province": province},
        selected=None,
        incident_store=None,
        alert_store=None,
        zone_store=None,
        draft=None,
        route=None,
        lang=lang,
    )


def operations(patch: Patch) -> dict[tuple[object, ...], Any]:
    return {tuple(op["location"]): op["params"]["value"] for op in patch.to_plotly_json()["operations"]}


def test_first_render_sends_the_whole_map_then_only_colours(deps: WarroomDeps) -> None:
    first, state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1, BEIJING5=2)), None)
    assert not isinstance(first, Patch) and len(first.data) == len(map_figures.MAP_TRACES)
    patch, state2 = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=30, BEIJING5=2)), state)
    assert isinstance(patch, Patch) and state2 == state
    ops = operations(patch)
    hexes = map_figures.TRACE_HEXES
    assert ("data", hexes, "z") in ops and ("data", hexes) not in ops
    assert sorted(ops[("data", hexes, "z")]) == [0.02, 0.3]
    # The base layers are never resent.
    assert not any(
        loc[:2] in (("data", map_figures.TRACE_COUNTRIES), ("data", map_figures.TRACE_PROVINCES)) for loc in ops
    )


def test_new_cells_replace_the_hexagon_trace(deps: WarroomDeps) -> None:
    _, state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1)), None)
    patch, _ = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1, BEIJING5=5)), state)
    assert isinstance(patch, Patch)
    trace = operations(patch)[("data", map_figures.TRACE_HEXES)]
    assert isinstance(trace, dict) and len(trace["locations"]) == 2


def test_a_language_switch_patches_words_not_the_base_map(deps: WarroomDeps) -> None:
    _, state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1)), None)
    patch, new_state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1), lang="en"), state)
    assert isinstance(patch, Patch) and new_state["lang"] == "en"
    ops = operations(patch)
    names = ops[("data", map_figures.TRACE_PROVINCES, "text")]
    assert names[list(deps.basemap.province_areas).index("330000")] == "Zhejiang"
    hexes = ops[("data", map_figures.TRACE_HEXES)]
    assert isinstance(hexes, dict) and hexes["colorbar"]["title"]["text"] == "Delay rate"
    assert not any(loc[:2] == ("data", map_figures.TRACE_COUNTRIES) for loc in ops)
    whole, _ = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1), province="330000"), state)
    assert not isinstance(whole, Patch)


def test_province_mode_patches_province_colours(deps: WarroomDeps) -> None:
    _, state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=10), mode="province"), None)
    patch, _ = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=50), mode="province"), state)
    assert isinstance(patch, Patch)
    z = operations(patch)[("data", map_figures.TRACE_PROVINCES, "z")]
    codes = list(deps.basemap.province_areas)
    assert z[codes.index("330000")] == pytest.approx(0.5) and z[codes.index("110000")] == 0.0


def test_drilling_into_a_province_shows_its_finer_cells_only(deps: WarroomDeps) -> None:
    store = heatmap(HANGZHOU5=10, NINGBO5=20, BEIJING5=30)
    national = scene(deps, store)
    assert set(national.cells["cell"]) == {
        h3.cell_to_parent(c, map_panel.NATIONAL_RES) for c in (HANGZHOU5, NINGBO5, BEIJING5)
    }
    zhejiang = scene(deps, store, province="330000")
    assert set(zhejiang.cells["cell"]) == {HANGZHOU5, NINGBO5}
    assert zhejiang.focus == deps.basemap.province_areas["330000"].bounds
    assert zhejiang.view_key == "province-330000"


def test_a_hexagon_outside_china_is_named_by_its_country(deps: WarroomDeps) -> None:
    store = {"items": {c: {"cell": c, "skus": 10, "late": 1} for c in (HANOI5, HANGZHOU5)}}
    places: dict[str, str] = dict(
        zip(
            *(map_panel.with_places(deps, live.cells_frame(store, 5), "en")[k] for k in ("cell", "place")),
            strict=True,
        )
    )
    assert places == {HANOI5: "Vietnam", HANGZHOU5: "Zhejiang"}
    zh = map_panel.with_places(deps, live.cells_frame(store, 5), "zh-CN")
    assert dict(zip(zh["cell"], zh["place"], strict=True)) == {HANOI5: "越南", HANGZHOU5: "浙江"}
    sea = h3.latlng_to_cell(10.0, 150.0, 5)  # the open Pacific: no country
    frame = map_panel.with_places(deps, live.cells_frame({"items": {sea: {"cell": sea, "skus": 1}}}, 5), "zh-CN")
    assert list(frame["place"]) == ["地图范围外"]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_browser_rolls_provinces_up_as_the_server_draws_them(deps: WarroomDeps) -> None:
    """``provinceValues`` in node, with the province table the server sends, against the
    server's own first figure and its Patch for the next update (same fixture, same numbers)."""
    hangzhou7 = h3.latlng_to_cell(30.27, 120.16, 7)
    ningbo6 = h3.latlng_to_cell(29.87, 121.54, 6)
    items: dict[str, dict[str, object]] = {
        HANGZHOU5: {"cell": HANGZHOU5, "skus": 16, "late": 1},
        NINGBO5: {"cell": NINGBO5, "skus": 7, "at_risk": 2, "stalled": 1.9},
        BEIJING5: {"cell": BEIJING5, "skus": 16, "late": 1},  # 6.25%: a tie, rounded half up
        GUANGZHOU5: {"cell": GUANGZHOU5, "skus": 0, "late": 3},  # no SKUs: rate 0
        HANOI5: {"cell": HANOI5, "skus": 50, "late": 50},  # outside the map area
        h3.cell_to_parent(HANGZHOU5, 3): {"skus": 999, "late": 999},  # another resolution
        h3.cell_to_parent(BEIJING5, 4): {"skus": 999, "late": 999},
        hangzhou7: {"skus": 999},
        ningbo6: {"skus": 999},
    }
    shanghai = h3.latlng_to_cell(31.23, 121.47, 5)
    items[shanghai] = {"cell": shanghai, "skus": 9, "late": 2, "region": "330000"}  # its own region wins
    first_store = {"seq": 1, "items": items}
    next_store = {"seq": 2, "items": {**items, NINGBO5: {"cell": NINGBO5, "skus": 7, "late": 7}}}
    figure, state = map_panel.render(deps, scene(deps, first_store, mode="province"), None)
    patch, _ = map_panel.render(deps, scene(deps, next_store, mode="province"), state)
    assert isinstance(patch, Patch)
    drawn = figure.data[map_figures.TRACE_PROVINCES]
    trace = {"name": "provinces", "locations": list(drawn.locations)}
    region = map_panel.region_cells(deps, first_store)
    first, updated = calls(
        ("provinceValues", [trace, first_store, region]), ("provinceValues", [trace, next_store, region])
    )
    assert first == {"z": list(drawn.z), "customdata": [list(row) for row in drawn.customdata]}
    ops = operations(patch)
    assert updated == {
        "z": ops[("data", map_figures.TRACE_PROVINCES, "z")],
        "customdata": ops[("data", map_figures.TRACE_PROVINCES, "customdata")],
    }
    codes = list(deps.basemap.province_areas)
    assert first["customdata"][codes.index("330000")] == [16 + 7 + 9, 2, 1 + 2, 1, "18.8%"]
    assert first["customdata"][codes.index("110000")] == [16, 0, 1, 0, "6.3%"]
    assert first["customdata"][codes.index("440000")] == [0, 0, 3, 0, "0.0%"]
    assert first["customdata"][codes.index("450000")] == [0, 0, 0, 0, "–"]  # Guangxi: no cell
    assert updated["customdata"][codes.index("330000")] == [32, 0, 1 + 7 + 2, 0, "31.3%"]  # 31.25%
    assert call("provinceValues", trace, first_store, None) is None  # no table yet: the server draws
