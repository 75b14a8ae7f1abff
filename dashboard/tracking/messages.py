"""The customer page's words in zh-CN and en (one catalogue per language, same keys).

The server renders the static words into the page; the script gets the same catalogue as
JSON for what changes live (milestones, reasons, connection state). ``{n}``/``{total}``
placeholders are filled by the script.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from dashboard.tracking.language import Lang

_ZH: Final = {
    "title": "订单跟踪",
    "brand": "订单雷达",
    "lang_switch_label": "语言",
    "status_heading": "当前状态",
    "eta_label": "预计送达",
    "eta_missing": "—",
    "delivered_at": "签收时间",
    "progress_heading": "商品进度",
    "progress_line": "{total} 件商品中有 {n} 件{milestone}",
    "progress_all": "全部 {total} 件商品{milestone}",
    "timeline_heading": "物流进度",
    "map_heading": "位置",
    "map_label": "包裹位置地图",
    "map_approximate": "大致位置",
    "map_courier": "快递员实时位置",
    "map_courier_last": "快递员最后位置",
    "age_now": "刚刚的位置",
    "age_min": "{n} 分钟前的位置",
    "age_hour": "{n} 小时前的位置",
    "age_day": "{n} 天前的位置",
    "map_sharing_ended": "已签收，位置共享已结束",
    "map_no_position": "暂无位置信息",
    "map_attribution": "地图边界：Apache ECharts",
    "map_route": "虚线：近期路线",
    "map_destination": "圆圈：收货城市（非详细地址）",
    "delay_heading": "订单延误",
    "delay_reason": "原因：{reason}",
    "delay_new_eta": "新的预计送达时间：{eta}",
    "nearby": "快递员就在附近，请留意接收包裹",
    "conn_connecting": "正在连接…",
    "conn_live": "实时更新中",
    "conn_reconnecting": "连接中断，正在重新连接…",
    "updated_at": "更新于 {time}",
    "loading": "正在加载订单信息…",
    "not_reached": "未开始",
    "not_scanned": "未扫描",
    "noscript": "此页面需要启用 JavaScript 才能显示实时进度。",
    "m_ordered": "已下单",
    "m_processing": "仓库处理中",
    "m_shipped": "已发货",
    "m_in_transit": "运输中",
    "m_out_for_delivery": "派送中",
    "m_delivered": "已签收",
    "m_delayed": "异常",
    "m_returning": "退货中",
    "m_returned": "已退货",
    "m_cancelled": "已取消",
    "r_weather": "天气影响",
    "r_traffic": "交通管制",
    "r_carrier": "承运商延误",
    "r_warehouse": "仓库处理延误",
    "r_capacity": "运力紧张",
    "r_customs": "海关查验",
    "r_address": "地址问题",
    "r_delivery_failed": "派送未成功",
    "r_backordered": "商品缺货，等待补货",
    "r_exception": "物流异常",
    "r_at_risk": "可能晚于承诺时间送达",
    "r_late": "已超过承诺送达时间",
    "eta_today": "今天 {from}–{to} 送达",
    "eta_tomorrow": "明天 {from}–{to} 送达",
    "eta_on": "{date} {from}–{to} 送达",
    "when_today": "今天 {from}–{to}",
    "when_tomorrow": "明天 {from}–{to}",
    "when_on": "{date} {from}–{to}",
    "r_other": "其他原因",
}

_EN: Final = {
    "title": "Order tracking",
    "brand": "Order Radar",
    "lang_switch_label": "Language",
    "status_heading": "Current status",
    "eta_label": "Estimated delivery",
    "eta_missing": "—",
    "delivered_at": "Delivered on",
    "progress_heading": "Items",
    "progress_line": "{n} of {total} items {milestone}",
    "progress_all": "All {total} items {milestone}",
    "timeline_heading": "Progress",
    "map_heading": "Location",
    "map_label": "Map of your parcel's location",
    "map_approximate": "Approximate location",
    "map_courier": "Courier's live location",
    "map_courier_last": "Courier's last known location",
    "age_now": "position just now",
    "age_min": "position {n} min ago",
    "age_hour": "position {n} h ago",
    "age_day": "position {n} d ago",
    "map_sharing_ended": "Delivered: live location sharing has ended",
    "map_no_position": "No location yet",
    "map_attribution": "Boundaries: Apache ECharts",
    "map_route": "Dashed line: recent route",
    "map_destination": "Ring: delivery city (not your address)",
    "delay_heading": "Your order is delayed",
    "delay_reason": "Reason: {reason}",
    "delay_new_eta": "New estimated delivery: {eta}",
    "nearby": "Your courier is nearby",
    "conn_connecting": "Connecting…",
    "conn_live": "Live",
    "conn_reconnecting": "Connection lost, reconnecting…",
    "updated_at": "Updated {time}",
    "loading": "Loading your order…",
    "not_reached": "Not yet",
    "not_scanned": "Not scanned",
    "noscript": "This page needs JavaScript to show live progress.",
    "m_ordered": "Ordered",
    "m_processing": "Processing",
    "m_shipped": "Shipped",
    "m_in_transit": "In transit",
    "m_out_for_delivery": "Out for delivery",
    "m_delivered": "Delivered",
    "m_delayed": "Delayed",
    "m_returning": "Return in progress",
    "m_returned": "Returned",
    "m_cancelled": "Cancelled",
    "r_weather": "Weather",
    "r_traffic": "Traffic restrictions",
    "r_carrier": "Carrier delay",
    "r_warehouse": "Warehouse delay",
    "r_capacity": "High parcel volume",
    "r_customs": "Customs inspection",
    "r_address": "Address problem",
    "r_delivery_failed": "Delivery attempt failed",
    "r_backordered": "Item back-ordered",
    "r_exception": "Logistics exception",
    "r_at_risk": "May arrive after the promised time",
    "r_late": "Past the promised delivery time",
    "eta_today": "Arrives today {from}–{to}",
    "eta_tomorrow": "Arrives tomorrow {from}–{to}",
    "eta_on": "Arrives {date} {from}–{to}",
    "when_today": "today {from}–{to}",
    "when_tomorrow": "tomorrow {from}–{to}",
    "when_on": "{date} {from}–{to}",
    "r_other": "Other",
}

#: The not-found page shows both languages: its body must not vary with anything.
NOT_FOUND: Final = MappingProxyType(
    {
        "title": "链接无效 · Link not available",
        "zh_heading": "找不到此跟踪链接",
        "zh_body": "链接可能已过期、已被撤销或输入有误。请联系商家获取新的跟踪链接。",
        "en_heading": "This tracking link is not available",
        "en_body": "It may have expired, been revoked or been mistyped. Please ask the shop for a new tracking link.",
    }
)

#: While a just-started server is still reading the tracking links, unknown tokens get this
#: (503, retried by the browser) instead of a wrong "not found".
WARMING_UP: Final = MappingProxyType(
    {
        "title": "请稍候 · One moment",
        "zh_heading": "正在加载，请稍候",
        "zh_body": "服务刚刚启动，页面将在几秒钟后自动刷新。",
        "en_heading": "One moment, please",
        "en_body": "The service has just started; this page reloads by itself in a few seconds.",
    }
)

CATALOGUES: Final[Mapping[Lang, Mapping[str, str]]] = MappingProxyType(
    {
        Lang.ZH_CN: MappingProxyType(_ZH),
        Lang.EN: MappingProxyType(_EN),
    }
)


def catalogue(lang: Lang) -> Mapping[str, str]:
    """All words of one language."""
    return CATALOGUES[lang]
