"""The war-room's charts beside the map: KPI sparklines, an incident's trend, the history
charts and an order's timeline. Data in, ``go.Figure`` out; pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboard.warroom.i18n import label
from dashboard.warroom.live import Incident
from dashboard.warroom.localtime import localised
from dashboard.warroom.theme import ACCENT, BG, GRID, MUTED, SERIES_COLOURS, TIER_COLOURS, chart, empty_figure


def sparkline(values: Sequence[float | None], colour: str = ACCENT) -> go.Figure:
    """A tiny trend line without axes, for a KPI card. The y axis spans the values, not zero
    to them: 200,000 SKUs moving by a few hundred filled to zero is a solid block."""
    figure = go.Figure(
        go.Scatter(
            y=list(values), mode="lines", line={"color": colour, "width": 2, "shape": "spline"}, hoverinfo="skip"
        )
    )
    figure.update_layout(
        margin={"l": 0, "r": 0, "t": 2, "b": 2},
        height=36,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        showlegend=False,
        xaxis={"visible": False, "fixedrange": True},
        yaxis={"visible": False, "fixedrange": True, "autorange": True},
    )
    return figure


def incident_trend(incident: Incident, lang: str) -> go.Figure:
    colour = TIER_COLOURS.get(incident.tier, ACCENT)
    figure = go.Figure(go.Bar(y=list(incident.trend), marker={"color": colour}, hovertemplate="%{y}<extra></extra>"))
    figure = chart(figure, f"{label(lang, 'incidents.trend')} · {incident.tier}", height=170)
    figure.update_layout(margin={"l": 36, "r": 8, "t": 30, "b": 20}, xaxis={"visible": False})
    return figure


def throughput_figure(frame: pd.DataFrame, lang: str, tz: str = "UTC") -> go.Figure:
    """Stacked events per minute by status (``time, status, events``), times in ``tz``."""
    title = label(lang, "history.throughput")
    frame = localised(frame, tz)
    if frame.empty:
        return empty_figure(f"{title} · {label(lang, 'history.no_data')}")
    figure = go.Figure()
    for i, (status, part) in enumerate(sorted(frame.groupby("status"), key=lambda kv: str(kv[0]))):
        figure.add_trace(
            go.Scatter(
                x=part["time"],
                y=part["events"],
                name=label(lang, f"status.{status}"),
                stackgroup="events",
                mode="lines",
                line={"width": 0.8},
                marker={"color": SERIES_COLOURS[i % len(SERIES_COLOURS)]},
            )
        )
    figure = chart(figure, title)
    figure.update_layout(hovermode="x unified")
    return figure


def delay_rate_figure(
    frame: pd.DataFrame, by: str, lang: str, names: dict[str, str] | None = None, top: int = 8, tz: str = "UTC"
) -> go.Figure:
    """Delay rate over time (``time, <by>, skus, delay_rate``), one line per ``by`` value (the
    ``top`` with most SKU lines)."""
    title = f"{label(lang, 'history.delay_rate')} · {label(lang, 'history.by.' + by)}"
    frame = localised(frame, tz)
    if frame.empty or by not in frame:
        return empty_figure(f"{title} · {label(lang, 'history.no_data')}")
    busiest = frame.groupby(by)["skus"].sum().sort_values(ascending=False).head(top).index
    figure = go.Figure()
    for i, value in enumerate(busiest):
        part = frame[frame[by] == value].sort_values("time")
        figure.add_trace(
            go.Scatter(
                x=part["time"],
                y=part["delay_rate"],
                mode="lines",
                name=(names or {}).get(str(value), str(value)),
                line={"color": SERIES_COLOURS[i % len(SERIES_COLOURS)], "width": 2},
            )
        )
    figure = chart(figure, title)
    figure.update_layout(yaxis={"tickformat": ".0%", "rangemode": "tozero"}, hovermode="x unified")
    return figure


def dwell_heatmap(frame: pd.DataFrame, lang: str, top: int = 20, tz: str = "UTC") -> go.Figure:
    """Mean dwell per node and bucket (``time, node, dwell_s``) as a heatmap in minutes."""
    title = label(lang, "history.dwell")
    frame = localised(frame, tz)
    if frame.empty:
        return empty_figure(f"{title} · {label(lang, 'history.no_data')}")
    worst = frame.groupby("node")["dwell_s"].mean().sort_values(ascending=False).head(top).index
    grid = (
        frame[frame["node"].isin(worst)]
        .pivot_table(index="node", columns="time", values="dwell_s", aggfunc="mean")
        .reindex(list(reversed(worst)))
        / 60.0
    )
    figure = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=list(grid.columns),
            y=list(grid.index),
            colorscale="Inferno",
            colorbar={"thickness": 10, "tickfont": {"color": MUTED}},
            hovertemplate="%{y}<br>%{x}<br>%{z:.1f} min<extra></extra>",
        )
    )
    return chart(figure, title, height=max(300, 60 + 18 * len(grid.index)))


def order_timeline(events: pd.DataFrame, lang: str, tz: str = "UTC") -> go.Figure:
    """One lane per SKU: every atomic event at its event time, coloured by outcome.

    ``events`` columns: ``sku, status, event_time, outcome`` (``accepted`` | ``late`` |
    ``rejected``), ``detail`` (reason or source, shown on hover).
    """
    if events.empty:
        return empty_figure(label(lang, "order.not_found"), height=220)
    events = localised(events, tz, "event_time")
    symbols = {"accepted": "circle", "late": "diamond", "rejected": "x"}
    colours = {"accepted": "#34c38f", "late": "#ff9f43", "rejected": "#ff4d4f"}
    figure = go.Figure()
    for sku, part in events.sort_values("event_time").groupby("sku", sort=True):
        figure.add_trace(
            go.Scatter(
                x=part["event_time"],
                y=[sku] * len(part),
                mode="lines",
                hoverinfo="skip",
                line={"color": GRID, "width": 2},
                showlegend=False,
            )
        )
    for outcome in ("accepted", "late", "rejected"):
        part = events[events["outcome"] == outcome]
        if part.empty:
            continue
        statuses = [label(lang, f"status.{s}") for s in part["status"]]
        figure.add_trace(
            go.Scatter(
                x=part["event_time"],
                y=part["sku"],
                mode="markers+text",
                name=label(lang, f"order.{outcome}"),
                text=statuses,
                textposition="top center",
                textfont={"size": 10, "color": MUTED},
                marker={
                    "symbol": symbols[outcome],
                    "size": 12,
                    "color": colours[outcome],
                    "line": {"width": 1, "color": BG},
                },
                customdata=list(zip(statuses, part["detail"].fillna(""), strict=True)),
                hovertemplate="%{y} · %{customdata[0]}<br>%{x}<br>%{customdata[1]}<extra></extra>",
            )
        )
    skus = events["sku"].nunique()
    figure = chart(figure, "", height=max(240, 130 + 70 * skus))
    first, last = events["event_time"].min(), events["event_time"].max()
    if last - first < pd.Timedelta(minutes=30):
        # A few events close together: show them in an hour of context, not a millisecond axis.
        figure.update_xaxes(range=[first - pd.Timedelta(minutes=30), last + pd.Timedelta(minutes=30)])
    figure.update_layout(
        yaxis={"type": "category", "title": label(lang, "order.sku")},
        xaxis={"title": label(lang, "order.event_time")},
        margin={"l": 90, "r": 16, "t": 24, "b": 44},
        legend={"orientation": "h", "y": 1.08, "x": 0},
    )
    return figure
