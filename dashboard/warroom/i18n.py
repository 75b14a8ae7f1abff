"""War-room labels in zh-CN and en.

Every visible word of the war-room is a key here. :func:`label` falls back to English and
then to the key itself, so a missing translation shows up as readable text, and a unit test
checks that both languages define exactly the same keys.
"""

from __future__ import annotations

from typing import Final

from alerting.titles import WORDS
from dashboard.tracking.language import DEFAULT_LANG, Lang, chosen_language, negotiate_language

# The pages' one language vocabulary (``dashboard.tracking.language``), as plain strings.
ZH: Final = Lang.ZH_CN.value
EN: Final = Lang.EN.value
DEFAULT_LANGUAGE: Final = DEFAULT_LANG.value

#: key -> (zh-CN, en)
_LABELS: dict[str, tuple[str, str]] = {
    # shell
    "title": ("订单雷达 · 作战室", "Order Radar · War room"),
    "live.open": ("实时", "Live"),
    "live.connecting": ("连接中…", "Connecting…"),
    "live.closed": ("已断开，重连中…", "Disconnected, reconnecting…"),
    "live.denied": ("未登录或无权限", "Not signed in or not allowed"),
    "live.updated": ("更新于", "Updated"),
    "user.signed_in_as": ("当前用户", "Signed in as"),
    "role.manager": ("经理", "manager"),
    "role.on-call": ("值班", "on-call"),
    "role.viewer": ("只读", "viewer"),
    # KPIs
    "kpi.skus_in_flight": ("在途SKU", "SKUs in flight"),
    "kpi.orders_in_flight": ("在途订单", "Orders in flight"),
    "kpi.on_time_rate": ("准时率", "On-time rate"),
    "kpi.at_risk": ("有延误风险", "At risk"),
    "kpi.late": ("已延误", "Late"),
    "kpi.stalled": ("停滞", "Stalled"),
    "kpi.eta_slips": ("预计晚于承诺", "ETA slips"),
    "kpi.open_incidents": ("未结事件", "Open incidents"),
    "kpi.open_alerts": ("未结告警", "Open alerts"),
    "kpi.trend": ("趋势", "Trend"),
    "kpi.vs_earlier": ("较{minutes}分钟前", "vs {minutes} min ago"),
    # map
    "map.title": ("全国实时态势", "National picture, live"),
    "map.mode": ("显示", "Show"),
    "map.mode.hex": ("六边形网格（延误率）", "Hexagons (delay rate)"),
    "map.mode.province": ("省份", "Provinces"),
    "map.layers.incidents": ("事件", "Incidents"),
    "map.layers.zones": ("中断区域", "Disruption zones"),
    "map.back": ("返回全国", "Back to national"),
    "map.national": ("全国", "National"),
    "map.delay_rate": ("延误率", "Delay rate"),
    "map.skus": ("SKU数", "SKUs"),
    "map.cell_orders": ("该网格内的订单", "Orders in this hexagon"),
    "map.click_hint": ("点击省份放大，点击六边形查看订单", "Click a province to zoom in, a hexagon to list its orders"),
    "map.route": ("订单路线", "Order route"),
    "map.draw": ("在地图上圈选中断区域", "Lasso a disruption zone on the map"),
    "map.no_data": ("暂无实时数据", "No live data yet"),
    "map.outside": ("地图范围外", "outside the map area"),
    "map.place_unknown": ("未知地点", "unknown place"),
    "map.outside_items": (
        "另有 {n:,} 个延误/风险/停滞SKU在地图范围外（已计入上方指标）",
        "{n:,} at-risk, late or stalled items are outside the map area (counted in the KPIs above)",
    ),
    "map.unplaced_items": (
        "另有 {n:,} 个延误/风险/停滞SKU没有位置，不在地图上（已计入上方指标）",
        "{n:,} at-risk, late or stalled items have no position and are not on the map (counted in the KPIs above)",
    ),
    # incidents
    "incidents.title": ("事件", "Incidents"),
    "incidents.root_cause": ("根因", "Root cause"),
    "incidents.affected_orders": ("受影响订单", "Affected orders"),
    "incidents.trend": ("趋势", "Trend"),
    "incidents.tier": ("级别", "Tier"),
    "incidents.owner": ("负责人", "Owner"),
    "incidents.state": ("状态", "State"),
    "incidents.since": ("开始于", "Since"),
    "incidents.none": ("当前没有事件", "No open incidents"),
    "incidents.orders": ("订单", "Orders"),
    "incidents.select_hint": (
        "选择一个事件以在地图上高亮并列出其订单",
        "Select an incident to highlight it on the map and list its orders",
    ),
    "incidents.unowned": ("未认领", "unclaimed"),
    "incidents.of_normal": ("正常扫描量", "of normal scans"),
    "incidents.flow": ("扫描量", "Scans"),
    "incidents.flow_counts": (
        "{observed:,} 次（预期 {expected:,} 次，{minutes} 分钟内）",
        "{observed:,} (expected {expected:,} in {minutes} min)",
    ),
    "incident.state.open": ("新发", "new"),
    "incident.state.growing": ("扩大中", "growing"),
    "incident.state.stable": ("稳定", "stable"),
    "incident.state.recovering": ("恢复中", "recovering"),
    "incident.state.resolved": ("已恢复", "resolved"),
    # incident titles' words: alerting.titles.WORDS (added below)
    "alerts.status.pending": ("待发", "pending"),
    "alerts.status.firing": ("告警中", "firing"),
    "alerts.status.acked": ("已确认", "acked"),
    "alerts.status.silenced": ("已静默", "silenced"),
    "alerts.status.inhibited": ("已抑制", "inhibited"),
    "alerts.status.resolved": ("已解决", "resolved"),
    # alerts
    "alerts.title": ("告警", "Alerts"),
    "alerts.ack": ("确认", "Ack"),
    "alerts.resolve": ("解决", "Resolve"),
    "alerts.silence": ("静默1小时", "Silence 1 h"),
    "alerts.acked_by": ("已确认", "Acked by"),
    "alerts.resolved_by": ("已解决", "Resolved by"),
    "alerts.silenced_by": ("已静默", "Silenced by"),
    "alerts.none": ("当前没有告警", "No open alerts"),
    "alerts.done": ("已完成", "Done"),
    "alerts.failed": ("操作失败", "Action failed"),
    "alerts.status": ("状态", "Status"),
    "alerts.viewer": ("只读角色不能处理告警", "Viewers cannot act on alerts"),
    # order lookup
    "order.title": ("订单查询", "Order lookup"),
    "order.placeholder": ("输入订单号", "Order id"),
    "order.search": ("查询", "Look up"),
    "order.not_found": ("未找到该订单", "Order not found"),
    "order.hint": (
        "输入订单号，或点击事件、网格中的订单",
        "Type an order id, or click an order in an incident or a hexagon",
    ),
    "order.events": ("事件", "events"),
    "order.rejected": ("被拒绝", "rejected"),
    "order.late": ("迟到", "late"),
    "order.accepted": ("已接受", "accepted"),
    "order.sku": ("SKU", "SKU"),
    "order.event_time": ("事件时间", "Event time"),
    "order.status": ("状态", "Status"),
    # history
    "history.title": ("历史", "History"),
    "history.range": ("时间范围", "Time range"),
    "history.range.15m": ("15分钟", "15 min"),
    "history.range.1h": ("1小时", "1 h"),
    "history.range.6h": ("6小时", "6 h"),
    "history.range.24h": ("24小时", "24 h"),
    "history.range.7d": ("7天", "7 days"),
    "history.throughput": ("吞吐量（事件/分钟）", "Throughput (events / min)"),
    "history.delay_rate": ("延误率", "Delay rate"),
    "history.by": ("按", "By"),
    "history.by.region": ("地区", "Region"),
    "history.by.carrier": ("承运商", "Carrier"),
    "history.by.warehouse": ("仓库", "Warehouse"),
    "history.dwell": ("各节点停留时间（分钟）", "Dwell time per node (min)"),
    "history.refresh": ("刷新", "Refresh"),
    "history.window": (
        "事件时间 {start} – {end}（截至实时指标的时刻）",
        "Event time {start} – {end} (up to the live KPIs' time)",
    ),
    # time travel
    "travel.title": ("时间回溯", "Time travel"),
    "travel.slider": ("查看过去某一分钟（左右方向键逐分钟移动）", "Show a past minute (arrow keys move a minute)"),
    "travel.live": ("回到实时", "Live"),
    "travel.earlier": ("早一分钟", "A minute earlier"),
    "travel.later": ("晚一分钟", "A minute later"),
    "travel.showing_live": ("正在显示实时数据", "Showing live data"),
    "travel.showing_past": (
        "正在显示 {at} 时的地图、指标和事件（实时更新已暂停）",
        "Showing the map, KPIs and incidents as of {at} (live updates paused)",
    ),
    "travel.no_history": ("该时间没有历史数据", "No history for this minute"),
    "history.unavailable": ("历史数据暂不可用", "History unavailable"),
    "history.no_data": ("该时间范围内没有数据", "no data in this time range"),
    "history.time": ("时间", "Time"),
    "history.node": ("节点", "Node"),
    # data quality
    "dq.title": ("数据质量", "Data quality"),
    "dq.range.24h": ("24小时", "24 h"),
    "dq.range.7d": ("7天", "7 days"),
    "dq.range.30d": ("30天", "30 days"),
    "dq.range.all": ("全部", "All"),
    "dq.missing_scans": ("漏扫率", "Missing scans"),
    "dq.away": ("偏离投递点的签收", "Delivered away from the stop"),
    "dq.by.source": ("来源", "Source"),
    "dq.by.node": ("节点", "Node"),
    "dq.by.device": ("设备", "Device"),
    "dq.by.courier": ("快递员", "Courier"),
    "dq.by.station": ("站点", "Station"),
    "dq.missing": ("漏扫", "Not scanned"),
    "dq.scans": ("扫描", "Scans"),
    "dq.rate": ("比例", "Rate"),
    "dq.away_count": ("偏离", "Away"),
    "dq.delivered": ("签收", "Delivered"),
    # disruptions
    "zones.title": ("中断区域", "Disruption zones"),
    "zones.upload": ("上传GeoJSON多边形", "Upload a GeoJSON polygon"),
    "zones.reason": ("原因", "Reason"),
    "zones.name": ("名称", "Name"),
    "zones.reason.typhoon": ("台风", "Typhoon"),
    "zones.reason.road_closure": ("道路封闭", "Road closure"),
    "zones.reason.power_cut": ("停电", "Power cut"),
    "zones.reason.other": ("其他", "Other"),
    "zones.from": ("生效时间", "Valid from"),
    "zones.until": ("失效时间", "Valid until"),
    "zones.save": ("保存区域", "Save zone"),
    "zones.delete": ("撤销", "Withdraw"),
    "zones.affected": ("受影响订单", "Affected orders"),
    "zones.none": ("当前没有中断区域", "No disruption zones"),
    "zones.draft": ("待保存的区域", "Zone to save"),
    "zones.no_draft": ("先在地图上圈选或上传一个多边形", "Lasso on the map or upload a polygon first"),
    "zones.bad_file": ("无法读取多边形", "Cannot read a polygon from this file"),
    "zones.created_by": ("创建人", "Created by"),
    # sync lag per source (panels/sync_lag.py)
    "sync_lag.title": ("各来源同步延迟", "Sync lag per source"),
    "sync_lag.source": ("来源", "Source"),
    "sync_lag.p50_s": ("中位延迟", "p50"),
    "sync_lag.p99_s": ("P99 延迟", "p99"),
    "sync_lag.count": ("记录数（15 分钟）", "Records (15 min)"),
    "sync_lag.benchmark": (
        "延迟 = 到达时间 − 事件时间；行业平均状态同步延迟 {minutes:.1f} 分钟",
        "Lag = arrival − event time; industry average status-sync lag: {minutes:.1f} min",
    ),
    # delivery statistics (panels/delivery_stats.py)
    "delivery.title": ("交付准时情况", "Deliveries against promise"),
    "delivery.since": ("从", "From"),
    "delivery.until": ("到", "Until"),
    "delivery.by": ("分组", "Group by"),
    "delivery.by.region": ("地区", "Region"),
    "delivery.by.channel": ("渠道", "Channel"),
    "delivery.by.carrier": ("承运商", "Carrier"),
    "delivery.by.warehouse": ("仓库", "Warehouse"),
    "delivery.refresh": ("刷新", "Refresh"),
    "delivery.group": ("分组", "Group"),
    "delivery.total": ("合计", "Total"),
    "delivery.unknown": ("未知", "unknown"),
    "delivery.delivered": ("已签收", "Delivered"),
    "delivery.on_time": ("准时", "On time"),
    "delivery.late": ("延误", "Late"),
    "delivery.late_7d_or_more": ("延误≥7天", "Late ≥ 7 days"),
    "delivery.open_past_promise": ("超期未签收", "Open past promise"),
    "delivery.on_time_rate": ("准时率", "On-time rate"),
    "delivery.as_of": ("未签收截至", "Open orders judged as of"),
    "delivery.bad_input": ("无法使用该时间范围", "Cannot use this range"),
    "delivery.unavailable": ("历史数据暂不可用", "History unavailable"),
    # statuses (event vocabulary)
    "status.paid": ("已支付", "paid"),
    "status.backordered": ("缺货待发", "backordered"),
    "status.picked": ("已拣货", "picked"),
    "status.packed": ("已打包", "packed"),
    "status.outbound_scan": ("出库扫描", "outbound scan"),
    "status.linehaul": ("干线运输", "linehaul"),
    "status.hub_arrival": ("到达分拨中心", "hub arrival"),
    "status.out_for_delivery": ("派送中", "out for delivery"),
    "status.delivery_failed": ("派送失败", "delivery failed"),
    "status.delivered": ("已签收", "delivered"),
    "status.exception": ("异常", "exception"),
    "status.return_requested": ("申请退货", "return requested"),
    "status.returned": ("已退货", "returned"),
    "status.cancelled": ("已取消", "cancelled"),
}
_LABELS.update(WORDS)  # incident titles' words, shared with the alert notifications


def negotiate(accept_language: str | None, choice: str | None = None) -> str:
    """The language a page request asks for: ``?lang=`` when it names one, else the browser's
    ``Accept-Language`` (the tracking page's rules), else :data:`DEFAULT_LANGUAGE`. A choice the
    browser remembers (local storage) is applied in the browser by ``warroom_language.js``."""
    return negotiate_language(accept_language, choice).value


def normalise(lang: object) -> str:
    """A supported language for whatever the browser stored (``None``, ``"zh"``, ``"en-GB"``)."""
    chosen = chosen_language(lang) if isinstance(lang, str) else None
    return chosen.value if chosen is not None else DEFAULT_LANGUAGE


def label(lang: str, key: str, **values: object) -> str:
    """The text of ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``."""
    pair = _LABELS.get(key)
    if pair is None:
        return key
    text = pair[0] if normalise(lang) == ZH else pair[1]
    return text.format(**values) if values else text


def keys() -> frozenset[str]:
    return frozenset(_LABELS)


def table() -> dict[str, list[str]]:
    """Every label as ``{key: [zh-CN, en]}``, for relabelling in the browser without a round trip."""
    return {key: [zh, en] for key, (zh, en) in _LABELS.items()}


def both(key: str) -> tuple[str, str]:
    """(zh-CN, en) of ``key``: tests use it to check a label in either language."""
    return _LABELS[key]
