"""The control language and the control file follower."""

from __future__ import annotations

import asyncio

import pytest

from orderradar.simulator.control import (
    Activate,
    ControlError,
    Deactivate,
    ShowStatus,
    parse_control_line,
)
from orderradar.simulator.control_feed import follow_file
from orderradar.simulator.scenarios import HubOutage


def test_control_lines_parse_into_commands():
    assert parse_control_line("+hub_outage:hub=HZ-3\n") == Activate(HubOutage(hub="HZ-3"))
    assert parse_control_line("-hub_outage") == Deactivate("hub_outage", {})
    assert parse_control_line(" -hub_outage:hub=HZ-3 ") == Deactivate("hub_outage", {"hub": "HZ-3"})
    assert parse_control_line("?") == ShowStatus()
    assert parse_control_line("") is None
    assert parse_control_line("# start the storm at noon") is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("hub_outage", "expected \\+scenario"),
        ("+hub_outage:hub=NOPE", "unknown hub"),
        ("-volcano", "unknown scenario 'volcano'"),
    ],
)
def test_bad_control_lines_quote_the_line_and_the_problem(line, message):
    with pytest.raises(ControlError, match=message) as info:
        parse_control_line(line)
    assert repr(line.strip()) in str(info.value)


def test_control_file_is_read_from_the_start_and_followed_as_it_grows(tmp_path):
    path = tmp_path / "control.txt"

    async def scenario() -> list[str]:
        lines = follow_file(path, poll_s=0.01)
        path.write_text("+flash_sale\n-flash")  # the second line is not finished yet
        got = [await asyncio.wait_for(anext(lines), 5)]
        with path.open("a") as f:
            f.write("_sale\n?\n")
        got.append(await asyncio.wait_for(anext(lines), 5))
        got.append(await asyncio.wait_for(anext(lines), 5))
        await lines.aclose()
        return got

    assert asyncio.run(scenario()) == ["+flash_sale", "-flash_sale", "?"]
