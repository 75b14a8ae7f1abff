"""SLA rule files, override specificity, promises and operational calendars."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from config.durations import format_duration, parse_duration
from config.rules import RuleFileError
from stream.core.calendars import CalendarRule, OperationalCalendar
from stream.core.sla import DEFAULT_SLA_PATH, SlaContext, SlaPolicy, load_sla_rules

SHANGHAI = ZoneInfo("Asia/Shanghai")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def _ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: ZoneInfo = SHANGHAI) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


def _local(instant: float, tz: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.fromtimestamp(instant, tz).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("45m", 2700), ("36h", 129600), ("2d", 172800), ("1d12h", 129600), (300, 300), ("PT2H", 7200)],
)
def test_durations_read_like_operations_write_them(text: object, seconds: float) -> None:
    parsed = parse_duration(text)
    assert parsed.total_seconds() == seconds
    assert parse_duration(format_duration(parsed)) == parsed


@pytest.mark.parametrize("text", ["soon", "-5m", "5 minutes", True])
def test_bad_durations_say_what_a_duration_looks_like(text: object) -> None:
    with pytest.raises(ValueError, match="duration|negative"):
        parse_duration(text)


def test_shipped_rules_load_and_cover_the_four_transitions() -> None:
    rules = load_sla_rules()
    starts = {s.value for stage in rules.stages.values() for s in stage.starts}
    assert {"paid", "outbound_scan", "linehaul", "hub_arrival", "out_for_delivery"} <= starts
    assert rules.stages["in_transit"].restart_on_scan and rules.stages["in_transit"].breach == "stalled"
    assert rules.calendars["cn_warehouse"].timezone == "Asia/Shanghai"


def _write(tmp_path: Path, mutate: Callable[[dict[str, Any]], object]) -> Path:
    data = yaml.safe_load(DEFAULT_SLA_PATH.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (lambda d: d["overrides"][1].update(stage="fulfilmnt"), "overrides[1].stage", "unknown stage 'fulfilmnt'"),
        (
            lambda d: d["calendars"]["cn_warehouse"].update(timezone="Asia/Shang"),
            "calendars.cn_warehouse.timezone",
            "unknown time zone",
        ),
        (
            lambda d: d["calendars"]["cn_warehouse"]["hours"].update({"mon-sat": ["25:00-20:00"]}),
            "calendars.cn_warehouse.hours",
            "not a time of day",
        ),
        (lambda d: d["stages"]["fulfilment"].update(within="soon"), "stages.fulfilment.within", "must be a duration"),
        (
            lambda d: d["stages"]["fulfilment"].update(calendar="nowhere"),
            "stages.fulfilment.calendar",
            "unknown calendar 'nowhere'",
        ),
        (
            lambda d: d["stages"]["last_mile"].update(starts=["linehaul", "out_for_delivery"]),
            "stages.last_mile.starts[0]",
            "already starts stage",
        ),
        (lambda d: d["overrides"].append(dict(d["overrides"][0])), "overrides[10].match", "same stage and match"),
        (
            lambda d: d["overrides"][0]["match"].update(sku_class="frozen"),
            "overrides[0].match.sku_class",
            "unknown sku_class",
        ),
        (lambda d: d["stages"]["fulfilment"].update(ends="paid"), "stages.fulfilment", "must come after"),
        (
            lambda d: d["incidents"].update(dimensions=["hub", "planet"]),
            "incidents.dimensions",
            "unknown dimension 'planet'",
        ),
        (lambda d: d.update(colour="red"), "colour", "Extra inputs are not permitted"),
    ],
)
def test_rule_errors_name_file_field_and_problem(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], field: str, problem: str
) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(RuleFileError) as caught:
        load_sla_rules(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert f"{field}:" in message
    assert problem in message


def _ctx(
    channel: str = "tmall",
    warehouse: str = "WH-SH-01",
    carrier: str = "ZTO",
    region: str = "Zhejiang",
    sku_class: str = "standard",
) -> SlaContext:
    return SlaContext(channel, warehouse, carrier, region, sku_class)


def test_most_specific_override_wins() -> None:
    policy = SlaPolicy(load_sla_rules())
    base = policy.resolve("last_mile", _ctx())
    sf_shanghai = policy.resolve("last_mile", _ctx(carrier="SF", region="Shanghai"))
    bulky_sf_shanghai = policy.resolve("last_mile", _ctx(carrier="SF", region="Shanghai", sku_class="bulky"))
    assert base is not None and base.rule == "last_mile" and base.within == 10 * 3600
    assert sf_shanghai is not None and sf_shanghai.rule == "last-mile-sf-tier1" and sf_shanghai.within == 6 * 3600
    # two matched dimensions beat one, even the most specific single one
    assert bulky_sf_shanghai is not None and bulky_sf_shanghai.rule == "last-mile-sf-tier1"
    cold_douyin = policy.resolve("fulfilment", _ctx(channel="douyin", sku_class="cold_chain"))
    # equally many dimensions: sku_class outranks channel
    assert cold_douyin is not None and cold_douyin.rule == "fulfilment-cold-chain"
    assert policy.resolve("first_linehaul", _ctx(channel="olist")) is None  # disabled


def test_business_time_skips_nights_weekends_and_holidays() -> None:
    policy = SlaPolicy(load_sla_rules())
    deadline = policy.resolve("fulfilment", _ctx())
    assert deadline is not None and deadline.calendar is not None
    # 24 h from Friday 2026-03-06 21:00: 1 h that evening, 13 h on Saturday, Sunday closed,
    # then Monday 08:00-12:00 and 13:00-19:00
    due = deadline.due(_ts(2026, 3, 6, 21, 0))
    assert _local(due) == datetime(2026, 3, 9, 19, 0)
    # National Day holidays (1, 2 and 5 October) and the Sunday are skipped
    due = deadline.due(_ts(2026, 9, 30, 21, 30))
    assert _local(due) == datetime(2026, 10, 6, 19, 30)
    cal = deadline.calendar
    assert cal.business_seconds(_ts(2026, 3, 6, 21, 0), due) > 0
    assert cal.business_seconds(_ts(2026, 3, 6, 21, 0), _ts(2026, 3, 7, 8, 0)) == 3600


def test_pickup_cutoffs_start_the_clock_at_the_next_pickup() -> None:
    policy = SlaPolicy(load_sla_rules())
    deadline = policy.resolve("first_linehaul", _ctx())
    assert deadline is not None
    assert _local(deadline.due(_ts(2026, 3, 3, 12, 30))) == datetime(2026, 3, 3, 18, 0) + timedelta(hours=12)
    assert _local(deadline.due(_ts(2026, 3, 3, 9, 0))) == datetime(2026, 3, 4, 0, 0)
    # after the last pickup of 16 February the next one is 19 February (17, 18 are holidays)
    assert _local(deadline.due(_ts(2026, 2, 16, 19, 0))) == datetime(2026, 2, 19, 12, 0) + timedelta(hours=12)


def test_overnight_shifts_and_daylight_saving() -> None:
    night = OperationalCalendar("night", CalendarRule(timezone="Asia/Shanghai", hours={"daily": ["22:00-06:00"]}))
    assert _local(night.add_business_time(_ts(2026, 3, 3, 12, 0), 3 * 3600)) == datetime(2026, 3, 4, 1, 0)
    assert _local(night.add_business_time(_ts(2026, 3, 4, 5, 0), 2 * 3600)) == datetime(2026, 3, 4, 23, 0)
    # Sao Paulo had DST until 2019: on 2018-11-04 local midnight did not exist
    day = OperationalCalendar("br", CalendarRule(timezone="America/Sao_Paulo", hours={"daily": ["00:00-24:00"]}))
    start = _ts(2018, 11, 3, 12, 0, tz=SAO_PAULO)
    assert day.add_business_time(start, 24 * 3600) - start == 24 * 3600
    assert datetime.fromtimestamp(start + 24 * 3600, SAO_PAULO).hour == 13  # the wall clock jumped


def test_promise_as_a_calendar_day_in_the_customers_time_zone() -> None:
    policy = SlaPolicy(load_sla_rules())
    olist = policy.promise(_ctx(channel="olist"))
    plain = policy.promise(_ctx())
    promised = datetime(2017, 11, 30, tzinfo=SAO_PAULO).timestamp()
    assert olist is not None and plain is not None
    assert olist.due(promised) == datetime(2017, 12, 1, tzinfo=SAO_PAULO).timestamp()
    assert plain.due(promised) == promised
    assert datetime.fromtimestamp(olist.due(promised), UTC).hour == 2  # -02:00 in summer


def test_calendar_without_open_hours_is_rejected() -> None:
    with pytest.raises(ValueError, match="no open hours"):
        CalendarRule(timezone="Asia/Shanghai", hours={"mon": []})
    with pytest.raises(ValueError, match="already given"):
        CalendarRule(timezone="Asia/Shanghai", hours={"mon-fri": ["08:00-12:00"], "fri": ["13:00-14:00"]})
