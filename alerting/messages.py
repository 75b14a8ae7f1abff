"""Notification text in zh-CN and en. Pure: data and a time zone in, title and body out.

Every message leads with the tier and what happened, then the impact in orders, SKUs,
value and time to promise, then where (labels), then what to do (links).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alerting.decisions import Language, NotificationKind
from alerting.incident import IncidentEvent, IncidentState
from alerting.tier import Tier

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


def render(ctx: MessageContext) -> tuple[str, str]:
    """``(title, text)`` for one notification."""
    return _render_zh(ctx) if ctx.language == "zh-CN" else _render_en(ctx)


def _headline(ctx: MessageContext) -> str:
    first = ctx.incidents[0].title if ctx.incidents else ""
    more = len(ctx.incidents) - 1
    if more > 0:
        return f"{first} (+{more})" if ctx.language == "en" else f"{first}（另 {more} 起）"
    return first


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


def _labels(incident: IncidentEvent) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(incident.labels.items()))


def _render_en(ctx: MessageContext) -> tuple[str, str]:
    word = _KIND_WORD["en"][ctx.kind]
    if ctx.kind is NotificationKind.ACKED and ctx.by:
        word = f"ACKED by {ctx.by}"
    if ctx.kind is NotificationKind.PAGE and ctx.step is not None and (ctx.step or ctx.round):
        word = f"PAGE step {ctx.step + 1}" + (f", pass {ctx.round + 1}" if ctx.round else "")
    title = f"[{ctx.tier.value} {word}] {_headline(ctx)}"
    orders, skus, value, vip, penalty = _totals(ctx.incidents)
    lines = []
    if ctx.previous_tier is not None and ctx.previous_tier is not ctx.tier:
        lines.append(f"Tier changed {ctx.previous_tier.value} -> {ctx.tier.value}.")
    if ctx.kind is NotificationKind.RESOLVED:
        lines.append("Resolved" + (f" by {ctx.by}" if ctx.by else "") + f" at {_local(ctx, ctx.now)}.")
    if ctx.user and ctx.kind is NotificationKind.PAGE:
        lines.append(f"You are on call ({ctx.user}).")
    impact = f"Impact: {orders} orders, {skus} SKUs, value {value:,.2f}"
    if vip:
        impact += f", {vip} VIP"
    if penalty:
        impact += f", {penalty} with SLA penalty"
    lines.append(impact + ".")
    left = _min_promise(ctx)
    if left is not None:
        lines.append(
            f"Earliest promise in {left:.0f} min." if left >= 0 else f"Promise broken {-left:.0f} min ago."
        )
    for incident in list(ctx.incidents)[:MAX_LISTED]:
        lines.append(
            f"- {incident.title} [{_STATE_WORD['en'][incident.state]}] {_labels(incident)}"
            f" since {_local(ctx, incident.first_seen)}"
        )
    if len(ctx.incidents) > MAX_LISTED:
        lines.append(f"... and {len(ctx.incidents) - MAX_LISTED} more.")
    if ctx.ack_url:
        lines.append(f"Acknowledge: {ctx.ack_url}")
    if ctx.resolve_url:
        lines.append(f"Resolve: {ctx.resolve_url}")
    return title, "\n".join(lines)


def _render_zh(ctx: MessageContext) -> tuple[str, str]:
    word = _KIND_WORD["zh-CN"][ctx.kind]
    if ctx.kind is NotificationKind.ACKED and ctx.by:
        word = f"已被 {ctx.by} 认领"
    if ctx.kind is NotificationKind.PAGE and ctx.step is not None and (ctx.step or ctx.round):
        word = f"升级至第 {ctx.step + 1} 级" + (f"（第 {ctx.round + 1} 轮）" if ctx.round else "")
    title = f"【{ctx.tier.value} {word}】{_headline(ctx)}"
    orders, skus, value, vip, penalty = _totals(ctx.incidents)
    lines = []
    if ctx.previous_tier is not None and ctx.previous_tier is not ctx.tier:
        lines.append(f"级别变化：{ctx.previous_tier.value} → {ctx.tier.value}。")
    if ctx.kind is NotificationKind.RESOLVED:
        lines.append(("已由 " + ctx.by + " " if ctx.by else "") + f"于 {_local(ctx, ctx.now)} 恢复。")
    if ctx.user and ctx.kind is NotificationKind.PAGE:
        lines.append(f"您正在值班（{ctx.user}）。")
    impact = f"影响：订单 {orders} 单，SKU {skus} 个，金额 {value:,.2f}"
    if vip:
        impact += f"，VIP {vip} 单"
    if penalty:
        impact += f"，含违约赔付 {penalty} 单"
    lines.append(impact + "。")
    left = _min_promise(ctx)
    if left is not None:
        lines.append(f"距最早承诺时效还有 {left:.0f} 分钟。" if left >= 0 else f"已超出承诺时效 {-left:.0f} 分钟。")
    for incident in list(ctx.incidents)[:MAX_LISTED]:
        lines.append(
            f"- {incident.title}【{_STATE_WORD['zh-CN'][incident.state]}】{_labels(incident)}"
            f"，开始于 {_local(ctx, incident.first_seen)}"
        )
    if len(ctx.incidents) > MAX_LISTED:
        lines.append(f"……另有 {len(ctx.incidents) - MAX_LISTED} 起。")
    if ctx.ack_url:
        lines.append(f"认领：{ctx.ack_url}")
    if ctx.resolve_url:
        lines.append(f"关闭：{ctx.resolve_url}")
    return title, "\n".join(lines)
