"""Acceptance on real exports: the live stack answers what an independent count of the data says.

The real processes (embedded broker, influxd, ``orderradar worker`` with every stage,
``orderradar web``) receive the shared Olist sample and LaDe excerpt through
``orderradar import FILE --mapping config/import_mappings/<name>.yaml --replay``. Then every
figure of ``GET /api/v1/delivery-stats`` (overall, per Olist customer state, and for a
sub-range), the LaDe delivered-away-from-stop counts per courier and station (the
``delivery_distance`` measure, in InfluxDB and through ``GET /api/v1/data-quality``) and the
missing scans per source (``GET /api/v1/data-quality?by=source``) are compared, exactly, with a
computation from the CSV written here with pandas, following the definitions of the README
("Replaying history and real exports"), not with project code.

The data stays in ../shared (Olist is non-commercial: it is read, never copied in).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from config.settings import Settings, to_env
from dashboard.gateway.staff import hash_password
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import ManagedProcess, free_port
from orderradar.devstack.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"  # beside the repository, never copied in
OLIST = SHARED_DATA / "events" / "olist" / "olist_events.csv"
LADE = SHARED_DATA / "events" / "lade" / "lade_d_jilin_events.csv"
MAPPINGS = REPO / "config" / "import_mappings"
VIEWER, PASSWORD = "viewer", "acceptance-viewer-pw"
SAO_PAULO = "America/Sao_Paulo"
SHANGHAI = "Asia/Shanghai"
#: Counters of the API, in its names.
COUNTS = ("delivered", "on_time", "late", "late_7d_or_more", "no_promise", "open_past_promise")
AWAY_LIMIT_M = 500.0
EARTH_RADIUS_M = 6_371_008.8
#: History is imported as a replay: judged in its own event time, paging nobody.
IMPORT_FLAGS = ("--replay",)
IMPORT_TIMEOUT_S = 300.0
PROCESS_TIMEOUT_S = 480.0


# -- the independent computation (pandas, from the CSV columns) ------------------------------


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


# -- the live stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    settings: Settings
    web_url: str
    client: httpx.Client
    imports: dict[str, str]

    def stats(self, **params: str) -> dict[str, Any]:
        response = self.client.get("/api/v1/delivery-stats", params=params)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def data_quality(self, **params: str) -> dict[str, Any]:
        response = self.client.get("/api/v1/data-quality", params=params)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def influx(self, query: str) -> list[dict[str, Any]]:
        """Every series of an InfluxQL answer as rows (tags merged in)."""
        response = httpx.get(
            f"{self.settings.influx_url}/query", params={"db": self.settings.influx_db, "q": query}, timeout=30
        )
        response.raise_for_status()
        result = response.json()["results"][0]
        assert "error" not in result, f"{query}: {result['error']}"
        out = []
        for series in result.get("series") or []:
            for values in series["values"]:
                out.append({**dict(zip(series["columns"], values, strict=True)), **(series.get("tags") or {})})
        return out


def _count(stack_settings: Settings, query: str) -> int:
    response = httpx.get(
        f"{stack_settings.influx_url}/query", params={"db": stack_settings.influx_db, "q": query}, timeout=30
    )
    series = response.json()["results"][0].get("series") or []
    return int(series[0]["values"][0][1]) if series else 0


def _import(settings: Settings, env: dict[str, str], path: Path, mapping: str, log_dir: Path) -> str:
    argv = [
        sys.executable,
        "-m",
        "orderradar.cli",
        "import",
        str(path),
        "--mapping",
        str(MAPPINGS / mapping),
        *IMPORT_FLAGS,
    ]
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S)
    (log_dir / f"import-{path.stem}.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, f"orderradar import {path.name} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def stack(broker: Any, influx: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("acceptance")
    staff = work / "staff.yaml"
    staff.write_text(yaml.safe_dump({"users": {VIEWER: {"role": "viewer", "password": hash_password(PASSWORD)}}}))
    settings = isolated_settings(broker.bootstrap, influx.url, influx.root.parent)
    port = free_port()
    env = {
        **os.environ,
        **to_env(settings),
        "PYTHONUNBUFFERED": "1",
        "ORDERRADAR_WEB_HOST": "127.0.0.1",
        "ORDERRADAR_WEB_PORT": str(port),
        "ORDERRADAR_GATEWAY_STAFF_FILE": str(staff),
    }
    worker = ManagedProcess(
        "worker", [sys.executable, "-m", "orderradar.cli", "worker"], work / "worker.log", env=env, cwd=REPO
    ).start()
    web = ManagedProcess(
        "web", [sys.executable, "-m", "orderradar.cli", "web", "--no-access-log"], work / "web.log", env=env, cwd=REPO
    ).start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:

        def web_ready() -> bool:
            try:
                return client.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        web.wait_ready(web_ready, 90.0)
        imports = {
            name: _import(settings, env, path, f"{name}.yaml", work)
            for name, path in (("olist", OLIST), ("lade", LADE))
        }
        events = 0
        for path in (OLIST, LADE):
            rows = pd.read_csv(path, dtype=str)
            events += int((rows["event_type"] != "order_purchased").sum())
        wait_until(
            lambda: _count(settings, 'SELECT count("event_id") FROM "sku_events"') >= events,
            PROCESS_TIMEOUT_S,
            what=f"the worker's {events} sku_events points",
        )
        orders = len(olist_orders()) + len(lade_deliveries())
        wait_until(
            lambda: _count(settings, 'SELECT sum("current") FROM "order_outcomes"') >= orders,
            PROCESS_TIMEOUT_S,
            what=f"{orders} order_outcomes points",
        )
        wait_until(
            lambda: _count(settings, 'SELECT count("distance_m") FROM "delivery_distance"') >= len(lade_deliveries()),
            PROCESS_TIMEOUT_S,
            what="the LaDe delivery_distance points",
        )
        login = client.post("/api/v1/login", json={"username": VIEWER, "password": PASSWORD})
        assert login.status_code == 200, login.text
        yield Stack(settings, f"http://127.0.0.1:{port}", client, imports)
    finally:
        client.close()
        web.stop()
        worker.stop()


# -- the figures -------------------------------------------------------------------------------

OLIST_SINCE, OLIST_UNTIL = "2016-01-01T00:00:00Z", "2019-01-01T00:00:00Z"


def _as_of(orders: pd.DataFrame) -> pd.Timestamp:
    return orders["newest_event"].max()


def _api_groups(body: dict[str, Any], by: str | None) -> dict[str | None, dict[str, int]]:
    if by is None:
        return {None: {k: body["total"][k] for k in COUNTS}}
    return {group[by]: {k: group[k] for k in COUNTS} for group in body["groups"]}


def _with_rates(counts: dict[str | None, dict[str, int]]) -> dict[str | None, float | None]:
    return {
        k: (round(v["on_time"] / (v["on_time"] + v["late"]), 4) if v["on_time"] + v["late"] else None)
        for k, v in counts.items()
    }


@pytest.mark.parametrize(
    ("since", "until", "by"),
    [
        (OLIST_SINCE, OLIST_UNTIL, None),
        (OLIST_SINCE, OLIST_UNTIL, "region"),
        ("2017-01-01T00:00:00Z", "2018-01-01T00:00:00Z", None),
        ("2018-03-01T00:00:00-03:00", "2018-09-01T00:00:00-03:00", "region"),
    ],
    ids=["all-total", "all-by-state", "2017-total", "2018-mar-aug-by-state"],
)
def test_olist_delivery_stats_equal_the_csv(stack: Stack, since: str, until: str, by: str | None) -> None:
    orders = olist_orders().rename(columns={"state": "region"})
    as_of = _as_of(orders)
    body = stack.stats(since=since, until=until, as_of=as_of.isoformat(), **({"by": by} if by else {}))
    got = _api_groups(body, by)
    # LaDe (year 2000 in its placeholder dates) is outside every range here
    want = expected_stats(orders, pd.Timestamp(since), pd.Timestamp(until), as_of, "region" if by else None)
    assert got == want
    rates = (
        {k: v["on_time_rate"] for k, v in ((g[by], g) for g in body["groups"])}
        if by
        else {None: body["total"]["on_time_rate"]}
    )
    assert rates == _with_rates(want)


def test_olist_reference_numbers_of_the_data_readme(stack: Stack, artifacts_dir: Path) -> None:
    """The sample's documented figures (../shared/data/README.md) as Order Radar reports them."""
    body = stack.stats(since=OLIST_SINCE, until=OLIST_UNTIL, by="region")
    (artifacts_dir / "olist-delivery-stats.json").write_text(json.dumps(body, indent=1))
    total = body["total"]
    assert (total["delivered"], total["late"], total["late_7d_or_more"]) == (3965, 274, 149)
    by_state = {g["region"]: (g["late"], g["delivered"]) for g in body["groups"]}
    assert {s: by_state[s] for s in ("SP", "RJ", "MG", "RS", "PR", "BA", "SC", "ES")} == {
        "SP": (72, 1685),
        "RJ": (63, 503),
        "MG": (21, 443),
        "RS": (10, 215),
        "PR": (7, 203),
        "BA": (25, 155),
        "SC": (12, 131),
        "ES": (3, 87),
    }
    # the default as_of: the newest event time of the orders in the range, not today's date
    assert pd.Timestamp(body["as_of"]) == _as_of(olist_orders())


def _warroom_table(stack: Stack, since: str, until: str, by: str) -> dict[str, dict[str, str]]:
    """The war-room panel's table (its Dash callback, through the mounted app), as
    {group: {field: shown text}}."""
    values = {"delivery-since": since, "delivery-until": until, "delivery-by": by}
    inputs = [{"id": i, "property": "value", "value": v} for i, v in values.items()]
    inputs += [
        {"id": "delivery-refresh", "property": "n_clicks", "value": None},
        {"id": "shell-lang", "property": "data", "value": "en"},
    ]
    response = stack.client.post(
        "/warroom/_dash-update-component",
        json={
            "output": "delivery-table.children",
            "outputs": {"id": "delivery-table", "property": "children"},
            "inputs": inputs,
            "changedPropIds": ["delivery-since.value"],
            "state": [],
        },
    )
    assert response.status_code == 200, response.text[:500]
    table: dict[str, dict[str, str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            props = node.get("props", {})
            if node.get("type") == "Tr" and "data-group" in props:
                cells = [c["props"] for c in props["children"] if c.get("type") == "Td"]
                table[props["data-group"]] = {c["data-field"]: c["children"] for c in cells}
            walk(props.get("children"))

    walk(response.json()["response"]["delivery-table"]["children"])
    return table


def test_warroom_panel_shows_the_api_figures(stack: Stack) -> None:
    body = stack.stats(since="2016-01-01", until="2019-01-01", by="region")
    shown = _warroom_table(stack, "2016-01-01", "2019-01-01", "region")
    for group in [{"region": "__total__", **body["total"]}, *body["groups"]]:
        row = shown[group["region"] or ""]
        assert {k: row[k] for k in ("delivered", "late", "late_7d_or_more", "open_past_promise")} == {
            k: f"{group[k]:,}" for k in ("delivered", "late", "late_7d_or_more", "open_past_promise")
        }
    assert shown["__total__"]["on_time_rate"] == f"{body['total']['on_time_rate']:.1%}"


def test_lade_deliveries_have_no_promise(stack: Stack, artifacts_dir: Path) -> None:
    body = stack.stats(since="2000-01-01", until="2001-01-01", by="channel")
    (artifacts_dir / "lade-delivery-stats.json").write_text(json.dumps(body, indent=1))
    total = body["total"]
    assert total == {
        "delivered": 213,
        "on_time": 0,
        "late": 0,
        "late_7d_or_more": 0,
        "no_promise": 213,
        "open_past_promise": 0,
        "on_time_rate": None,
    }


@pytest.mark.parametrize("by", ["courier", "station"])
def test_lade_away_from_stop_per_courier_and_station_equal_the_csv(stack: Stack, by: str, artifacts_dir: Path) -> None:
    deliveries = lade_deliveries()
    want = {str(k): (int(g["away"].sum()), len(g)) for k, g in deliveries.groupby(by)}
    rows = stack.influx(
        f'SELECT sum("away") AS "away", count("distance_m") AS "n" FROM "delivery_distance" GROUP BY "{by}"'
    )
    got = {r[by]: (int(r["away"]), int(r["n"])) for r in rows}
    (artifacts_dir / f"lade-away-by-{by}.json").write_text(json.dumps(got, indent=1))
    assert got == want
    assert sum(a for a, _ in got.values()) == 25  # the excerpt's documented count (README of the data)
    # the staff API answers the same, from the same queries as the war-room panel
    body = stack.data_quality(since="2000-01-01", until="2001-01-01", by=by)
    (artifacts_dir / f"lade-data-quality-by-{by}.json").write_text(json.dumps(body, indent=1))
    assert {g[by]: (g["away"], g["delivered"]) for g in body["groups"]} == want
    assert {g[by]: g["away_rate"] for g in body["groups"]} == {k: round(a / n, 4) for k, (a, n) in want.items()}
    assert {g["limit_m"] for g in body["groups"]} == {AWAY_LIMIT_M}
    assert (body["total"]["away"], body["total"]["delivered"], body["total"]["limit_m"]) == (25, 213, AWAY_LIMIT_M)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2000-01-01T00:00:00Z", "2019-01-01T00:00:00Z"),
        ("2017-01-01T00:00:00Z", "2018-01-01T00:00:00Z"),
        ("2000-05-12T00:00:00+08:00", "2017-06-01T12:34:00-03:00"),
    ],
    ids=["all", "2017", "lade-day-to-mid-2017"],
)
def test_missing_scans_per_source_equal_the_csv(stack: Stack, since: str, until: str, artifacts_dir: Path) -> None:
    body = stack.data_quality(since=since, until=until, by="source")
    (artifacts_dir / f"data-quality-by-source-{since[:10]}.json").write_text(json.dumps(body, indent=1))
    want = expected_scans(pd.Timestamp(since), pd.Timestamp(until))
    assert {g["source"]: (g["scans"], g["missing"]) for g in body["groups"]} == want
    assert {g["source"]: g["missing_rate"] for g in body["groups"]} == {
        k: round(m / (n + m), 4) for k, (n, m) in want.items()
    }
    assert (body["total"]["scans"], body["total"]["missing"]) == tuple(map(sum, zip(*want.values(), strict=True)))
    # without ``by``: the totals of both measures
    plain = stack.data_quality(since=since, until=until)
    assert plain["groups"] == [] and {k: plain["total"][k] for k in body["total"]} == body["total"]
    assert plain["total"]["delivered"] == (len(lade_deliveries()) if since.startswith("2000") else 0)


def test_data_quality_is_for_staff_and_names_a_bad_parameter(stack: Stack) -> None:
    anonymous = httpx.get(f"{stack.web_url}/api/v1/data-quality", timeout=30)
    assert anonymous.status_code == 401
    bad = stack.client.get("/api/v1/data-quality", params={"by": "region"})
    assert bad.status_code == 400 and "by" in bad.json()["detail"]
    reversed_range = stack.client.get("/api/v1/data-quality", params={"since": "2019-01-01", "until": "2018-01-01"})
    assert reversed_range.status_code == 400 and "since" in reversed_range.json()["detail"]


def test_lade_distances_follow_both_points_converted(stack: Stack) -> None:
    deliveries = lade_deliveries()
    rows = stack.influx('SELECT "order_id", "distance_m", "away" FROM "delivery_distance"')
    got = {str(r["order_id"]): float(r["distance_m"]) for r in rows}
    assert set(got) == set(deliveries.index)
    worst = max(abs(got[k] - deliveries.at[k, "distance_m"]) for k in got)
    assert worst < 0.5, f"distances differ from the independent computation by up to {worst:.3f} m"


def test_olist_snapshot_says_how_late(stack: Stack) -> None:
    orders = olist_orders()
    worst = orders[orders["late"]].sort_values("late_days").index[-1]
    response = stack.client.get(f"/api/v1/orders/{worst}")
    if response.status_code == 404:
        pytest.fail(f"order {worst} has no snapshot on the web tier: {response.text}")
    outcome = response.json()["extensions"]["outcome"]
    assert outcome["state"] == "delivered" and outcome["late"] is True
    assert outcome["late_days"] == int(orders.at[worst, "late_days"])


def test_delivery_stats_is_for_staff_and_names_a_bad_parameter(stack: Stack) -> None:
    anonymous = httpx.get(f"{stack.web_url}/api/v1/delivery-stats", timeout=30)
    assert anonymous.status_code == 401
    bad = stack.client.get("/api/v1/delivery-stats", params={"by": "city"})
    assert bad.status_code == 400 and "by" in bad.json()["detail"]
