"""Prefecture-level areas for the tracking map: outlines for the page, seats for the gateway.

Built once from the shared boundary data (ECharts' ``china-cities``, 367 prefecture-level
units; see ``/work/shared/data/README.md`` 1.2) by ``python -m dashboard.tracking.areas``:

- ``static/areas/<province adcode>.json``: the province's prefectures as SVG paths in the
  page's Web Mercator world units (:mod:`dashboard.tracking.basemap`), each with its name at
  its seat. The page fetches only the provinces in view, so a parcel in Hangzhou costs
  Zhejiang's file (a few KB), never the whole country.
- ``area_index.json``: per prefecture its province, name, seat (``cp``) and simplified
  lon/lat outline, plus each province's box in world units. The gateway uses it to turn a
  destination into the seat of the prefecture it lies in (:func:`AreaIndex.seat_of`):
  the customer sees the city, never the address. The page gets the province boxes.

A test checks the shipped files are current when the source data is at hand.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from shapely.strtree import STRtree

from dashboard.tracking.basemap import DECIMALS, mercator, polygons, ring_path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "shared" / "data" / "boundaries" / "china" / "china_prefectures_simplified.geojson"
STATIC_AREAS = HERE / "static" / "areas"
INDEX = HERE / "area_index.json"
#: Outline tolerance in degrees (~2 km): a street-level view is tiles' job; these only say
#: which city the parcel is in.
TOLERANCE_DEG = 0.02
#: The lookup outlines: coarser still (~5 km, 2 decimals), as only the city is wanted; a point
#: just outside every outline (coast, simplification) takes the nearest within ~5 km.
INDEX_TOLERANCE_DEG = 0.05
INDEX_DECIMALS = 2


def _province_of(props: dict[str, Any]) -> str:
    return str(props.get("province_adcode") or str(props["adcode"])[:2] + "0000")


def build(geojson: bytes, tolerance_deg: float = TOLERANCE_DEG) -> tuple[dict[str, bytes], bytes]:
    """The per-province page files (by file name) and the index, as bytes."""
    features = orjson.loads(geojson)["features"]
    geometries = [shape(f["geometry"]).buffer(0) for f in features]
    simplified = shapely.coverage_simplify(geometries, tolerance_deg)
    coarse = shapely.coverage_simplify(geometries, INDEX_TOLERANCE_DEG)
    min_area = tolerance_deg * tolerance_deg
    by_province: dict[str, list[dict[str, Any]]] = {}
    seats: list[list[Any]] = []
    boxes: dict[str, list[float]] = {}
    for feature, geometry, rough in zip(features, simplified, coarse, strict=True):
        props = feature["properties"]
        province = _province_of(props)
        parts = [p for p in polygons(geometry) if p.area >= min_area] or list(polygons(geometry))
        d = "".join(r for r in (ring_path(list(p.exterior.coords)) for p in parts) if r)
        if not d:
            continue
        largest = max(parts, key=lambda p: p.area)
        cp = props.get("cp") or [largest.representative_point().x, largest.representative_point().y]
        lx, ly = mercator(float(cp[0]), float(cp[1]))  # named at its seat, where the parcels go
        by_province.setdefault(province, []).append(
            {
                "adcode": str(props["adcode"]),
                "name": props["name"],
                "label": [round(lx, DECIMALS), round(ly, DECIMALS)],
                "d": d,
            }
        )
        rings = [
            [[round(x, INDEX_DECIMALS), round(y, INDEX_DECIMALS)] for x, y in p.exterior.coords]
            for p in polygons(rough)
            if p.area >= min_area
        ] or [[[round(x, INDEX_DECIMALS), round(y, INDEX_DECIMALS)] for x, y in largest.exterior.coords]]
        seats.append(
            [str(props["adcode"]), province, props["name"], round(float(cp[0]), 4), round(float(cp[1]), 4), rings]
        )
        x0, y1 = mercator(geometry.bounds[0], geometry.bounds[1])
        x1, y0 = mercator(geometry.bounds[2], geometry.bounds[3])
        box = boxes.get(province)
        boxes[province] = [
            round(v, DECIMALS)
            for v in (
                [x0, y0, x1, y1]
                if box is None
                else [min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1)]
            )
        ]
    files = {
        f"{province}.json": orjson.dumps({"province": province, "areas": areas}, option=orjson.OPT_APPEND_NEWLINE)
        for province, areas in sorted(by_province.items())
    }
    index = orjson.dumps(
        {"tolerance_deg": tolerance_deg, "provinces": dict(sorted(boxes.items())), "seats": seats},
        option=orjson.OPT_APPEND_NEWLINE,
    )
    return files, index


@dataclass(frozen=True)
class Seat:
    adcode: str
    province: str
    name: str
    lon: float
    lat: float


class AreaIndex:
    """Which prefecture a point lies in (``area_index.json``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.province_boxes: dict[str, list[float]] = data["provinces"]
        self.seats = [Seat(s[0], s[1], s[2], s[3], s[4]) for s in data["seats"]]
        self._tree = STRtree([MultiPolygon([Polygon(r) for r in s[5]]).buffer(0) for s in data["seats"]])

    def seat_of(self, lon: float, lat: float) -> Seat | None:
        """The seat of the prefecture containing the point (``None`` outside them all)."""
        hits = self._tree.query(Point(lon, lat), predicate="within")
        if not len(hits):
            hits = self._tree.query(Point(lon, lat), predicate="dwithin", distance=0.05)  # coast, simplification
        return self.seats[int(min(hits))] if len(hits) else None


@lru_cache(maxsize=1)
def area_index(path: Path = INDEX) -> AreaIndex:
    return AreaIndex(orjson.loads(path.read_bytes()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="regenerate the tracking map's prefecture areas")
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args(argv)
    files, index = build(args.source.read_bytes())
    STATIC_AREAS.mkdir(parents=True, exist_ok=True)
    for old in STATIC_AREAS.glob("*.json"):
        if old.name not in files:
            old.unlink()
    for name, body in files.items():
        (STATIC_AREAS / name).write_bytes(body)
    INDEX.write_bytes(index)
    total = sum(len(b) for b in files.values())
    print(f"wrote {len(files)} province files ({total} bytes) and {INDEX} ({len(index)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
