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
from zoneinfo import ZoneInfo

from alerting.decisions import Language, NotificationKind
from alerting.incident import FlowCounts, IncidentEvent
from alerting.tier import Tier
from alerting.titles import Facts, Places, boundary_places, flow_share, headline, phrase, place, title

#: Incidents listed in one grouped message; the rest are counted.
MAX_LISTED = 5

#: key -> (zh-CN, en): a notification's words, in :func:`_render`'s one layout.
_WORDS: dict[str, tuple[str, str]] = {
    "kind.firing": ("告警", "FIRING"),
    "kind.update": ("更新", "UPDATE"),
    "kind.repeat": ("提醒", "REMINDER"),
    "kind.page": ("呼叫值班", "PAGE"),
    "kind.acked": ("已认领", "ACKED"),
    "kind.resolved": ("已恢复", "RESOLVED"),
    "state.open": ("新发", "open"),
    "state.growing": ("扩大中", "growing"),
    "state.stable": ("稳定", "stable"),
    "state.recovering": ("恢复中", "recovering"),
    "state.resolved": ("已恢复", "resolved"),
    "acked_by": ("已被 {by} 认领", "ACKED by {by}"),
    # 1-based step, then (after the first pass) the 1-based pass
    "page_step": ("升级至第 {step} 级", "PAGE step {step}"),
    "page_pass": ("（第 {round} 轮）", ", pass {round}"),
    "title": ("【{tier} {word}】{headline}", "[{tier} {word}] {headline}"),
    "tier_changed": ("级别变化：{old} → {new}。", "Tier changed {old} -> {new}."),
    "resolved": ("于 {at} 恢复。", "Resolved at {at}."),
    "resolved_by": ("已由 {by} 于 {at} 恢复。", "Resolved by {by} at {at}."),
    "on_call": ("您正在值班（{user}）。", "You are on call ({user})."),
    "impact": (
        "影响：订单 {orders} 单，SKU {skus} 个，金额 {value:,.2f}",
        "Impact: {orders} orders, {skus} SKUs, value {value:,.2f}",
    ),
    "flow_drop": (
        "{at}：扫描量为正常的 {pct}%，已持续 {lasted}（最近 {window} {seen:,.0f} 次，"
        "正常约 {expected:,.0f} 次）；约 {n:,} 件包裹扫描滞后（估算）",
        "{at}: scans at {pct}% of normal for {lasted} ({seen:,.0f} in the last {window},"
        " {expected:,.0f} expected); ~{n:,} parcel scans behind (estimate)",
    ),
    "flow_surge": (
        "{at}：订单量为正常的 {pct}%，已持续 {lasted}（最近 {window} {seen:,.0f} 单，"
        "正常约 {expected:,.0f} 单）；约多出 {n:,} 单（估算）",
        "{at}: orders at {pct}% of normal for {lasted} ({seen:,.0f} in the last {window},"
        " {expected:,.0f} expected); ~{n:,} orders above normal (estimate)",
    ),
    # a span of seconds: "6 min", or "15 s" under a minute
    "span.min": ("{n:.0f} 分钟", "{n:.0f} min"),
    "span.s": ("{n:.0f} 秒", "{n:.0f} s"),
    # orders held up, orders in flight there, their value
    "held_up": (
        "受阻订单：约 {n:,} 单（该处在途 {there:,} 单），金额约 {value:,.2f}",
        "Orders held up: ~{n:,} of {there:,} in flight there, value ~{value:,.2f}",
    ),
    "estimate": ("（估算）", " (estimate)"),
    "vip": ("，VIP {n} 单", ", {n} VIP"),
    "penalty": ("，含违约赔付 {n} 单", ", {n} with SLA penalty"),
    "stop": ("。", "."),
    "promise_left": ("距最早承诺时效还有 {m:.0f} 分钟。", "Earliest promise in {m:.0f} min."),
    "promise_broken": ("已超出承诺时效 {m:.0f} 分钟。", "Promise broken {m:.0f} min ago."),
    "listed": ("- {title}【{state}】{labels}，开始于 {since}", "- {title} [{state}] {labels} since {since}"),
    "more": ("……另有 {n} 起。", "... and {n} more."),
    "ack": ("认领：{url}", "Acknowledge: {url}"),
    "resolve": ("关闭：{url}", "Resolve: {url}"),
}


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
