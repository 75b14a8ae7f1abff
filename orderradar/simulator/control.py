"""The run-time control language: one command per line, from a file or stdin.

::

    +hub_outage:hub=HZ-3          start a scenario (same syntax as --scenario)
    +flash_sale:factor=20,minutes=5
    -hub_outage                   end every active hub_outage
    -hub_outage:hub=HZ-3          end only those with these parameter values
    ?                             log the active scenarios
    # a comment                   (blank lines are ignored too)

Commands take effect at the simulated time they are read. A control file is read from
its beginning and then followed as it grows, so a prepared file is a scenario script.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .scenarios import Scenario, ScenarioError, parse_scenario, split_spec


class ControlError(ValueError):
    """A control line is malformed; the message quotes it and says why."""


@dataclass(frozen=True)
class Activate:
    scenario: Scenario


@dataclass(frozen=True)
class Deactivate:
    name: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShowStatus:
    pass


ControlCommand = Activate | Deactivate | ShowStatus


def parse_control_line(line: str) -> ControlCommand | None:
    """The command on ``line``, or ``None`` for a blank line or comment."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text == "?":
        return ShowStatus()
    op, spec = text[0], text[1:].strip()
    try:
        if op == "+":
            return Activate(parse_scenario(spec))
        if op == "-":
            name, params = split_spec(spec)
            return Deactivate(name, params)
    except ScenarioError as exc:
        raise ControlError(f"control line {text!r}: {exc}") from None
    raise ControlError(f"control line {text!r}: expected +scenario[:params], -scenario[:params] or ?")
