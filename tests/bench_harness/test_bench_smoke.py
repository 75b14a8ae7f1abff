"""A small smoke run of ``orderradar bench``: the harness works end to end (not a timing test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_smoke_run_writes_one_report_with_every_part(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orderradar.cli", "bench", "--smoke", "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    reports = list(tmp_path.glob("bench-*-smoke.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert set(report["results"]) == {"pipeline", "tracking", "geo", "delays", "system", "state"}
    assert report["machine"]["cpus"] >= 1
    pipeline = report["results"]["pipeline"]
    # Every valid event of the smoke input reached InfluxDB, and the ratio was computed.
    assert all(r["pipeline"]["points"] == pipeline["input"]["valid_events"] for r in pipeline["rounds"])
    assert pipeline["ratio_pipeline_to_ceiling_wall"] > 0
    assert all(run["latency_ms"]["p99"] > 0 for run in report["results"]["tracking"]["scenarios"])
    assert report["results"]["geo"]["geofence_lookup"]["meets_target"] is True
    assert "pipeline / ceiling (wall)" in proc.stdout
    state = report["results"]["state"]  # issue #20: bytes per in-flight SKU, in memory and encoded
    assert state["in_flight"]["skus"] == 2000 and state["in_flight"]["bytes_per_sku_encoded"] > 0
    assert state["recovered"]["skus"] == 2000 and "state: RSS per in-flight SKU (2,000)" in proc.stdout
    # Issue #10: all seven items, numbered, in the one report and the one table.
    items = report["items"]
    assert set(items) == {"1", "2", "3", "4", "5", "6", "7"}
    assert [run["latency_ms"]["n"] > 0 for run in items["3"]["runs"]] == [True, True]
    assert set(items["4"]["peak_rss_bytes"]) == {"broker", "influxd", "web", "worker"}
    assert all(v > 0 for v in items["4"]["peak_rss_bytes"].values())
    assert items["5"]["points_per_s"] > 0
    assert items["6"]["restart_to_probe_written_s"] > 0
    assert items["7"]["max_lag_events"] > 0 and items["7"]["burst_factor"] == 47
    assert "issue #10, one run:" in proc.stdout
