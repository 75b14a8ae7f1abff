"""``orderradar import --dry-run`` on the shipped mappings and the shared real exports: the
command (a real process) reports the transitions the state machine would apply or refuse.
The expected figures are counted here from the CSV with pandas, not with project code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "config" / "import_mappings"


def dry_run(export: Path, mapping: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "orderradar.cli", "import", str(export), "--mapping", str(mapping), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_olist_dry_run_applies_the_skipped_last_mile_and_refuses_only_regressions(shared_data: Path) -> None:
    export = shared_data / "events" / "olist" / "olist_events.csv"
    out = dry_run(export, MAPPINGS / "olist.yaml")

    rows = pd.read_csv(export, dtype=str)
    events = rows[rows["event_type"] != "order_purchased"]
    times = events.pivot_table(index="order_id", columns="event_type", values="event_time", aggfunc="first")
    delivered = times["delivered_to_customer"].notna()
    handed = times["handed_to_carrier"].notna()
    approved = times["payment_approved"].notna()
    # Event-time order per order: a hand-over or delivery before the payment approval is a
    # regression the state machine refuses; everything else is a forward move.
    paid_late = approved & (
        (handed & (times["payment_approved"] > times["handed_to_carrier"]))
        | (~handed & delivered & (times["payment_approved"] > times["delivered_to_customer"]))
    )
    handover_then_delivered = int((handed & delivered).sum())

    assert f"imported {len(events):,} events" in out and f"{len(rows) - len(events):,} skipped" in out
    assert f"state machine: {len(times):,} SKUs; final status: delivered {int(delivered.sum()):,}" in out
    assert (
        f"  outbound_scan -> delivered: {handover_then_delivered:,} (not scanned: linehaul, out_for_delivery)"
        in out.splitlines()
    )
    assert f"out_for_delivery {handover_then_delivered:,}" in out
    lines = out.splitlines()
    header = lines.index("impossible sequences refused (data-quality findings, not applied):")
    refused = {
        line.split(":")[0].strip(): int(line.split(": ")[1].split(" ")[0].replace(",", ""))
        for line in lines[header + 1 :]
        if line.startswith("  ")
    }
    assert set(refused) <= {"outbound_scan -> paid", "delivered -> paid"}
    assert sum(refused.values()) == int(paid_late.sum())


def test_lade_dry_run_has_no_skips_and_nothing_refused(shared_data: Path) -> None:
    export = shared_data / "events" / "lade" / "lade_d_jilin_events.csv"
    out = dry_run(export, MAPPINGS / "lade.yaml")
    rows = pd.read_csv(export, dtype=str)
    packages = rows["package_id"].nunique()
    assert f"imported {len(rows):,} events" in out
    assert f"  out_for_delivery -> delivered: {packages:,}" in out.splitlines()
    assert "stages not scanned: none" in out and "impossible sequences refused: none" in out
