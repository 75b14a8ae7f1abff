"""Notification text in zh-CN and en. Pure: data and a time zone in, title and body out.

Every message leads with the tier and what happened, then the impact in orders, SKUs,
value and time to promise, then where (labels), then what to do (links). A flow incident
(``kind="flow"``: a hub's scans stopping, a channel's orders surging) counts scans, not
orders: its impact is what its check saw and the estimate made of it ("HZ-3 hub: scans at
0% of normal for 6 min ...; ~140 parcel scans behind (estimate)"), never "0 orders". Incidents are
titled by :mod:`alerting.titles` (the war-room's titles too), not with the producer's
English log title: "【P1 告警】分拨中心 HZ-3 延误 · 412 单".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from alerting.decisions import Language, NotificationKind
from alerting.incident import FlowCounts, IncidentEvent
from alerting.tier import Tier
from alerting.titles import Facts, Places, boundary_places, flow_share, headline, phrase, place, read_words, title

#: Incidents listed in one grouped message; the rest are counted.
MAX_LISTED = 5

#: key -> (zh-CN, en): a notification's words, in :func:`_render`'s one layout.
_WORDS = read_words(Path(__file__).with_name("messages.toml"))


def _say(language: Language, key: str, **values: object) -> str:
    return phrase(_WORDS, language, key, **values)


@dataclass(frozen=True)
class MessageContext:
    kind: NotificationKind
    tier: Tier
    incidents: Sequence[IncidentEvent]
    now: datetime
    language: Language
    time_zone: str = "UTC"
    previous_tier: Tier | None = None
    step: int | None = None
    round: int | None = None
    user: str | None = None
    by: str | None = None
    ack_url: str | None = None
    resolve_url: str | None = None
    #: How titles name regions; ``None``: the shipped boundaries' province names.
    places: Places | None = None


def facts_of(incident: IncidentEvent) -> Facts:
    """What the engine's incident event tells of its cause (``stream.stages.alerting_agent``
    puts the root-cause dimension in the ``dimension`` label and its values in the others:
    a hub's name in ``node``) and, for a flow incident, its observed and expected counts."""
    labels = incident.labels
    dim = labels.get("dimension", "")
    if dim == "hub":
        cause: dict[str, object] = {"hub": labels["node"]} if labels.get("node") else {}
    elif dim == "carrier_region":
        cause = {k: labels[k] for k in ("carrier", "region") if labels.get(k)}
    elif dim == "area":
        cause = {"h3_cells": []}  # the event names no cells: the area is named by its region
    else:
        cause = {dim: labels[dim]} if labels.get(dim) else {}
    flow = incident.flow.model_dump() if incident.flow is not None else {}
    return Facts(
        kind=incident.kind if incident.kind in ("data_quality", "flow") else "delay",
        dimension=dim,
        cause=cause,
        orders=incident.affected_orders,
        skus=incident.affected_skus,
        shared={"region": labels["region"]} if labels.get("region") else {},
        flow=flow,
        fallback=incident.title,
    )


def incident_title(incident: IncidentEvent, language: Language, places: Places | None = None) -> str:
    """The incident's human title in ``language``."""
    return title(facts_of(incident), places or boundary_places(), language)


def render(ctx: MessageContext) -> tuple[str, str]:
    """``(title, text)`` for one notification."""
    return _render(ctx, "zh-CN" if ctx.language == "zh-CN" else "en")


def _headline(ctx: MessageContext, language: Language) -> str:
    return headline([incident_title(i, language, ctx.places) for i in ctx.incidents], language)


def _local(ctx: MessageContext, when: datetime) -> str:
    return when.astimezone(ZoneInfo(ctx.time_zone)).strftime("%Y-%m-%d %H:%M %Z")


def _totals(incidents: Sequence[IncidentEvent]) -> tuple[int, int, float, int, int]:
    return (
        sum(i.affected_orders for i in incidents),
        sum(i.affected_skus for i in incidents),
        sum(i.order_value for i in incidents),
        sum(i.vip_orders for i in incidents),
        sum(i.penalty_orders for i in incidents),
    )


def _min_promise(ctx: MessageContext) -> float | None:
    lefts = [m for m in (i.minutes_to_promise_at(ctx.now) for i in ctx.incidents) if m is not None]
    return min(lefts) if lefts else None


def _span(seconds: float, language: Language) -> str:
    if seconds >= 60:
        return _say(language, "span.min", n=seconds / 60)
    return _say(language, "span.s", n=seconds)


def _counted(text: str, vip: int, penalty: int, language: Language, *, estimate: bool = False) -> str:
    """``text`` with its VIP and SLA-penalty orders where there are any, "(estimate)" where it
    is one, and a full stop."""
    if vip:
        text += _say(language, "vip", n=vip)
    if penalty:
        text += _say(language, "penalty", n=penalty)
    return text + (_say(language, "estimate") if estimate else "") + _say(language, "stop")


def _flow_lines(incident: IncidentEvent, flow: FlowCounts, ctx: MessageContext, language: Language) -> list[str]:
    """What a flow incident's check saw and the estimate made of it (see the module doc)."""
    facts = facts_of(incident)
    surge = flow.check == "surge"
    line = _say(
        language,
        "flow_surge" if surge else "flow_drop",
        at=place(facts, ctx.places or boundary_places(), language),
        pct=flow_share(facts) or 0,
        lasted=_span(flow.duration_s if flow.duration_s is not None else flow.window_s or 0.0, language),
        window=_span(flow.window_s or 0.0, language),
        seen=flow.observed,
        expected=flow.expected,
        n=round(flow.excess if surge else flow.shortfall),
    )
    lines = [line + _say(language, "stop")]
    if flow.in_flight:
        held = _say(language, "held_up", n=incident.affected_orders, there=flow.in_flight, value=incident.order_value)
        lines.append(_counted(held, incident.vip_orders, incident.penalty_orders, language, estimate=True))
    return lines


def _labels(incident: IncidentEvent) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(incident.labels.items()))


def _render(ctx: MessageContext, language: Language) -> tuple[str, str]:
    word = _say(language, f"kind.{ctx.kind.value}")
    if ctx.kind is NotificationKind.ACKED and ctx.by:
        word = _say(language, "acked_by", by=ctx.by)
    if ctx.kind is NotificationKind.PAGE and ctx.step is not None and (ctx.step or ctx.round):
        word = _say(language, "page_step", step=ctx.step + 1)
        if ctx.round:
            word += _say(language, "page_pass", round=ctx.round + 1)
    title = _say(language, "title", tier=ctx.tier.value, word=word, headline=_headline(ctx, language))
    flows = [i for i in ctx.incidents if i.flow is not None]
    counted = [i for i in ctx.incidents if i.flow is None]
    orders, skus, value, vip, penalty = _totals(counted)
    lines = []
    if ctx.previous_tier is not None and ctx.previous_tier is not ctx.tier:
        lines.append(_say(language, "tier_changed", old=ctx.previous_tier.value, new=ctx.tier.value))
    if ctx.kind is NotificationKind.RESOLVED:
        at = _local(ctx, ctx.now)
        lines.append(_say(language, "resolved_by", by=ctx.by, at=at) if ctx.by else _say(language, "resolved", at=at))
    if ctx.user and ctx.kind is NotificationKind.PAGE:
        lines.append(_say(language, "on_call", user=ctx.user))
    if counted or not flows:
        lines.append(_counted(_say(language, "impact", orders=orders, skus=skus, value=value), vip, penalty, language))
    for incident in flows[:MAX_LISTED]:
        if incident.flow is not None:
            lines.extend(_flow_lines(incident, incident.flow, ctx, language))
    left = _min_promise(ctx)
    if left is not None:
        lines.append(_say(language, "promise_left", m=left) if left >= 0 else _say(language, "promise_broken", m=-left))
    for incident in list(ctx.incidents)[:MAX_LISTED]:
        listed = {
            "title": incident_title(incident, language, ctx.places),
            "state": _say(language, f"state.{incident.state.value}"),
            "labels": _labels(incident),
            "since": _local(ctx, incident.first_seen),
        }
        lines.append(_say(language, "listed", **listed))
    if len(ctx.incidents) > MAX_LISTED:
        lines.append(_say(language, "more", n=len(ctx.incidents) - MAX_LISTED))
    if ctx.ack_url:
        lines.append(_say(language, "ack", url=ctx.ack_url))
    if ctx.resolve_url:
        lines.append(_say(language, "resolve", url=ctx.resolve_url))
    return title, "\n".join(lines)
