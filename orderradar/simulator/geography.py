"""Where demand comes from: Chinese provinces, their cities and plain-sphere geometry.

Coordinates are WGS-84 city centres (rounded to 4 decimals, about 10 m). Province demand
weights are population (2020 census, millions) times a rough online-shopping intensity,
so Zhejiang and Guangdong order far more per head than Gansu or Tibet. ``region`` values
are GB/T 2260 province codes, the ``adcode`` of shared/data's China boundary file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .randomness import Rng

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Province:
    adcode: str
    name_en: str
    population_m: float
    #: Parcels per head relative to the national mean (coastal e-commerce hubs > 1).
    ecommerce_intensity: float

    @property
    def demand_weight(self) -> float:
        return self.population_m * self.ecommerce_intensity


@dataclass(frozen=True)
class City:
    code: str
    name_en: str
    province: str  # adcode
    lat: float
    lon: float
    #: Share of its province's demand delivered here (the shares of a province sum to 1).
    share: float


PROVINCES: tuple[Province, ...] = (
    Province("110000", "Beijing", 21.9, 2.0),
    Province("120000", "Tianjin", 13.9, 1.3),
    Province("130000", "Hebei", 74.6, 0.9),
    Province("140000", "Shanxi", 34.9, 0.7),
    Province("150000", "Inner Mongolia", 24.0, 0.6),
    Province("210000", "Liaoning", 42.6, 0.9),
    Province("220000", "Jilin", 24.1, 0.7),
    Province("230000", "Heilongjiang", 31.9, 0.7),
    Province("310000", "Shanghai", 24.9, 2.3),
    Province("320000", "Jiangsu", 84.7, 1.7),
    Province("330000", "Zhejiang", 64.6, 2.5),
    Province("340000", "Anhui", 61.0, 1.0),
    Province("350000", "Fujian", 41.5, 1.5),
    Province("360000", "Jiangxi", 45.2, 0.9),
    Province("370000", "Shandong", 101.5, 1.1),
    Province("410000", "Henan", 99.4, 0.9),
    Province("420000", "Hubei", 57.8, 1.0),
    Province("430000", "Hunan", 66.4, 0.9),
    Province("440000", "Guangdong", 126.0, 2.2),
    Province("450000", "Guangxi", 50.1, 0.7),
    Province("460000", "Hainan", 10.1, 0.8),
    Province("500000", "Chongqing", 32.1, 0.9),
    Province("510000", "Sichuan", 83.7, 0.9),
    Province("520000", "Guizhou", 38.6, 0.6),
    Province("530000", "Yunnan", 47.2, 0.6),
    Province("540000", "Tibet", 3.6, 0.4),
    Province("610000", "Shaanxi", 39.5, 0.9),
    Province("620000", "Gansu", 25.0, 0.5),
    Province("630000", "Qinghai", 5.9, 0.5),
    Province("640000", "Ningxia", 7.2, 0.6),
    Province("650000", "Xinjiang", 25.9, 0.5),
)

CITIES: tuple[City, ...] = (
    City("BJ", "Beijing", "110000", 39.9042, 116.4074, 1.0),
    City("TJ", "Tianjin", "120000", 39.3434, 117.3616, 1.0),
    City("SJZ", "Shijiazhuang", "130000", 38.0428, 114.5149, 0.55),
    City("LF", "Langfang", "130000", 39.5380, 116.6837, 0.45),
    City("TY", "Taiyuan", "140000", 37.8706, 112.5489, 1.0),
    City("HHHT", "Hohhot", "150000", 40.8414, 111.7519, 1.0),
    City("SY", "Shenyang", "210000", 41.8057, 123.4315, 0.6),
    City("DL", "Dalian", "210000", 38.9140, 121.6147, 0.4),
    City("CC", "Changchun", "220000", 43.8171, 125.3235, 1.0),
    City("HRB", "Harbin", "230000", 45.8038, 126.5350, 1.0),
    City("SH", "Shanghai", "310000", 31.2304, 121.4737, 1.0),
    City("NJ", "Nanjing", "320000", 32.0603, 118.7969, 0.4),
    City("SUZ", "Suzhou", "320000", 31.2989, 120.5853, 0.4),
    City("XZ", "Xuzhou", "320000", 34.2044, 117.2859, 0.2),
    City("HZ", "Hangzhou", "330000", 30.2741, 120.1551, 0.45),
    City("NB", "Ningbo", "330000", 29.8683, 121.5440, 0.2),
    City("WZ", "Wenzhou", "330000", 27.9943, 120.6994, 0.15),
    City("YW", "Yiwu", "330000", 29.3069, 120.0751, 0.2),
    City("HF", "Hefei", "340000", 31.8206, 117.2272, 1.0),
    City("FZ", "Fuzhou", "350000", 26.0745, 119.2965, 0.5),
    City("XM", "Xiamen", "350000", 24.4798, 118.0894, 0.5),
    City("NC", "Nanchang", "360000", 28.6820, 115.8579, 1.0),
    City("JN", "Jinan", "370000", 36.6512, 117.1201, 0.5),
    City("QD", "Qingdao", "370000", 36.0671, 120.3826, 0.5),
    City("ZZ", "Zhengzhou", "410000", 34.7466, 113.6254, 1.0),
    City("WH", "Wuhan", "420000", 30.5928, 114.3055, 1.0),
    City("CS", "Changsha", "430000", 28.2282, 112.9388, 1.0),
    City("GZ", "Guangzhou", "440000", 23.1291, 113.2644, 0.35),
    City("SZ", "Shenzhen", "440000", 22.5431, 114.0579, 0.35),
    City("DG", "Dongguan", "440000", 23.0207, 113.7518, 0.15),
    City("FS", "Foshan", "440000", 23.0215, 113.1214, 0.15),
    City("NN", "Nanning", "450000", 22.8170, 108.3665, 1.0),
    City("HAK", "Haikou", "460000", 20.0440, 110.1999, 1.0),
    City("CQ", "Chongqing", "500000", 29.5630, 106.5516, 1.0),
    City("CD", "Chengdu", "510000", 30.5728, 104.0668, 1.0),
    City("GY", "Guiyang", "520000", 26.6470, 106.6302, 1.0),
    City("KM", "Kunming", "530000", 25.0389, 102.7183, 1.0),
    City("LS", "Lhasa", "540000", 29.6520, 91.1721, 1.0),
    City("XA", "Xi'an", "610000", 34.3416, 108.9398, 1.0),
    City("LZ", "Lanzhou", "620000", 36.0611, 103.8343, 1.0),
    City("XN", "Xining", "630000", 36.6171, 101.7782, 1.0),
    City("YC", "Yinchuan", "640000", 38.4872, 106.2309, 1.0),
    City("URC", "Urumqi", "650000", 43.8256, 87.6168, 1.0),
)

CITY_BY_CODE: dict[str, City] = {c.code: c for c in CITIES}
PROVINCE_BY_ADCODE: dict[str, Province] = {p.adcode: p for p in PROVINCES}
_PROVINCE_BY_NAME: dict[str, Province] = {p.name_en.lower(): p for p in PROVINCES}


def province_named(name_or_adcode: str) -> Province:
    """A province by English name (any case) or adcode; ``KeyError`` names the choices."""
    found = PROVINCE_BY_ADCODE.get(name_or_adcode) or _PROVINCE_BY_NAME.get(name_or_adcode.lower())
    if found is None:
        choices = ", ".join(p.name_en for p in PROVINCES)
        raise KeyError(f"unknown province {name_or_adcode!r}; expected an adcode or one of {choices}")
    return found


def destination_weights() -> tuple[tuple[City, ...], tuple[float, ...]]:
    """Cities and the share of national demand delivered to each (sums to 1)."""
    raw = [PROVINCE_BY_ADCODE[c.province].demand_weight * c.share for c in CITIES]
    total = sum(raw)
    return CITIES, tuple(w / total for w in raw)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def interpolate(lat1: float, lon1: float, lat2: float, lon2: float, fraction: float) -> tuple[float, float]:
    """The point ``fraction`` of the way along a lane (linear in degrees: lanes are short
    enough in China that the difference from a great circle is within the GPS jitter)."""
    f = min(1.0, max(0.0, fraction))
    return lat1 + (lat2 - lat1) * f, lon1 + (lon2 - lon1) * f


def offset_km(lat: float, lon: float, north_km: float, east_km: float) -> tuple[float, float]:
    """The point ``north_km``/``east_km`` away (flat-earth approximation, fine below ~50 km)."""
    dlat = north_km / 111.32
    dlon = east_km / (111.32 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def jitter(rng: Rng, lat: float, lon: float, sigma_km: float) -> tuple[float, float]:
    """A GPS fix scattered around a point (Gaussian, ``sigma_km`` per axis), 6 decimals."""
    jlat, jlon = offset_km(lat, lon, rng.gauss(0.0, sigma_km), rng.gauss(0.0, sigma_km))
    return round(jlat, 6), round(jlon, 6)
