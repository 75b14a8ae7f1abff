"""Customer milestones: every status maps, nothing internal leaks, split shipments count."""

from __future__ import annotations

from dashboard.tracking.language import Lang
from dashboard.tracking.messages import CATALOGUES, NOT_FOUND
from dashboard.tracking.milestones import (
    LADDER,
    DelayReason,
    Milestone,
    Progress,
    delay_reason_of,
    ladder_rank,
    milestone_of,
    milestone_table,
    progress_summary,
    reason_category,
)
from stream.contract import STAGE_RANK, Status


def test_every_status_has_a_milestone_and_the_ladder_follows_the_stage_rank() -> None:
    for status in Status:
        assert isinstance(milestone_of(status), Milestone)
    # A later stage never maps to an earlier customer step.
    forward = sorted((s for s in Status if milestone_of(s) in LADDER), key=lambda s: STAGE_RANK[s])
    ranks = [ladder_rank(milestone_of(s)) for s in forward]
    assert ranks == sorted(ranks)


def test_the_customer_words_for_the_ladder() -> None:
    zh, en = CATALOGUES[Lang.ZH_CN], CATALOGUES[Lang.EN]
    assert [zh[f"m_{m}"] for m in LADDER] == ["已下单", "仓库处理中", "已发货", "运输中", "派送中", "已签收"]
    assert [en[f"m_{m}"] for m in LADDER] == [
        "Ordered",
        "Processing",
        "Shipped",
        "In transit",
        "Out for delivery",
        "Delivered",
    ]
    assert (zh["m_delayed"], en["m_delayed"]) == ("异常", "Delayed")


def test_catalogues_have_the_same_keys_and_cover_every_milestone_and_reason() -> None:
    zh, en = CATALOGUES[Lang.ZH_CN], CATALOGUES[Lang.EN]
    assert set(zh) == set(en)
    for m in Milestone:
        assert f"m_{m.value}" in zh
    for r in DelayReason:
        assert f"r_{r.value}" in zh
    assert NOT_FOUND["zh_heading"] and NOT_FOUND["en_heading"]


def test_no_internal_status_name_is_shown_as_a_customer_word() -> None:
    words = " ".join(CATALOGUES[Lang.EN].values()).lower()
    for internal in ("hub_arrival", "linehaul", "outbound_scan", "picked", "packed", "device", "node"):
        assert internal not in words


def test_delays_implied_by_a_status() -> None:
    assert delay_reason_of(Status.EXCEPTION) is DelayReason.EXCEPTION
    assert delay_reason_of(Status.DELIVERY_FAILED) is DelayReason.DELIVERY_FAILED
    assert delay_reason_of(Status.LINEHAUL) is None


def test_free_text_reasons_never_reach_the_customer() -> None:
    assert reason_category("Weather") is DelayReason.WEATHER
    assert reason_category("driver Zhang called in sick at node SH-07") is DelayReason.OTHER
    assert reason_category(None) is DelayReason.OTHER


def test_progress_of_a_split_shipment_furthest_first() -> None:
    summary = progress_summary([Status.OUT_FOR_DELIVERY, Status.HUB_ARRIVAL, Status.OUT_FOR_DELIVERY])
    assert summary == [Progress(Milestone.OUT_FOR_DELIVERY, 2, 3), Progress(Milestone.IN_TRANSIT, 1, 3)]


def test_the_table_for_the_script_matches_the_python_mapping() -> None:
    table = milestone_table()
    assert table["ladder"] == [m.value for m in LADDER]
    of_status = table["of_status"]
    assert isinstance(of_status, dict)
    assert {Status(s): Milestone(m) for s, m in of_status.items()} == {s: milestone_of(s) for s in Status}


def test_a_positions_age_is_worded_in_both_languages() -> None:
    zh, en = CATALOGUES[Lang.ZH_CN], CATALOGUES[Lang.EN]
    assert en["age_min"].replace("{n}", "40") == "position 40 min ago"
    assert zh["age_min"].replace("{n}", "40") == "40 分钟前的位置"
    for key in ("age_hour", "age_day"):
        assert "{n}" in zh[key] and "{n}" in en[key]
    # Only a fresh courier fix is "live"; an older one is the last known location.
    assert "live" not in en["map_courier_last"].lower() and "实时" not in zh["map_courier_last"]
