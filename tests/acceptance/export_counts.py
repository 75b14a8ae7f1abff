"""The independent count of the shared exports (pandas, from the CSV columns), following the
definitions of the README ("Replaying history and real exports"), not project code: what
``test_real_exports.py`` compares the live stack's figures with."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"  # beside the repository, never copied in
OLIST = SHARED_DATA / "events" / "olist" / "olist_events.csv"
LADE = SHARED_DATA / "events" / "lade" / "lade_d_jilin_events.csv"
SAO_PAULO = "America/Sao_Paulo"
SHANGHAI = "Asia/Shanghai"
#: Counters of the API, in its names.
COUNTS = ("delivered", "on_time", "late", "late_7d_or_more", "no_promise", "open_past_promise")
AWAY_LIMIT_M = 500.0
EARTH_RADIUS_M = 6_371_008.8


def _local_to_utc(text: pd.Series, zone: str) -> pd.Series:
    """Local wall-clock times without an offset -> UTC. Like any reading of a local time: a
    time inside a spring-forward gap is read with the offset before the gap (it is an hour
    later), an ambiguous one as its first occurrence."""
    local = pd.to_datetime(text, format="%Y-%m-%dT%H:%M:%S")
    first = np.ones(len(local), dtype=bool)
    return local.dt.tz_localize(zone, ambiguous=first, nonexistent=pd.Timedelta(hours=1)).dt.tz_convert("UTC")


def olist_orders() -> pd.DataFrame:
    """One row per order the import carries, with what the README's definitions need.

    The shipped mapping leaves ``order_purchased`` rows out (a purchase is not a parcel
    status), so orders with nothing but a purchase never reach Order Radar. The customer's
    state is the ``region`` of the rows located at the customer's zip prefix.
    """
    rows = pd.read_csv(OLIST, dtype=str, keep_default_na=False)
    rows = rows[rows["event_type"] != "order_purchased"]
    orders = pd.DataFrame(index=pd.Index(sorted(rows["order_id"].unique()), name="order_id"))
    customer = rows[rows["location_basis"] == "customer_zip_prefix_point"]
    orders["state"] = customer.groupby("order_id")["region"].first()
    orders["promised_day"] = rows.groupby("order_id")["promised_time"].first().str[:10]
    delivered = rows[rows["event_type"] == "delivered_to_customer"].groupby("order_id")["event_time"].min()
    orders["delivered_local"] = delivered
    orders["delivered_at"] = _local_to_utc(orders["delivered_local"].dropna(), SAO_PAULO)
    # a date-only promise ends at the end of its day in the promise's time zone (Brasília)
    next_day = (pd.to_datetime(orders["promised_day"]) + pd.Timedelta(days=1)).dt.strftime("%Y-%m-%dT%H:%M:%S")
    orders["due"] = _local_to_utc(next_day, SAO_PAULO)
    is_delivered = orders["delivered_local"].notna()
    late_days = (pd.to_datetime(orders["delivered_local"].str[:10]) - pd.to_datetime(orders["promised_day"])).dt.days
    orders["delivered"] = is_delivered
    orders["late"] = is_delivered & (late_days > 0)
    orders["late_days"] = late_days.where(orders["late"], 0)
    orders["newest_event"] = _local_to_utc(rows.groupby("order_id")["event_time"].max(), SAO_PAULO)
    return orders


def expected_stats(
    orders: pd.DataFrame, since: pd.Timestamp, until: pd.Timestamp, as_of: pd.Timestamp, group: str | None
) -> dict[str | None, dict[str, int]]:
    """Delivered orders by delivery time in [since, until); open ones by promise deadline in
    [since, until), past promise when the deadline is before as_of."""
    delivered = orders[orders["delivered"] & (orders["delivered_at"] >= since) & (orders["delivered_at"] < until)]
    end = min(until, as_of)
    open_ = orders[~orders["delivered"] & (orders["due"] >= since) & (orders["due"] < end)]
    keys = (lambda frame: frame[group]) if group else (lambda frame: pd.Series(None, index=frame.index, dtype=object))
    out: dict[str | None, dict[str, int]] = {}

    def add(frame: pd.DataFrame, name: str, mask: pd.Series) -> None:
        for key, n in frame[mask].groupby(keys(frame), dropna=False).size().items():
            key = None if key is None or (isinstance(key, float) and math.isnan(key)) else str(key)
            out.setdefault(key, dict.fromkeys(COUNTS, 0))[name] = int(n)

    everything = pd.Series(True, index=delivered.index)
    add(delivered, "delivered", everything)
    add(delivered, "on_time", ~delivered["late"])
    add(delivered, "late", delivered["late"])
    add(delivered, "late_7d_or_more", delivered["late"] & (delivered["late_days"] >= 7))
    add(open_, "open_past_promise", pd.Series(True, index=open_.index))
    if group is None:
        out = {None: out.get(None, dict.fromkeys(COUNTS, 0))}
    return out


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The published GCJ-02 obfuscation offset (Krasovsky 1940 ellipsoid), in degrees."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * np.pi
    magic = 1 - ee * np.sin(rad) ** 2
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * np.sqrt(magic)) * np.pi)
    dlon = (dlon * 180.0) / (a / np.sqrt(magic) * np.cos(rad) * np.pi)
    return dlon, dlat


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of the offset by fixed-point iteration (to far below a millimetre)."""
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(30):
        dlon, dlat = _gcj02_offset(wlon, wlat)
        wlon, wlat = lon - dlon, lat - dlat
    return wlon, wlat


def haversine_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h))


#: The happy path a forward skip is measured against (README, "missing scans"): the position
#: of each stage; the CSV event types as the shipped mappings name their statuses.
LADDER = ("paid", "picked", "packed", "outbound_scan", "linehaul", "out_for_delivery", "delivered")
OLIST_STAGES = {"payment_approved": "paid", "handed_to_carrier": "outbound_scan", "delivered_to_customer": "delivered"}
LADE_STAGES = {"courier_accepted": "out_for_delivery", "delivered": "delivered"}


def scan_counts(path: Path, stages: dict[str, str], parcel: str, zone: str) -> pd.DataFrame:
    """Per event of a parcel (in event-time order, ties in file sequence): whether it is a scan
    (a step forward along the ladder; a step back is not applied) and how many ladder stages
    it jumped over since the parcel's last scan (none for its first). ``minute``: the UTC
    event-time minute the measure is kept at."""
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = rows[rows["event_type"].isin(list(stages))].copy()
    rows["position"] = rows["event_type"].map({e: LADDER.index(s) for e, s in stages.items()})
    rows["at"] = _local_to_utc(rows["event_time"], zone)
    rows["seq"] = rows["event_seq"].astype(int)
    rows = rows.sort_values([parcel, "at", "seq"])
    reached = rows.groupby(parcel)["position"].cummax().groupby(rows[parcel]).shift(1)
    rows["scan"] = reached.isna() | (rows["position"] > reached)
    rows["missing"] = (rows["position"] - reached - 1).where(rows["scan"] & reached.notna(), 0).astype(int)
    rows["minute"] = rows["at"].dt.floor("min")
    return rows


def expected_scans(since: pd.Timestamp, until: pd.Timestamp) -> dict[str, tuple[int, int]]:
    """(scans, missing) per source over the event-time minutes in [since, until)."""
    out: dict[str, tuple[int, int]] = {}
    for path, stages, parcel, zone in (
        (OLIST, OLIST_STAGES, "order_id", SAO_PAULO),
        (LADE, LADE_STAGES, "package_id", SHANGHAI),
    ):
        rows = scan_counts(path, stages, parcel, zone)
        rows = rows[(rows["minute"] >= since) & (rows["minute"] < until)]
        for source, group in rows.groupby("source"):
            out[str(source)] = (int(group["scan"].sum()), int(group["missing"].sum()))
    return {k: v for k, v in out.items() if sum(v)}


def lade_deliveries() -> pd.DataFrame:
    """Per LaDe delivery with a courier fix: distance from the stop (both GCJ-02 -> WGS-84)."""
    rows = pd.read_csv(LADE, dtype={"courier_id": str, "delivery_region_id": str, "package_id": str})
    done = rows[(rows["event_type"] == "delivered") & rows["lat"].notna() & rows["dest_lat"].notna()].copy()
    lon, lat = gcj02_to_wgs84(done["lon"].to_numpy(float), done["lat"].to_numpy(float))
    dlon, dlat = gcj02_to_wgs84(done["dest_lon"].to_numpy(float), done["dest_lat"].to_numpy(float))
    done["distance_m"] = haversine_m(lon, lat, dlon, dlat)
    done["away"] = done["distance_m"] > AWAY_LIMIT_M
    done["station"] = "station-" + done["delivery_region_id"]
    done["courier"] = done["courier_id"]
    return done.set_index("package_id")
