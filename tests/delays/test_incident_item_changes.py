"""A data-quality detector's items kept apart from its snapshot: the changes since the last
take, and a restore from the snapshot without items plus the items stored one by one."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from stream.core.incident_detector import IncidentDetector
from stream.core.incident_model import ClusterItem, IncidentSettings

SETTINGS = IncidentSettings(
    dimensions=["device_id", "source"], min_count=5, expire_items=True, window=timedelta(minutes=30)
)


def _finding(i: int, device: str = "D3", label: str = "future_timestamp") -> ClusterItem:
    return ClusterItem(f"e{i}", f"O{i}", "SKU-1", i * 10.0, label, {"device_id": (device,), "source": ("pda",)})


def _feed(det: IncidentDetector, start: int, end: int) -> None:
    for i in range(start, end):
        det.observe_flow(i * 10.0, {"device_id": (f"D{i % 7}",), "source": ("pda",)})
        if i % 7 == 3:
            det.mark_bad(_finding(i))


def test_changed_items_are_the_opened_replaced_cleared_and_aged_out_ones() -> None:
    det = IncidentDetector("data_quality", SETTINGS)
    _feed(det, 0, 30)
    assert sorted(det.take_changed_items()) == ["e10", "e17", "e24", "e3"]
    assert det.take_changed_items() == {}  # taken

    det.mark_bad(_finding(10, label="duplicate"))  # replaced: a new episode
    det.mark_bad(_finding(17))  # the same finding again: no change
    det.clear("e24", 300.0)
    changed = det.take_changed_items()
    assert changed == {"e10": _finding(10, label="duplicate").to_dict(), "e24": None}
    assert changed["e10"] is not None and changed["e10"]["since"] == 100.0

    det.advance(3600.0)  # every finding is older than the 30-minute window: aged out
    assert det.take_changed_items() == {"e3": None, "e10": None, "e17": None}
    assert det.to_dict()["items"] == []


def test_restore_from_the_snapshot_without_items_and_the_stored_items_continues_identically() -> None:
    a = IncidentDetector("data_quality", SETTINGS.model_copy(update={"window": timedelta(hours=2)}))
    store: dict[str, dict[str, Any]] = {}

    def save() -> None:  # what a store keeping one entry per item would do
        for key, item in a.take_changed_items().items():
            if item is None:
                store.pop(key, None)
            else:
                store[key] = json.loads(json.dumps(item))

    _feed(a, 0, 150)
    save()
    a.advance(1500.0)
    _feed(a, 150, 200)
    a.clear("e157", 1990.0)
    save()
    snapshot = a.to_dict(items=False)
    assert "items" not in snapshot
    assert sorted(store) == sorted(item["key"] for item in a.to_dict()["items"])

    b = IncidentDetector.from_dict(a.settings, json.loads(json.dumps(snapshot)), items=reversed(list(store.values())))
    assert b.to_dict(items=False) == snapshot
    assert sorted(b.to_dict()["items"], key=lambda it: it["key"]) == sorted(store.values(), key=lambda it: it["key"])
    assert b.take_changed_items() == {}  # restored as stored
    for det in (a, b):
        _feed(det, 200, 400)
    assert [e.record for e in a.advance(4000.0)] == [e.record for e in b.advance(4000.0)]
    assert a.take_changed_items() == b.take_changed_items()
