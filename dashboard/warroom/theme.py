"""The war-room's look: colours, scales and the styling every chart shares. Pure plotly.

One place for the palette: the map (:mod:`dashboard.warroom.map_figures`), the charts
(:mod:`dashboard.warroom.charts`) and the browser's view code (``assets/warroom_views.js``)
draw with these values.
"""

from __future__ import annotations

import plotly.graph_objects as go

FONT = '"Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", "Helvetica Neue", Arial, sans-serif'
BG = "#0b1220"
#: The sea and the map's margins (the map keeps its aspect ratio, so margins show).
SEA = "#0d1628"
PANEL = "#111a2e"
GRID = "#22304d"
TEXT = "#e6edf7"
MUTED = "#8a9bb8"
LAND = "#17233b"
BORDER = "#3a4d73"
ACCENT = "#3fa9f5"
TIER_COLOURS = {"P1": "#ff4d4f", "P2": "#ff9f43", "P3": "#ffd166", "P4": "#8a9bb8"}
STATUS_COLOURS = {"ok": "#34c38f", "at_risk": "#ffd166", "late": "#ff9f43", "stalled": "#ff4d4f"}
#: Delay rate colours: cividis (blue through grey to yellow), readable with every common colour
#: vision deficiency and in greyscale (lightness rises with the delay, so worse is brighter
#: on the dark map); fixed range so colours mean the same thing minute to minute.
DELAY_SCALE = [
    [0.0, "#00346e"],
    [0.15, "#3c4a6b"],
    [0.3, "#5b5f6d"],
    [0.45, "#757575"],
    [0.6, "#928c78"],
    [0.75, "#b0a572"],
    [0.9, "#e1cc5c"],
    [1.0, "#ffe945"],
]
DELAY_MAX = 0.5
SERIES_COLOURS = [
    "#3fa9f5",
    "#ff9f43",
    "#34c38f",
    "#e05dd3",
    "#ffd166",
    "#7f8cff",
    "#4dd0e1",
    "#ff6b6b",
    "#a3e635",
    "#f472b6",
]


def chart(figure: go.Figure, title: str, height: int = 300) -> go.Figure:
    figure.update_layout(
        title={"text": title, "font": {"size": 14, "color": TEXT}, "x": 0.01, "y": 0.97},
        height=height,
        margin={"l": 48, "r": 12, "t": 36, "b": 36},
        paper_bgcolor=PANEL,
        plot_bgcolor=PANEL,
        font={"family": FONT, "color": TEXT, "size": 12},
        legend={"orientation": "h", "y": -0.18, "font": {"color": MUTED}},
        xaxis={"gridcolor": GRID, "zeroline": False, "linecolor": GRID},
        yaxis={"gridcolor": GRID, "zeroline": False, "linecolor": GRID},
        hoverlabel={"bgcolor": PANEL, "font": {"family": FONT}},
    )
    return figure


def blank() -> go.Figure:
    """A figure with nothing in it, in the theme's colours (a placeholder until data comes)."""
    figure = go.Figure()
    figure.update_layout(
        paper_bgcolor=SEA,
        plot_bgcolor=SEA,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return figure


def empty_figure(message: str, height: int = 300) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(
        text=message, showarrow=False, font={"color": MUTED, "size": 14}, x=0.5, y=0.5, xref="paper", yref="paper"
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return chart(figure, "", height)
