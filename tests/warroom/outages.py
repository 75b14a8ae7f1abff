"""Hub outages the real worker turns into incidents and alerts, for the war-room tests.

``tests/stream_stages/stages_scenario.py`` builds a small parcel network with one stalled
hub and SLA rules scaled to minutes (the worker opens one hub incident on it). Here that
network is laid out several times side by side, each copy with its own hub names and
positions (``HUB-A1``, ``HUB-A2``, ...), so each copy's stalled hub gets its own incident,
its own alert, and the war-room test can ack one, silence another and watch a third one
escalate.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stream_stages"))
from stages_scenario import DOWN_HUB, HUBS, Sent, fast_rules, outage_traffic  # noqa: E402

__all__ = ["Sent", "down_hubs", "fast_rules", "hub_outages"]

#: Latitude step between copies: distinct H3 cells, still within the warehouses' reach.
SHIFT_DEG = 0.15


def hub_name(hub: str, copy: int) -> str:
    return f"{hub}{copy}"


def down_hubs(copies: int) -> list[str]:
    return [hub_name(DOWN_HUB, k) for k in range(1, copies + 1)]


def hub_outages(start: datetime, minutes: int, outage_after: int, copies: int, stagger: int = 0) -> list[Sent]:
    """``outage_traffic`` once per copy, each with its own orders and hubs, in arrival order;
    copy ``k``'s hub stalls ``stagger`` minutes after copy ``k - 1``'s."""
    out: list[Sent] = []
    for k in range(1, copies + 1):
        for sent in outage_traffic(start, minutes, outage_after + (k - 1) * stagger):
            event = sent.event
            update: dict[str, object] = {"order_id": f"C{k}{event.order_id}", "event_id": f"C{k}{event.event_id}"}
            if event.node in HUBS:
                lat, lon = HUBS[event.node]
                update.update(node=hub_name(event.node, k), lat=lat + SHIFT_DEG * k, lon=lon)
            out.append(Sent(event.model_copy(update=update), sent.received))
    out.sort(key=lambda s: s.received)
    return out
