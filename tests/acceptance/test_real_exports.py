"""Acceptance on real exports: the live stack answers what an independent count of the data says.

The real processes (embedded broker, influxd, ``orderradar worker`` with every stage,
``orderradar web``) receive the shared Olist sample and LaDe excerpt through
``orderradar import FILE --mapping config/import_mappings/<name>.yaml --replay``. Then every
figure of ``GET /api/v1/delivery-stats`` (overall, per Olist customer state, and for a
sub-range), the LaDe delivered-away-from-stop counts per courier and station (the
``delivery_distance`` measure, in InfluxDB and through ``GET /api/v1/data-quality``) and the
missing scans per source (``GET /api/v1/data-quality?by=source``) are compared, exactly, with a
computation from the CSV written with pandas (``export_counts.py``), following the definitions of the README
("Replaying history and real exports"), not with project code.

The data stays in ../shared (Olist is non-commercial: it is read, never copied in).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from export_counts import (
    AWAY_LIMIT_M,
    COUNTS,
    LADE,
    OLIST,
    expected_scans,
    expected_stats,
    lade_deliveries,
    olist_orders,
)
from stream_harness import influx_query, influx_series

from config.settings import Settings, to_env
from dashboard.gateway.staff import hash_password
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import ManagedProcess, free_port
from orderradar.devstack.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "config" / "import_mappings"
VIEWER, PASSWORD = "viewer", "acceptance-viewer-pw"
#: History is imported as a replay: judged in its own event time, paging nobody.
IMPORT_FLAGS = ("--replay",)
IMPORT_TIMEOUT_S = 300.0
PROCESS_TIMEOUT_S = 480.0


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
        out = []
        for series in influx_series(self.settings, query):
            for values in series["values"]:
                out.append({**dict(zip(series["columns"], values, strict=True)), **(series.get("tags") or {})})
        return out


def _count(stack_settings: Settings, query: str) -> int:
    values = influx_query(stack_settings, query)
    return int(str(values[0][1])) if values else 0


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
