"""The live map: what a second's update sends (a Patch of colours, not the base map), and
the drill-down from the national view to one province's finer hexagons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h3
import pytest
from dash import Patch

from dashboard.warroom import figures, live
from dashboard.warroom.basemap import load_basemap
from dashboard.warroom.deps import WarroomDeps, country_lookup, province_lookup
from dashboard.warroom.history import InfluxHistory
from dashboard.warroom.panels import map as map_panel
from geo.regions import RegionIndex

HANGZHOU5 = h3.latlng_to_cell(30.27, 120.16, 5)
NINGBO5 = h3.latlng_to_cell(29.87, 121.54, 5)
BEIJING5 = h3.latlng_to_cell(39.9, 116.4, 5)
HANOI5 = h3.latlng_to_cell(21.03, 105.85, 5)


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
) -> figures.MapScene:
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
    assert not isinstance(first, Patch) and len(first.data) == len(figures.MAP_TRACES)
    patch, state2 = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=30, BEIJING5=2)), state)
    assert isinstance(patch, Patch) and state2 == state
    ops = operations(patch)
    hexes = figures.TRACE_HEXES
    assert ("data", hexes, "z") in ops and ("data", hexes) not in ops
    assert sorted(ops[("data", hexes, "z")]) == [0.02, 0.3]
    # The base layers are never resent.
    assert not any(loc[:2] in (("data", figures.TRACE_COUNTRIES), ("data", figures.TRACE_PROVINCES)) for loc in ops)


def test_new_cells_replace_the_hexagon_trace(deps: WarroomDeps) -> None:
    _, state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1)), None)
    patch, _ = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1, BEIJING5=5)), state)
    assert isinstance(patch, Patch)
    trace = operations(patch)[("data", figures.TRACE_HEXES)]
    assert isinstance(trace, dict) and len(trace["locations"]) == 2


def test_a_language_switch_patches_words_not_the_base_map(deps: WarroomDeps) -> None:
    _, state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1)), None)
    patch, new_state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1), lang="en"), state)
    assert isinstance(patch, Patch) and new_state["lang"] == "en"
    ops = operations(patch)
    names = ops[("data", figures.TRACE_PROVINCES, "text")]
    assert names[list(deps.basemap.province_areas).index("330000")] == "Zhejiang"
    hexes = ops[("data", figures.TRACE_HEXES)]
    assert isinstance(hexes, dict) and hexes["colorbar"]["title"]["text"] == "Delay rate"
    assert not any(loc[:2] == ("data", figures.TRACE_COUNTRIES) for loc in ops)
    whole, _ = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=1), province="330000"), state)
    assert not isinstance(whole, Patch)


def test_province_mode_patches_province_colours(deps: WarroomDeps) -> None:
    _, state = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=10), mode="province"), None)
    patch, _ = map_panel.render(deps, scene(deps, heatmap(HANGZHOU5=50), mode="province"), state)
    assert isinstance(patch, Patch)
    z = operations(patch)[("data", figures.TRACE_PROVINCES, "z")]
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
