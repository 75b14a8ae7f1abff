"""Every component id of the war-room, in one place (prefixed by the panel that owns it).

Callbacks, the browser scripts in ``assets/`` and the tests use these names instead of
repeating strings, so a renamed id breaks at import time rather than silently
disconnecting a callback. Ids of repeated items (one per KPI, alert, incident, zone or
order link) are pattern-matching dicts built by the functions at the end.
"""

from __future__ import annotations

from typing import Any

# Shell: header, language, live feed
LANG = "shell-lang"  # dcc.Store(storage_type="local"): "zh-CN" | "en"
LANG_SWITCH = "shell-lang-switch"
LIVE_STATUS = "shell-live-status"  # written by assets/warroom_live.js: state, user, role, seq
LIVE_SEQ = "shell-live-seq"  # written by assets/warroom_live.js: the last seq, as it moves
LIVE_BOOT = "shell-live-boot"  # starts the live feed once the layout is on the page
LIVE_BADGE = "shell-live-badge"
USER_LABEL = "shell-user"
TIMEZONE = "shell-timezone"  # dcc.Store: the browser's IANA time zone
LIVE_STORE_PREFIX = "live-"  # + channel: written by assets/warroom_live.js
I18N = "i18n"  # pattern-matching type of every translated span
I18N_TABLE = "shell-i18n-table"  # dcc.Store: i18n.table(), for the browser-side relabelling

# Map
MAP_GRAPH = "map-graph"
MAP_MODE = "map-mode"  # "hex" | "province"
MAP_LAYERS = "map-layers"  # ["incidents", "zones"]
MAP_VIEW = "map-view"  # dcc.Store {"province": adcode | None}
MAP_BACK = "map-back"
MAP_BREADCRUMB = "map-breadcrumb"
MAP_RENDERED = "map-rendered"  # dcc.Store: what the figure holds, for Patch decisions
MAP_CELL_ORDERS = "map-cell-orders"
MAP_DRAW = "map-draw"  # arms the lasso to draw a disruption zone
MAP_COVERAGE = "map-coverage"  # what the KPIs count that the map cannot show
MAP_CELLS = "map-cells"  # dcc.Store: key of the heatmap cell set (browser); a change redraws the map
MAP_REDRAW = "map-redraw"  # dcc.Store: set by the browser when only the server can draw an update
MAP_OUTSIDE = "map-outside"  # dcc.Store panels/map.region_cells: roll-up cells, those outside the map, provinces

# KPIs
KPI_STRIP = "kpi-strip"
KPI_HISTORY = "kpi-history"  # dcc.Store: trends.Trend
KPI_SPEC = "kpi-spec"  # dcc.Store: panels.kpis.spec(), for the browser's KPI callback

# Incidents
INCIDENT_TABLE = "incident-table"
INCIDENT_SELECTED = "incident-selected"
INCIDENT_DETAIL = "incident-detail"
INCIDENT_TREND = "incident-trend"

# Alerts
ALERT_LIST = "alert-list"
ALERT_RESULT = "alert-result"  # dcc.Store: answer to the last action (browser fetch)
ALERT_FEEDBACK = "alert-feedback"

# Order lookup
ORDER_INPUT = "order-input"
ORDER_SEARCH = "order-search"
ORDER_REQUEST = "order-request"  # dcc.Store {"order_id", "n"}
ORDER_DATA = "order-data"  # dcc.Store: answer of GET /api/v1/orders/{id}
ORDER_ROUTE = "order-route"  # dcc.Store {"lats", "lons", "labels"} for the map
ORDER_TIMELINE = "order-timeline"
ORDER_SUMMARY = "order-summary"

# History
HISTORY_RANGE = "history-range"
HISTORY_DELAY_BY = "history-delay-by"
HISTORY_REFRESH = "history-refresh"
HISTORY_TICK = "history-tick"
HISTORY_THROUGHPUT = "history-throughput"
HISTORY_DELAY = "history-delay"
HISTORY_DWELL = "history-dwell"
HISTORY_WINDOW = "history-window"  # the event-time range the charts show
HISTORY_ANCHOR = "history-anchor"  # dcc.Store: the minute of the live KPIs' time (ISO), where history ends

# Disruption zones
ZONE_LIST = "zone-list"
ZONE_REASON = "zone-reason"
ZONE_NAME = "zone-name"
ZONE_FROM = "zone-from"
ZONE_UNTIL = "zone-until"
ZONE_UPLOAD = "zone-upload"
ZONE_SAVE = "zone-save"
ZONE_DRAFT = "zone-draft"  # dcc.Store: zone_drafts draft, not saved yet
ZONE_DRAFT_INFO = "zone-draft-info"
ZONE_SELECTED = "zone-selected"
ZONE_RESULT = "zone-result"  # dcc.Store: answer to the last save/withdraw
ZONE_FEEDBACK = "zone-feedback"
ZONE_AFFECTED = "zone-affected"


def live_store(channel: str) -> str:
    return LIVE_STORE_PREFIX + channel


def kpi_value(kpi: str) -> str:
    return f"kpi-value-{kpi}"


def kpi_delta(kpi: str) -> str:
    return f"kpi-delta-{kpi}"


def kpi_detail(kpi: str) -> str:
    return f"kpi-detail-{kpi}"


def kpi_spark(kpi: str) -> str:
    return f"kpi-spark-{kpi}"


def kpi_card(kpi: str) -> str:
    return f"kpi-card-{kpi}"


def incident_row(incident_id: Any) -> dict[str, Any]:
    return {"type": "incident-row", "incident": incident_id}


def alert_action(action: Any, alert_id: Any, matchers: Any) -> dict[str, Any]:
    """An alert button; ``matchers`` (JSON list) is set only on silence buttons."""
    return {"type": "alert-action", "action": action, "alert": alert_id, "matchers": matchers}


def alert_card(alert_id: str) -> dict[str, Any]:
    return {"type": "alert-card", "alert": alert_id}


def order_link(order_id: Any, at: Any) -> dict[str, Any]:
    """A link opening an order in the lookup; ``at`` names the panel showing it."""
    return {"type": "order-link", "order": order_id, "at": at}


def zone_pick(zone_id: Any) -> dict[str, Any]:
    return {"type": "zone-pick", "zone": zone_id}


def zone_delete(zone_id: Any) -> dict[str, Any]:
    return {"type": "zone-delete", "zone": zone_id}
