"""The war-room's panels, one module each, and the page that arranges them.

Each panel module has ``layout(deps) -> Component`` and ``register(app, deps) -> None``
(its callbacks, bound to the app and the injected dependencies: no module-level state).
"""

from __future__ import annotations

from types import ModuleType

from dash import Dash, html

from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.panels import (
    alerts,
    data_quality,
    delivery_stats,
    disruptions,
    history_charts,
    incidents,
    kpis,
    map,
    order_lookup,
    shell,
    sync_lag,
    time_travel,
)

PANELS: tuple[ModuleType, ...] = (
    shell,
    kpis,
    map,
    incidents,
    alerts,
    order_lookup,
    disruptions,
    history_charts,
    delivery_stats,
    data_quality,
    sync_lag,
    time_travel,
)


def page(deps: WarroomDeps) -> html.Div:
    """Header, the time control and KPIs on top, the map beside incidents and alerts, then the look-ups, history
    and deliveries against promise."""
    return html.Div(
        [
            *shell.stores(),
            shell.layout(deps),
            time_travel.layout(deps),
            kpis.layout(deps),
            html.Main(
                [
                    map.layout(deps),
                    html.Div([incidents.layout(deps), alerts.layout(deps)], className="side"),
                ],
                className="row row-main",
            ),
            html.Div([order_lookup.layout(deps), disruptions.layout(deps)], className="row grid-2"),
            history_charts.layout(deps),
            delivery_stats.layout(deps),
            data_quality.layout(deps),
            sync_lag.layout(deps),
        ],
        className="warroom",
    )


def register_all(app: Dash, deps: WarroomDeps) -> None:
    for panel in PANELS:
        panel.register(app, deps)
