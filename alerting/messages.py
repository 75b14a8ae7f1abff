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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alerting.decisions import Language, NotificationKind
from alerting.incident import FlowCounts, IncidentEvent, IncidentState
from alerting.tier import Tier
from alerting.titles import Facts, Places, boundary_places, flow_share, headline, place, title

#: Incidents listed in one grouped message; the rest are counted.
MAX_LISTED = 5

_KIND_WORD: dict[Language, dict[NotificationKind, str]] = {
    "en": {
        NotificationKind.FIRING: "FIRING",
        NotificationKind.UPDATE: "UPDATE",
        NotificationKind.REPEAT: "REMINDER",
        NotificationKind.PAGE: "PAGE",
        NotificationKind.ACKED: "ACKED",
        NotificationKind.RESOLVED: "RESOLVED",
    },
    "zh-CN": {
        NotificationKind.FIRING: "告警",
        NotificationKind.UPDATE: "更新",
        NotificationKind.REPEAT: "提醒",
        NotificationKind.PAGE: "呼叫值班",
        NotificationKind.ACKED: "已认领",
        NotificationKind.RESOLVED: "已恢复",
    },
}

_STATE_WORD: dict[Language, dict[IncidentState, str]] = {
    "en": {s: s.value for s in IncidentState},
    "zh-CN": {
        IncidentState.OPEN: "新发",
        IncidentState.GROWING: "扩大中",
        IncidentState.STABLE: "稳定",
        IncidentState.RECOVERING: "恢复中",
        IncidentState.RESOLVED: "已恢复",
    },
}


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


def _flow_lines(incident: IncidentEvent, flow: FlowCounts, ctx: MessageContext, language: Language) -> list[str]:
    """What a flow incident's check saw and the estimate made of it (see the module doc)."""
    say = _PHRASES[language]
    facts = facts_of(incident)
    window = say.span(flow.window_s or 0.0)
    lasted = say.span(flow.duration_s if flow.duration_s is not None else flow.window_s or 0.0)
    at, pct = place(facts, ctx.places or boundary_places(), language), flow_share(facts) or 0
    if flow.check == "surge":
        line = say.flow_surge(at, pct, lasted, window, flow.observed, flow.expected, round(flow.excess))
    else:
        line = say.flow_drop(at, pct, lasted, window, flow.observed, flow.expected, round(flow.shortfall))
    lines = [line + say.stop]
    if flow.in_flight:
        held = say.held_up(incident.affected_orders, flow.in_flight, incident.order_value)
        if incident.vip_orders:
            held += say.vip(incident.vip_orders)
        if incident.penalty_orders:
            held += say.penalty(incident.penalty_orders)
        lines.append(held + say.estimate + say.stop)
    return lines


def _labels(incident: IncidentEvent) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(incident.labels.items()))


@dataclass(frozen=True)
class _Phrases:
    """The words of one language; :func:`_render` puts them in the one message layout."""

    acked_by: Callable[[str], str]
    #: (1-based step, 1-based pass or ``None`` on the first pass)
    page_step: Callable[[int, int | None], str]
    title: Callable[[str, str, str], str]
    tier_changed: Callable[[str, str], str]
    #: (who resolved it or ``None``, when)
    resolved: Callable[[str | None, str], str]
    on_call: Callable[[str], str]
    impact: Callable[[int, int, float], str]
    #: (place, % of normal, how long, the window, observed, expected, shortfall or excess)
    flow_drop: Callable[[str, int, str, str, float, float, int], str]
    flow_surge: Callable[[str, int, str, str, float, float, int], str]
    #: a span of seconds: "6 min", or "15 s" under a minute
    span: Callable[[float], str]
    #: (orders held up, orders in flight there, their value)
    held_up: Callable[[int, int, float], str]
    estimate: str
    vip: Callable[[int], str]
    penalty: Callable[[int], str]
    stop: str
    promise_left: Callable[[float], str]
    promise_broken: Callable[[float], str]
    #: (title, state word, labels, first seen)
    listed: Callable[[str, str, str, str], str]
    more: Callable[[int], str]
    ack: Callable[[str], str]
    resolve: Callable[[str], str]


_PHRASES: dict[Language, _Phrases] = {
    "en": _Phrases(
        acked_by=lambda by: f"ACKED by {by}",
        page_step=lambda step, round_: f"PAGE step {step}" + (f", pass {round_}" if round_ else ""),
        title=lambda tier, word, headline: f"[{tier} {word}] {headline}",
        tier_changed=lambda old, new: f"Tier changed {old} -> {new}.",
        resolved=lambda by, at: "Resolved" + (f" by {by}" if by else "") + f" at {at}.",
        on_call=lambda user: f"You are on call ({user}).",
        impact=lambda orders, skus, value: f"Impact: {orders} orders, {skus} SKUs, value {value:,.2f}",
        flow_drop=lambda at, pct, lasted, window, seen, expected, n: (
            f"{at}: scans at {pct}% of normal for {lasted} ({seen:,.0f} in the last {window},"
            f" {expected:,.0f} expected); ~{n:,} parcel scans behind (estimate)"
        ),
        flow_surge=lambda at, pct, lasted, window, seen, expected, n: (
            f"{at}: orders at {pct}% of normal for {lasted} ({seen:,.0f} in the last {window},"
            f" {expected:,.0f} expected); ~{n:,} orders above normal (estimate)"
        ),
        held_up=lambda n, there, value: f"Orders held up: ~{n:,} of {there:,} in flight there, value ~{value:,.2f}",
        estimate=" (estimate)",
        span=lambda s: f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s",
        vip=lambda n: f", {n} VIP",
        penalty=lambda n: f", {n} with SLA penalty",
        stop=".",
        promise_left=lambda m: f"Earliest promise in {m:.0f} min.",
        promise_broken=lambda m: f"Promise broken {m:.0f} min ago.",
        listed=lambda title, state, labels, since: f"- {title} [{state}] {labels} since {since}",
        more=lambda n: f"... and {n} more.",
        ack=lambda url: f"Acknowledge: {url}",
        resolve=lambda url: f"Resolve: {url}",
    ),
    "zh-CN": _Phrases(
        acked_by=lambda by: f"已被 {by} 认领",
        page_step=lambda step, round_: f"升级至第 {step} 级" + (f"（第 {round_} 轮）" if round_ else ""),
        title=lambda tier, word, headline: f"【{tier} {word}】{headline}",
        tier_changed=lambda old, new: f"级别变化：{old} → {new}。",
        resolved=lambda by, at: ("已由 " + by + " " if by else "") + f"于 {at} 恢复。",
        on_call=lambda user: f"您正在值班（{user}）。",
        impact=lambda orders, skus, value: f"影响：订单 {orders} 单，SKU {skus} 个，金额 {value:,.2f}",
        flow_drop=lambda at, pct, lasted, window, seen, expected, n: (
            f"{at}：扫描量为正常的 {pct}%，已持续 {lasted}（最近 {window} {seen:,.0f} 次，"
            f"正常约 {expected:,.0f} 次）；约 {n:,} 件包裹扫描滞后（估算）"
        ),
        flow_surge=lambda at, pct, lasted, window, seen, expected, n: (
            f"{at}：订单量为正常的 {pct}%，已持续 {lasted}（最近 {window} {seen:,.0f} 单，"
            f"正常约 {expected:,.0f} 单）；约多出 {n:,} 单（估算）"
        ),
        held_up=lambda n, there, value: f"受阻订单：约 {n:,} 单（该处在途 {there:,} 单），金额约 {value:,.2f}",
        estimate="（估算）",
        span=lambda s: f"{s / 60:.0f} 分钟" if s >= 60 else f"{s:.0f} 秒",
        vip=lambda n: f"，VIP {n} 单",
        penalty=lambda n: f"，含违约赔付 {n} 单",
        stop="。",
        promise_left=lambda m: f"距最早承诺时效还有 {m:.0f} 分钟。",
        promise_broken=lambda m: f"已超出承诺时效 {m:.0f} 分钟。",
        listed=lambda title, state, labels, since: f"- {title}【{state}】{labels}，开始于 {since}",
        more=lambda n: f"……另有 {n} 起。",
        ack=lambda url: f"认领：{url}",
        resolve=lambda url: f"关闭：{url}",
    ),
}


def _render(ctx: MessageContext, language: Language) -> tuple[str, str]:
    say = _PHRASES[language]
    word = _KIND_WORD[language][ctx.kind]
    if ctx.kind is NotificationKind.ACKED and ctx.by:
        word = say.acked_by(ctx.by)
    if ctx.kind is NotificationKind.PAGE and ctx.step is not None and (ctx.step or ctx.round):
        word = say.page_step(ctx.step + 1, ctx.round + 1 if ctx.round else None)
    title = say.title(ctx.tier.value, word, _headline(ctx, language))
    flows = [i for i in ctx.incidents if i.flow is not None]
    counted = [i for i in ctx.incidents if i.flow is None]
    orders, skus, value, vip, penalty = _totals(counted)
    lines = []
    if ctx.previous_tier is not None and ctx.previous_tier is not ctx.tier:
        lines.append(say.tier_changed(ctx.previous_tier.value, ctx.tier.value))
    if ctx.kind is NotificationKind.RESOLVED:
        lines.append(say.resolved(ctx.by, _local(ctx, ctx.now)))
    if ctx.user and ctx.kind is NotificationKind.PAGE:
        lines.append(say.on_call(ctx.user))
    if counted or not flows:
        impact = say.impact(orders, skus, value)
        if vip:
            impact += say.vip(vip)
        if penalty:
            impact += say.penalty(penalty)
        lines.append(impact + say.stop)
    for incident in flows[:MAX_LISTED]:
        if incident.flow is not None:
            lines.extend(_flow_lines(incident, incident.flow, ctx, language))
    left = _min_promise(ctx)
    if left is not None:
        lines.append(say.promise_left(left) if left >= 0 else say.promise_broken(-left))
    for incident in list(ctx.incidents)[:MAX_LISTED]:
        lines.append(
            say.listed(
                incident_title(incident, language, ctx.places),
                _STATE_WORD[language][incident.state],
                _labels(incident),
                _local(ctx, incident.first_seen),
            )
        )
    if len(ctx.incidents) > MAX_LISTED:
        lines.append(say.more(len(ctx.incidents) - MAX_LISTED))
    if ctx.ack_url:
        lines.append(say.ack(ctx.ack_url))
    if ctx.resolve_url:
        lines.append(say.resolve(ctx.resolve_url))
    return title, "\n".join(lines)
