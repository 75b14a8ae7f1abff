"""The page's static parts: prefecture areas, asset bundle, headers and the rendered HTML."""

from __future__ import annotations

import gzip
import math
import re
from pathlib import Path

import orjson
import pytest

from dashboard.tracking.areas import INDEX, SOURCE, STATIC_AREAS, area_index, build
from dashboard.tracking.assets import AssetBundle
from dashboard.tracking.basemap import mercator
from dashboard.tracking.headers import content_security_policy, page_headers, tile_origin
from dashboard.tracking.language import Lang
from dashboard.tracking.page import TileLayer, TrackingPage


def test_the_shipped_areas_are_current_and_small(shared_data: Path) -> None:
    source = shared_data / "boundaries" / "china" / SOURCE.name
    files, index = build(source.read_bytes())
    assert INDEX.read_bytes() == index, "run: python -m dashboard.tracking.areas"
    assert {p.name: p.read_bytes() for p in STATIC_AREAS.glob("*.json")} == files
    assert len(files) >= 31  # every mainland province-level unit at least
    # A page fetches the provinces in view: even the largest stays well inside the page budget.
    assert max(len(gzip.compress(body)) for body in files.values()) < 16_000


def test_area_paths_are_closed_svg_rings_inside_their_province_box() -> None:
    boxes = area_index().province_boxes
    for path in STATIC_AREAS.glob("*.json"):
        data = orjson.loads(path.read_bytes())
        x0, y0, x1, y1 = boxes[data["province"]]
        for area in data["areas"]:
            assert re.fullmatch(r"(M[-.\d]+ [-.\d]+l[-.\d ]+z)+", area["d"]), area["adcode"]
            first = re.match(r"M([-.\d]+) ([-.\d]+)", area["d"])
            assert first is not None
            assert x0 - 0.01 <= float(first.group(1)) <= x1 + 0.01 and y0 - 0.01 <= float(first.group(2)) <= y1 + 0.01


@pytest.mark.parametrize(
    ("lon", "lat", "seat"),
    [(120.16421, 30.25873, "杭州"), (121.47, 31.23, "上海"), (113.26, 23.13, "广州"), (122.1, 30.0, "舟山")],
)
def test_a_stop_becomes_its_citys_seat(lon: float, lat: float, seat: str) -> None:
    found = area_index().seat_of(lon, lat)
    assert found is not None and found.name == seat
    # The seat is the city's, kilometres from the stop: never the address.
    assert (found.lon, found.lat) != (lon, lat)


def test_no_seat_outside_china() -> None:
    assert area_index().seat_of(-46.63, -23.55) is None  # Sao Paulo (the Olist data)


def test_mercator_matches_slippy_map_tiles() -> None:
    # The slippy-map tile formula (OpenStreetMap wiki), written the other way round.
    lon, lat = 116.39, 39.91
    n = 2**10
    tile_x = int((lon + 180) / 360 * n)
    tile_y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    x, y = mercator(lon, lat)
    assert (int(x / 256 * n), int(y / 256 * n)) == (tile_x, tile_y) == (843, 387)


def test_assets_have_content_urls() -> None:
    bundle = AssetBundle.from_dir()
    urls = bundle.urls()
    assert {"tracking.js", "tracking.css", "areas-330000.json"} <= set(urls)
    assert all(name.startswith("areas-") for name in set(urls) - {"tracking.js", "tracking.css"})
    for name, url in urls.items():
        assert url == f"/t/assets/{bundle[name].digest}/{name}"
        assert gzip.decompress(bundle[name].gzip_body) == bundle[name].body


def test_csp_allows_only_our_scripts_and_sockets() -> None:
    csp = content_security_policy("track.example.com", ("https://tiles.example",))
    parts = dict(p.split(" ", 1) for p in csp.split("; "))
    assert parts["script-src"] == "'self'"
    assert parts["connect-src"] == "'self' ws://track.example.com wss://track.example.com"
    assert parts["img-src"] == "'self' data: https://tiles.example"
    assert parts["default-src"] == "'none'" and parts["frame-ancestors"] == "'none'"
    # A forged Host header is never echoed into the policy.
    assert "evil" not in content_security_policy("x; script-src evil.example")
    headers = page_headers("h:8080")
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"


def test_tile_origin() -> None:
    assert tile_origin("https://tiles.example:8443/{z}/{x}/{y}.png") == "https://tiles.example:8443"
    with pytest.raises(ValueError, match="absolute http"):
        tile_origin("/tiles/{z}/{x}/{y}.png")


def _page() -> TrackingPage:
    return TrackingPage(lambda token: False, tiles=TileLayer("https://t.example/{z}/{x}/{y}.png", "© T"))


@pytest.mark.parametrize(
    ("lang", "words"),
    [(Lang.ZH_CN, ["订单跟踪", "已下单", "派送中"]), (Lang.EN, ["Order tracking", "Ordered", "Out for delivery"])],
)
def test_rendered_page_is_in_the_chosen_language(lang: Lang, words: list[str]) -> None:
    html = _page().render(lang)
    assert f'<html lang="{lang.value}">' in html
    for w in words:
        assert w in html
    # Only external scripts (CSP: script-src 'self'); the config block is inert JSON.
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all('src="/t/assets/' in s or 'type="application/json"' in s for s in scripts)
    assert "style=" not in html
    for landmark in ("<header", "<main", "<nav", "<footer", 'aria-live="polite"'):
        assert landmark in html


def test_config_json_cannot_break_out_of_its_script_element() -> None:
    html = _page().render(Lang.EN)
    block = re.search(r'<script type="application/json" id="tracking-config">(.*?)</script>', html, re.S)
    assert block is not None
    config = orjson.loads(block.group(1))
    assert config["tiles"]["url"] == "https://t.example/{z}/{x}/{y}.png"
    assert config["ws_path"] == "/ws/track"
    assert "<" not in block.group(1)


def test_not_found_body_is_fixed_and_bilingual() -> None:
    body = _page().not_found_body.decode()
    assert "找不到此跟踪链接" in body and "This tracking link is not available" in body
    assert _page().not_found_body == _page().not_found_body
