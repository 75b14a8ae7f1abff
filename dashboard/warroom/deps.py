"""What the war-room's callbacks may use, built once by the app factory and passed in.

Callbacks never open connections themselves: history comes from :attr:`WarroomDeps.history`
(the only InfluxDB client), staff actions and live data go through the browser (the
gateway's API and WebSocket with the staff session). Geography is read-only data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import h3

from alerting.titles import Places
from config.settings import Settings
from dashboard.warroom.basemap import Basemap, load_basemap
from dashboard.warroom.history import HistorySource, InfluxHistory
from dashboard.warroom.map_figures import Backdrop
from dashboard.warroom.titles import places_of
from geo.regions import RegionIndex, RegionKind

#: (lons, lats) -> province adcode (or ``None``) per point.
ProvinceLookup = Callable[[Sequence[float], Sequence[float]], list[str | None]]
#: H3 cells -> province adcode (or ``None``) of each cell's centre.
CellProvinces = Callable[[Sequence[str]], list[str | None]]
#: Cells whose province is remembered (a cell never moves; China has ~40,000 at resolution 5).
CELL_CACHE_SIZE = 100_000


def cell_provinces(province_of: ProvinceLookup, max_size: int = CELL_CACHE_SIZE) -> CellProvinces:
    """``province_of`` for H3 cells, remembering answers: the live map asks every second."""
    known: dict[str, str | None] = {}

    def lookup(cells: Sequence[str]) -> list[str | None]:
        missing = [c for c in dict.fromkeys(cells) if c not in known]
        if missing:
            if len(known) + len(missing) > max_size:
                known.clear()
            centres = [h3.cell_to_latlng(c) for c in missing]
            found = province_of([p[1] for p in centres], [p[0] for p in centres])
            known.update(zip(missing, found, strict=True))
        return [known[c] for c in cells]

    return lookup


def _nowhere(lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
    return [None] * len(lons)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WarroomDeps:
    basemap: Basemap
    history: HistorySource
    province_of: ProvinceLookup
    backdrop: Backdrop = Backdrop()
    #: URL prefix the app is served under (Dash's ``requests_pathname_prefix``).
    prefix: str = "/warroom/"
    #: Wall clock for "the last hour" style windows; tests pass a fixed one.
    clock: Callable[[], datetime] = utc_now
    #: Country codes (ISO numeric, the base map's ``country_areas``) of points outside China.
    country_of: ProvinceLookup = _nowhere
    provinces_of_cells: CellProvinces = field(init=False, repr=False, compare=False)
    countries_of_cells: CellProvinces = field(init=False, repr=False, compare=False)
    #: How titles name regions and cells: the base map's names (one for every panel).
    places: Places = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "provinces_of_cells", cell_provinces(self.province_of))
        object.__setattr__(self, "countries_of_cells", cell_provinces(self.country_of))
        object.__setattr__(self, "places", places_of(self.basemap, self.regions_of_cells))

    def regions_of_cells(self, cells: Sequence[str]) -> list[str | None]:
        """Each cell's province adcode, else its country code, else ``None`` (far at sea)."""
        provinces = self.provinces_of_cells(cells)
        outside = [c for c, p in zip(cells, provinces, strict=True) if p is None]
        countries = dict(zip(outside, self.countries_of_cells(outside), strict=True)) if outside else {}
        return [p if p is not None else countries.get(c) for c, p in zip(cells, provinces, strict=True)]


def province_lookup(index: RegionIndex) -> ProvinceLookup:
    """Province adcodes of points, from the shipped boundaries (``None`` outside China)."""

    def lookup(lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        return [
            r.code if r is not None and r.kind is RegionKind.PROVINCE else None for r in index.regions_for(lons, lats)
        ]

    return lookup


def country_lookup(index: RegionIndex) -> ProvinceLookup:
    """Country codes of points outside China, from the shipped boundaries."""

    def lookup(lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        return [
            r.code if r is not None and r.kind is RegionKind.COUNTRY else None for r in index.regions_for(lons, lats)
        ]

    return lookup


def build_deps(
    settings: Settings, *, history: HistorySource | None = None, prefix: str = "/warroom/", tile_url: str | None = None
) -> WarroomDeps:
    """Everything the war-room needs, from settings (a second or two: boundaries are read).

    ``tile_url`` defaults to ``settings.map_tile_url`` (``ORDERRADAR_MAP_TILE_URL``) when the
    settings define it; without one the map draws the shipped boundaries only.
    """
    tiles = tile_url if tile_url is not None else getattr(settings, "map_tile_url", None)
    attribution = str(getattr(settings, "map_tile_attribution", "") or "")
    index = RegionIndex.load()
    return WarroomDeps(
        basemap=load_basemap(),
        history=history if history is not None else InfluxHistory.from_settings(settings),
        province_of=province_lookup(index),
        country_of=country_lookup(index),
        backdrop=Backdrop(tile_url=str(tiles) if tiles else None, tile_attribution=attribution),
        prefix=prefix,
    )
