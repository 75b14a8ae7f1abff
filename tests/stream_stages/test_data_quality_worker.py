"""Missing scans and deliveries away from their stop, through the running product: the real
exports are loaded with ``orderradar import`` and the shipped mappings onto the bus, the
``orderradar worker`` process (all stages) applies them, and the results are read where users
read them: InfluxDB and the staff API of a running web gateway.

- Olist orders handed to the carrier and then delivered, with no out-for-delivery scan, are
  delivered; their snapshot lists the stages not scanned; ``missing_scans`` counts them.
- LaDe deliveries whose courier fix is more than 500 m from the stop are flagged in
  ``delivery_distance`` (per courier) and in the order's snapshot (``delivery_check``).

Expected figures are computed here from the CSV with pandas and numpy, not with project code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from stream_harness import influx_series

from config.settings import Settings, to_env
from dashboard.warroom import quality_history
from dashboard.warroom.history import InfluxHistory
from dashboard.warroom.panels import data_quality
from gateway.harness import build_staff, login, running_gateways
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "config" / "import_mappings"
#: Olist orders imported (a slice: the whole sample takes minutes on a shared machine).
OLIST_ORDERS = 120


def run_import(settings: Settings, export: Path, mapping: Path) -> None:
    env = {**os.environ, **to_env(settings)}
    done = subprocess.run(
        [sys.executable, "-m", "orderradar.cli", "import", str(export), "--mapping", str(mapping)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def olist_slice(shared_data: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """The rows (in file order) of the first orders of the sample that were paid, handed to
    the carrier and delivered in that order, written to a temporary file (never in the
    repo), and those orders."""
    rows = pd.read_csv(shared_data / "events" / "olist" / "olist_events.csv", dtype=str, keep_default_na=False)
    times = rows.pivot_table(index="order_id", columns="event_type", values="event_time", aggfunc="first")
    clean = times[
        (times["payment_approved"] > "")
        & (times["payment_approved"] < times["handed_to_carrier"])
        & (times["handed_to_carrier"] < times["delivered_to_customer"])
    ]
    chosen = [o for o in dict.fromkeys(rows["order_id"]) if o in clean.index][:OLIST_ORDERS]
    path = tmp_path / "olist_slice.csv"
    rows[rows["order_id"].isin(chosen)].to_csv(path, index=False)
    return path, chosen


def far_deliveries(shared_data: Path, limit_m: float = 500.0) -> tuple[pd.DataFrame, int]:
    """Per courier, LaDe deliveries with a fix and how many are farther than ``limit_m`` from
    the stop (haversine on the raw coordinates: fix and stop share the GCJ-02 offset, which
    does not change a distance of a few hundred metres by more than centimetres)."""
    rows = pd.read_csv(shared_data / "events" / "lade" / "lade_d_jilin_events.csv", dtype={"courier_id": str})
    done = rows[(rows["event_type"] == "delivered") & rows["lat"].notna()].copy()
    lat1, lon1, lat2, lon2 = (np.radians(done[c].astype(float)) for c in ("lat", "lon", "dest_lat", "dest_lon"))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    done["distance_m"] = 2 * 6_371_008.8 * np.arcsin(np.sqrt(h))
    done["away"] = (done["distance_m"] > limit_m).astype(int)
    per_courier = done.groupby("courier_id").agg(delivered=("away", "size"), away=("away", "sum"))
    farthest = str(done.sort_values("distance_m").iloc[-1]["package_id"])
    return per_courier, int(farthest)


def sums_by(settings: Settings, query: str) -> dict[str, tuple[float, ...]]:
    out: dict[str, tuple[float, ...]] = {}
    for series in influx_series(settings, query):
        key = next(iter((series.get("tags") or {"": ""}).values()))
        out[key] = tuple(series["values"][0][1:])
    return out


def test_skipped_scans_are_applied_and_far_deliveries_flagged(
    stack_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(stack_settings.config_dir, config_dir)
    settings = stack_settings.model_copy(update={"config_dir": config_dir})
    env = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1"}
    worker = ManagedProcess(
        "worker", [sys.executable, "-m", "orderradar.cli", "worker"], tmp_path / "worker.log", env=env, cwd=REPO
    ).start()
    olist, clean = olist_slice(shared_data, tmp_path)
    per_courier, farthest = far_deliveries(shared_data)
    assert len(clean) > 50 and int(per_courier["away"].sum()) == 25  # the figures the data's README gives
    try:
        with ExitStack() as stack:
            (gateway,) = stack.enter_context(running_gateways(settings, build_staff()))
            # LaDe (placeholder year 2000) first: the per-minute measures are kept within a window
            # behind each partition's newest event time, and the Olist slice is from 2016-2017.
            run_import(settings, shared_data / "events" / "lade" / "lade_d_jilin_events.csv", MAPPINGS / "lade.yaml")
            run_import(settings, olist, MAPPINGS / "olist.yaml")
            client = stack.enter_context(httpx.Client(base_url=gateway.base_url, timeout=10))
            assert login(client, "viewer").status_code == 200

            def snapshot(order_id: str, ready: str) -> dict[str, Any] | None:
                response = client.get(f"/api/v1/orders/{order_id}")
                if response.status_code != 200:
                    return None
                body: dict[str, Any] = response.json()
                return body if ready in response.text else None

            try:
                olist_order = wait_until(
                    lambda: snapshot(clean[-1], '"delivered"'),
                    timeout=180,
                    interval=0.5,
                    what="an Olist order delivered without an out-for-delivery scan",
                )
                lade_order = wait_until(
                    lambda: snapshot(str(farthest), "delivery_check"),
                    timeout=120,
                    interval=0.5,
                    what="the farthest LaDe delivery's check in the API",
                )
            except TimeoutError:
                raise AssertionError(worker.log_tail(40)) from None

            assert isinstance(olist_order, dict) and isinstance(lade_order, dict)
            (sku,) = olist_order["skus"].values()
            assert sku["status"] == "delivered"
            assert sku["not_scanned"] == ["picked", "packed", "linehaul", "out_for_delivery"]
            assert [e.get("not_scanned") for e in sku["timeline"]] == [
                None,
                ["picked", "packed"],
                ["linehaul", "out_for_delivery"],
            ]
            assert all(not e["flags"] for e in sku["timeline"])  # nothing illegal
            (check,) = lade_order["extensions"]["delivery_check"].values()
            assert check["away"] is True and check["distance_m"] > 500 and check["limit_m"] == 500

            def missing_scans() -> dict[str, tuple[float, ...]]:
                return sums_by(settings, 'SELECT sum("scans"), sum("missing") FROM "missing_scans" GROUP BY "source"')

            def deliveries() -> dict[str, tuple[float, ...]]:
                return sums_by(
                    settings,
                    'SELECT count("distance_m"), sum("away") FROM "delivery_distance" '
                    'WHERE "source" = \'lade_d\' GROUP BY "courier"',
                )

            expected = {c: (float(r.delivered), float(r.away)) for c, r in per_courier.iterrows()}
            wait_until(
                lambda: deliveries() == expected,
                timeout=60,
                interval=0.5,
                what=f"delivery_distance per courier {expected}",
            )
            # Each order: three scans (paid, hand-over, delivery), two stages missing before the
            # hand-over (picked, packed) and two before the delivery (linehaul, out for delivery).
            # LaDe's courier scans (accepted = out for delivery, delivered) miss none.
            counts = {"olist": (3.0 * len(clean), 4.0 * len(clean)), "lade_d": (426.0, 0.0)}
            try:
                wait_until(lambda: missing_scans() == counts, timeout=60, interval=0.5, what="missing_scans")
            except TimeoutError:
                assert missing_scans() == counts

            # The war-room's data-quality panel reads the same through its InfluxDB client.
            history = stack.enter_context(InfluxHistory.from_settings(settings))
            scans = quality_history.missing_scans(history, None, "source").set_index("source")
            assert scans.loc["olist", "rate"] == 4 / 7 and scans.loc["lade_d", "rate"] == 0.0
            away = quality_history.deliveries_away(history, None, "courier").set_index("courier")
            assert away[["delivered", "away"]].astype(int).to_dict("index") == per_courier.to_dict("index")
            rendered = str(
                data_quality.table(away.reset_index(), [("courier", "dq.by.courier"), ("away", "dq.away_count")], "en")
            )
            assert str(per_courier["away"].idxmax()) in rendered
    finally:
        worker.stop()
