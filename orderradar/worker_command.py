"""``orderradar worker``: run one stream worker (Faust) until SIGTERM/SIGINT.

Creates any missing topic first (:func:`stream.kafka.admin.ensure_topics`), then runs the app
of :func:`stream.worker.create_worker` with the stages of :func:`default_stages`. Run as
many workers as you like with the same settings: they share the partitions of
``order-events`` (the consumer group ``<app id>-source``, see :mod:`stream.kafka.batch_source`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from config.settings import Settings, load_settings
from stream.core.retention import RetentionSettings
from stream.kafka.admin import ensure_topics
from stream.stage_api import Stage
from stream.worker import WorkerOptions, create_worker

log = logging.getLogger(__name__)


def default_stages(settings: Settings) -> Sequence[Stage]:
    """The pipeline stages after the core (validate, dedupe, state, rollup, aggregates).

    Other packages plug in here (delays/SLA, geo, alerting), in order.
    """
    from stream.stages.wiring import worker_stages

    return worker_stages(settings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="consumer group session timeout (default 10; the embedded broker completes "
        "a group join after about half of it)",
    )
    parser.add_argument(
        "--standby-replicas",
        type=int,
        default=0,
        help="standby copies of each table partition on other workers (default 0)",
    )
    parser.add_argument(
        "--no-influx-replay", action="store_true", help="do not replay the influx-dlq topic from this worker"
    )
    parser.add_argument(
        "--aggregate-window",
        type=int,
        default=120,
        metavar="MINUTES",
        help="event-time minutes an aggregate stays open behind the newest event (default 120)",
    )
    parser.add_argument(
        "--closed-retention-days",
        type=float,
        default=None,
        help="forget closed orders after this many days of event time (default: ORDERRADAR_RETENTION_CLOSED, 1 day)",
    )
    parser.add_argument(
        "--open-retention-days",
        type=float,
        default=None,
        help="forget open orders without news for this many days of event time, as abandoned "
        "(default: ORDERRADAR_RETENTION_ABANDONED_AFTER, 30 days)",
    )
    parser.add_argument(
        "--influx-replay-max-backoff",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="longest pause of the influx-dlq replayer between attempts (default 10)",
    )
    parser.add_argument(
        "--web-port", type=int, default=None, help="enable Faust's web server on this port (default: disabled)"
    )
    parser.add_argument(
        "--worker-log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="Faust's log level (default info)",
    )
    parser.add_argument(
        "--alert-tick",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="wall-clock period of the alert engine's tick: group flushes, escalation "
        "steps and expiry happen on it (default 15)",
    )
    parser.add_argument(
        "--core-only",
        action="store_true",
        help="run only the core pipeline (validate, dedupe, state, rollup, aggregates, outputs), "
        "without the geo, delays/incidents, disruption-zone and alerting stages",
    )


def retention_from(args: argparse.Namespace, settings: Settings) -> RetentionSettings:
    """The environment's retention, with the command line's overrides (validated together)."""
    retention = settings.retention
    values: dict[str, Any] = {"closed": retention.closed, "abandoned_after": retention.abandoned_after}
    if args.closed_retention_days is not None:
        values["closed"] = timedelta(days=args.closed_retention_days)
    if args.open_retention_days is not None:
        values["abandoned_after"] = timedelta(days=args.open_retention_days)
    try:
        return RetentionSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise SystemExit(f"orderradar worker: retention: {problems}") from exc


def options_from(args: argparse.Namespace, settings: Settings, **overrides: Any) -> WorkerOptions:
    retention = retention_from(args, settings)
    return WorkerOptions.from_settings(
        settings,
        session_timeout_s=args.session_timeout,
        standby_replicas=args.standby_replicas,
        replay_influx_dlq=not args.no_influx_replay,
        aggregate_window_minutes=args.aggregate_window,
        closed_retention=retention.closed,
        open_retention=retention.abandoned_after,
        web_port=args.web_port,
        replay_max_backoff_s=args.influx_replay_max_backoff,
        alert_tick_s=args.alert_tick,
        **overrides,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    specs = ensure_topics(settings)
    log.info("topics ready: %d", len(specs))
    if not args.core_only:
        from stream.stages.geo_stage import tag_cell

        runtime = create_worker(
            settings, options_from(args, settings, alerting=True), default_stages(settings), cell_of=tag_cell
        )
    else:
        runtime = create_worker(settings, options_from(args, settings))
    return runtime.run(loglevel=args.worker_log_level)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m orderradar.worker_command``)."""
    parser = argparse.ArgumentParser(prog="orderradar worker")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return run(args, load_settings())


if __name__ == "__main__":
    sys.exit(main())
