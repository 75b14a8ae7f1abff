"""The war-room's base map, built from the boundary files shipped in ``geo/data``.

No tile server is needed: provinces and countries are drawn as plotly geo traces from these
GeoJSON files. They are simplified once, at app creation, to what a national screen can show
(full-resolution coastlines would make every live redraw re-project a megabyte of vertices),
and keep only what the figures need: an id, the zh and en names, bounds and a label point.

Reads the files; never modifies them. Build once with :func:`load_basemap` and pass it down.
"""

from __future__ import annotations

import gettext
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pycountry
import shapely

from geo.regions import CHINA_PROVINCES_FILE, DATA_DIR, WORLD_COUNTRIES_FILE, read_boundaries

#: Douglas-Peucker tolerances in degrees (0.02 deg is about 2 km, invisible at province scale).
PROVINCE_TOLERANCE_DEG = 0.02
COUNTRY_TOLERANCE_DEG = 0.1
#: Islands smaller than this (deg^2) vanish from the world layer: they are sub-pixel at
#: national zoom and make up most of its vertices.
MIN_COUNTRY_PART_AREA = 0.05
#: The default national view (lon_min, lat_min, lon_max, lat_max): mainland China and its coasts.
CHINA_VIEW = (73.0, 17.5, 135.5, 54.0)


@dataclass(frozen=True)
class Area:
    """One drawable region: a province (``code`` = adcode) or a country (ISO numeric or name)."""

    code: str
    name_zh: str
    name_en: str
    #: (lon_min, lat_min, lon_max, lat_max)
    bounds: tuple[float, float, float, float]
    #: A point inside the area, for labels and markers (lon, lat).
    label_point: tuple[float, float]

    def name(self, lang: str) -> str:
        return self.name_zh if lang.startswith("zh") else self.name_en


@dataclass(frozen=True)
class Basemap:
    """Simplified boundary layers as GeoJSON FeatureCollections whose feature ``id`` is the code."""

    provinces: dict[str, Any]
    countries: dict[str, Any]
    province_areas: dict[str, Area]
    country_areas: dict[str, Area]

    def province(self, code: str) -> Area | None:
        return self.province_areas.get(code)


def _simplified(geometry: Any, tolerance: float, min_part_area: float) -> Any:
    """Simplified polygon parts (tiny islands dropped), or ``None`` if nothing drawable is left."""
    simple = shapely.set_precision(shapely.simplify(geometry, tolerance, preserve_topology=True), 0.001)
    parts = [p for p in shapely.get_parts(simple) if p.geom_type == "Polygon" and not p.is_empty and p.area > 0]
    big = [p for p in parts if p.area >= min_part_area]
    # A small country is kept whole rather than vanishing.
    kept = big or parts
    return shapely.multipolygons(kept) if kept else None


def _layer(
    path: Path, code_of: Any, names_of: Any, tolerance: float, min_part_area: float
) -> tuple[dict[str, Any], dict[str, Area]]:
    features: list[dict[str, Any]] = []
    areas: dict[str, Area] = {}
    # A missing file, feature or property raises geo.regions.BoundaryFileError.
    for (code, name_zh, name_en), geometry in read_boundaries(path, lambda p: (str(code_of(p)), *names_of(p))):
        simple = _simplified(geometry, tolerance, min_part_area)
        if simple is None:
            continue  # sub-pixel at this scale (a reef, an atoll)
        point = shapely.point_on_surface(geometry)
        areas[code] = Area(
            code,
            str(name_zh),
            str(name_en),
            tuple(round(float(v), 4) for v in shapely.bounds(geometry)),  # type: ignore[arg-type]
            (round(point.x, 4), round(point.y, 4)),
        )
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": {"name": str(name_zh)},
                "geometry": json.loads(shapely.to_geojson(simple)),
            }
        )
    return {"type": "FeatureCollection", "features": features}, areas


@cache
def _zh_countries() -> gettext.NullTranslations:
    """ISO 3166-1 names in Simplified Chinese (the translations pycountry ships)."""
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"], fallback=True)


def _country_names(properties: dict[str, Any]) -> tuple[str, str]:
    """(zh, en) of a world-atlas country: zh from its ISO numeric code; the file's English
    name where the code has no ISO entry (Kosovo, Somaliland, N. Cyprus)."""
    english = str(properties["name"])
    code = properties.get("iso_n3")
    country = pycountry.countries.get(numeric=str(code)) if code else None
    return (_zh_countries().gettext(country.name) if country is not None else english), english


def load_basemap(
    data_dir: Path = DATA_DIR,
    province_tolerance: float = PROVINCE_TOLERANCE_DEG,
    country_tolerance: float = COUNTRY_TOLERANCE_DEG,
) -> Basemap:
    """Read and simplify the shipped China provinces and world countries (about a second)."""
    provinces, province_areas = _layer(
        data_dir / CHINA_PROVINCES_FILE,
        lambda p: p["adcode"],
        lambda p: (p["name"], p["name_en"]),
        province_tolerance,
        0.0,
    )
    countries, country_areas = _layer(
        data_dir / WORLD_COUNTRIES_FILE,
        lambda p: p.get("iso_n3") or p["name"],
        _country_names,
        country_tolerance,
        MIN_COUNTRY_PART_AREA,
    )
    return Basemap(provinces, countries, province_areas, country_areas)
