"""Prometheus metrics of one gateway instance, in the text exposition format (0.0.4).

Hand-written to avoid a dependency: counters and gauges with labels, and gauges computed
at scrape time from a callback (client counts, consumer lag). All metrics are defined in
:class:`GatewayMetrics`, so the list of series is in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]
Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels) + "}"


def _format_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass
class Metric:
    name: str
    help: str
    kind: str  # "counter" | "gauge"
    values: dict[Labels, float] = field(default_factory=dict)
    collect: Callable[[], Iterable[Sample]] | None = None

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = value

    def value(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        samples: dict[Labels, float] = dict(self.values)
        if self.collect is not None:
            for label_map, value in self.collect():
                samples[tuple(sorted(label_map.items()))] = value
        for key, value in sorted(samples.items()):
            lines.append(f"{self.name}{_format_labels(key)} {_format_value(value)}")
        return lines


class Registry:
    def __init__(self) -> None:
        self._metrics: list[Metric] = []

    def counter(self, name: str, help: str) -> Metric:
        return self._add(Metric(name, help, "counter"))

    def gauge(self, name: str, help: str, collect: Callable[[], Iterable[Sample]] | None = None) -> Metric:
        return self._add(Metric(name, help, "gauge", collect=collect))

    def _add(self, metric: Metric) -> Metric:
        if any(m.name == metric.name for m in self._metrics):
            raise ValueError(f"metric {metric.name} is defined twice")
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


class GatewayMetrics:
    """Every series the gateway exports. Scrape-time gauges are attached by the runtime."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        p = "orderradar_gateway_"
        self.ingest_requests = r.counter(p + "ingest_requests_total", "Ingest requests by source and HTTP status.")
        self.events_in = r.counter(
            p + "events_accepted_total", "Events accepted and acknowledged by the broker, by source."
        )
        self.events_rejected = r.counter(
            p + "events_rejected_total", "Events rejected by validation, by source and code."
        )
        self.records_in = r.counter(p + "records_consumed_total", "Records consumed from the update topics, by topic.")
        self.bad_records = r.counter(p + "records_invalid_total", "Consumed records that could not be used, by topic.")
        self.ws_accepted = r.counter(p + "ws_connections_total", "WebSocket connections accepted, by endpoint.")
        self.ws_refused = r.counter(p + "ws_refused_total", "WebSocket connections refused, by endpoint and reason.")
        self.ws_sent = r.counter(p + "ws_messages_sent_total", "WebSocket messages sent, by endpoint.")
        self.ws_coalesced = r.counter(
            p + "ws_messages_coalesced_total", "Messages merged into an unsent one, by endpoint."
        )
        self.ws_dropped = r.counter(
            p + "ws_slow_disconnects_total", "Connections closed for falling behind, by endpoint."
        )
        self.staff_actions = r.counter(p + "staff_actions_total", "Staff and API actions, by action and outcome.")
        self.logins = r.counter(p + "logins_total", "Staff login attempts by outcome.")
        self.ws_clients = r.gauge(p + "ws_clients", "Open WebSocket connections, by endpoint.")
        self.consumer_lag = r.gauge(p + "consumer_lag_records", "Records behind the high watermark, by topic.")
        self.cached_orders = r.gauge(p + "cached_orders", "Orders in the snapshot cache.")
        self.tracking_tokens = r.gauge(p + "tracking_tokens", "Tracking-link grants known to this instance.")
        self.publisher_up = r.gauge(p + "publisher_up", "1 when the Kafka producer is connected.")
        self.sync_lag = r.gauge(
            "orderradar_source_sync_lag_seconds",
            "Arrival minus event time per source (p50, p99) over the worker's recent window.",
        )

    def render(self) -> str:
        return self.registry.render()


def sync_lag_samples(items: Iterable[Any]) -> list[Sample]:
    """The war-room's ``sync_lag`` items (one per source, from the worker) as gauge samples."""
    out: list[Sample] = []
    for item in items:
        if isinstance(item, dict) and item.get("source"):
            for quantile, name in (("0.5", "p50_s"), ("0.99", "p99_s")):
                if isinstance(item.get(name), (int, float)):
                    out.append(({"source": str(item["source"]), "quantile": quantile}, float(item[name])))
    return out
